"""`grade-submission`: each fixture submission (honest ones and attacks) produces the verdict and report in
grading_fixtures/expected/, in the sandbox, taking only starters/ from the learner's copy, changing neither
that copy nor the instructor repo, leaving no process or file behind and no hidden detail in what a learner
sees."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import pytest

from grading.cli import main
from tests.workbook.grading_fixtures.builder import EXPECTED, SUBMISSIONS, make_submission, make_workbook

NAMES = sorted(p.name for p in SUBMISSIONS.iterdir() if p.is_dir())
LEARNER_FILES = {"report.md", "results.json", "junit.xml", "report.txt"}
SECRET = "instructor-token-7f3a9c"  # in the grader's environment; must not reach the tests
# Enough for the fixture workbook's tests; keeps the fork bomb small on a shared machine.
PROCESSES = "128"
ATTACKS = {"patches_report", "patches_recorder", "forges_record", "rewrites_tests_then_exits",
           "daemon_rewrites_outputs", "reads_hidden_tests", "imports_solutions", "execs_solution_source",
           "starters_symlink", "shadows_with_so", "airflow_local_settings", "memory_hog", "fork_bomb",
           "exits_in_one_exercise", "site_hooks", "signals_the_grader", "reads_environment",
           "exits_with_usage_error", "raises_infrastructure_error", "undecodable_name", "parser_bomb",
           "git_head_dev_zero", "floods_record", "smuggles_names"}


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("instructor") / "workbook")


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """The grader's temp files go here, so the test can see that none is left."""
    folder = tmp_path / "grader-tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    monkeypatch.setenv("INSTRUCTOR_TOKEN", SECRET)
    return folder


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def processes_mentioning(*needles: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(n in cmdline for n in needles):
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def secret_lines(workbook: Path) -> list[str]:
    """Lines of the hidden tests and the solutions that no learner-visible output may contain."""
    sources = [*workbook.glob("tests/*/test_hidden*.py"), *workbook.glob("solutions/*.py")]
    lines = [line.strip() for path in sources for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if len(line) >= 20 and not line.startswith(("def ", "class ", '"""'))]


def grade(workbook: Path, learner: Path, out: Path, *extra: str) -> int:
    return main(["--root", str(workbook), "grade-submission", str(learner), "--out", str(out), "--timeout", "3",
                 "--max-processes", PROCESSES, *extra])


def test_every_fixture_submission_has_its_expected_report():
    assert NAMES == sorted(p.stem for p in EXPECTED.glob("*.json")), (NAMES, sorted(EXPECTED.glob("*.json")))
    assert {"hangs", "crashes_on_import", "edits_tests", "half_done"} <= set(NAMES), NAMES
    assert ATTACKS <= set(NAMES), sorted(ATTACKS - set(NAMES))


# Each grade starts several sandboxed pytest processes (crashes restart them): on a loaded machine that
# takes minutes, which is slow, not wrong.
SLOW_MACHINE = pytest.mark.timeout(900)


@SLOW_MACHINE
@pytest.mark.parametrize("name", NAMES)
def test_submission_report(name, workbook, tmp_path, private_tmp, capsys):
    learner = make_submission(name, workbook, tmp_path / "learner")
    before = {"learner": tree_digest(learner), "instructor": tree_digest(workbook)}
    out = tmp_path / "report"
    code = grade(workbook, learner, out)
    printed = capsys.readouterr()
    assert code == 0, f"grade-submission {name}: exit {code}\n{printed.out}\n{printed.err}"

    expected = json.loads((EXPECTED / f"{name}.json").read_text(encoding="utf-8"))
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["verdict"] == expected.get("verdict", "graded"), \
        f"{name}: verdict {results['verdict']}, expected {expected.get('verdict', 'graded')}; flags {results['flags']}"
    for flag in expected.get("flags", []):
        assert any(flag in have for have in results["flags"]), f"{name}: no flag like {flag!r} in {results['flags']}"
    total = {k: results["total"][k] for k in expected["total"]}
    assert total == expected["total"], f"{name}: total {total}, expected {expected['total']}"
    got = {c["id"]: c for e in results["exercises"] for t in e["tasks"] for c in t["criteria"]}
    for criterion_id, want in expected["criteria"].items():
        have = got[criterion_id]
        assert (have["status"], have["points"]) == (want["status"], want["points"]), \
            f"{name}: {criterion_id} is {have['status']} with {have['points']} points, expected " \
            f"{want['status']} with {want['points']} ({have['message']!r})"
        assert want["message"] in have["message"], \
            f"{name}: {criterion_id} message {have['message']!r} lacks {want['message']!r}"
    for note in expected.get("notes", []):
        assert any(note in n for n in results["notes"]), f"{name}: no note like {note!r} in {results['notes']}"
    assert results["submission"] == str(learner) and results["commit"] is None

    # Only the parent wrote here; the instructor's files are apart.
    assert {p.name for p in out.iterdir()} == LEARNER_FILES | {"instructor"}, sorted(p.name for p in out.iterdir())
    assert (out / "instructor" / "report.md").is_file() and (out / "instructor" / "results.json").is_file()
    if results["verdict"] == "tampered":
        instructor_report = (out / "instructor" / "report.md").read_text(encoding="utf-8")
        assert instructor_report.startswith("# Tampering evidence\n\n- "), instructor_report[:500]

    # Nothing hidden, no solution code and no grader secret in what the learner sees.
    visible = printed.out + printed.err + "".join((out / f).read_text(encoding="utf-8") for f in LEARNER_FILES)
    for leak in ["test_hidden", "test_add_negative", SECRET, *secret_lines(workbook)]:
        assert leak not in visible, f"{name}: learner-visible output contains {leak!r}"
    log = out / "instructor" / "pytest-output.txt"
    assert log.is_file() == (results["verdict"] != "refused"), f"{name}: pytest's log is missing or ran for a refusal"
    assert not log.is_file() or SECRET not in log.read_text(encoding="utf-8"), \
        f"{name}: the grader's environment reached the test process"

    after = {"learner": tree_digest(learner), "instructor": tree_digest(workbook)}
    assert after == before, f"{name}: grading changed the learner's copy or the instructor repo"
    assert not processes_mentioning(str(private_tmp), "workbook-daemon-marker"), \
        f"{name}: processes outlived the grade: {processes_mentioning(str(private_tmp), 'workbook-daemon-marker')}"
    assert not list(private_tmp.iterdir()), f"{name}: left behind {sorted(private_tmp.iterdir())}"


@SLOW_MACHINE
def test_hash_check_catches_rewritten_tests_when_unsandboxed(workbook, tmp_path, private_tmp, capsys):
    """Without the read-only mount, the rewrite happens: the tree's hashes give it away."""
    learner = make_submission("rewrites_tests_then_exits", workbook, tmp_path / "learner")
    out = tmp_path / "report"
    assert grade(workbook, learner, out, "--no-sandbox") == 0, capsys.readouterr().err
    capsys.readouterr()
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert (results["verdict"], results["total"]["points"]) == ("tampered", 0), (results["verdict"], results["total"])
    assert "unsandboxed" in results["flags"], results["flags"]
    evidence = json.loads((out / "instructor" / "results.json").read_text(encoding="utf-8"))["evidence"]
    assert "graded tree changed: tests/ex01_mini/test_mini.py" in evidence, evidence


@SLOW_MACHINE
def test_symlinks_in_starters_are_not_followed(workbook, tmp_path, private_tmp, capsys):
    """A starter that links to the instructor's solution must not be graded as the learner's work."""
    learner = make_submission("edits_tests", workbook, tmp_path / "learner")
    (learner / "starters" / "greeting.py").unlink()
    (learner / "starters" / "greeting.py").symlink_to(workbook / "solutions" / "greeting.py")
    out = tmp_path / "report"
    grade(workbook, learner, out)
    capsys.readouterr()
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    greets = results["exercises"][1]["tasks"][0]["criteria"][0]
    assert greets["status"] != "passed", f"a symlinked solution earned points: {greets}"
    assert any("starters/greeting.py (a symlink)" in note for note in results["notes"]), results["notes"]


@SLOW_MACHINE
def test_reveal_hidden_shows_the_instructor_what_failed(workbook, tmp_path, private_tmp, capsys):
    learner = make_submission("half_done", workbook, tmp_path / "learner")
    out = tmp_path / "report"
    grade(workbook, learner, out, "--reveal-hidden")
    capsys.readouterr()
    full = json.loads((out / "instructor" / "results.json").read_text(encoding="utf-8"))
    negative = [c for e in full["exercises"] for t in e["tasks"] for c in t["criteria"] if c["id"] == "ex01.t1.negative"]
    assert negative[0]["message"] == "AssertionError: add(-2, 3): expected 1, got 5", negative
    assert negative[0]["tests"][0]["nodeid"] == "tests/ex01_mini/test_hidden.py::test_add_negative", negative


@SLOW_MACHINE
def test_without_user_namespaces_it_refuses_unless_told(workbook, tmp_path, private_tmp, capsys, monkeypatch):
    """A bwrap that cannot create namespaces (as on a kernel without unprivileged user namespaces)."""
    from grading.suite import sandbox

    broken = tmp_path / "bwrap"
    broken.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(sandbox, "find_bwrap", lambda: broken)
    learner = make_submission("half_done", workbook, tmp_path / "learner")
    out = tmp_path / "report"
    code = grade(workbook, learner, out)
    err = capsys.readouterr().err
    assert code == 2, f"expected exit 2 (could not grade), got {code}"
    assert "refusing to grade without a sandbox" in err and "No permissions to create new namespace" in err, err
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert (results["verdict"], results["total"]["points"]) == ("could_not_grade", 0), results
    assert grade(workbook, learner, tmp_path / "trusted", "--no-sandbox") == 0
    capsys.readouterr()
    trusted = json.loads((tmp_path / "trusted" / "results.json").read_text(encoding="utf-8"))
    assert (trusted["verdict"], trusted["total"]["points"], trusted["flags"]) == ("graded", 3, ["unsandboxed"]), trusted


def test_a_path_without_starters_cannot_be_graded(workbook, tmp_path, capsys):
    code = main(["--root", str(workbook), "grade-submission", str(tmp_path), "--out", str(tmp_path / "out")])
    assert code == 2, f"a folder with no starters/: expected exit 2, got {code}"
    assert "has no starters/ folder" in capsys.readouterr().err


# A fork bomb in a new interpreter, while the test itself blocks the alarm pytest-timeout relies on: the
# copies carry neither the test process's at-fork hook nor its command line, and no in-process timeout
# fires, so only the grader, from outside the sandbox, can stop it. The copies sleep rather than spin, so
# the machine stays usable while the grader counts them.
BOMB_IN_A_NEW_PROCESS = '''
import signal
import subprocess
import sys

from starters._todo import todo

BOMB = """
import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(3600)
"""


def add(a: int, b: int) -> int:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    subprocess.Popen([sys.executable, "-c", BOMB], start_new_session=True).wait()
    return a + b
'''


@SLOW_MACHINE
def test_a_fork_bomb_the_tests_cannot_see_is_stopped_from_outside(workbook, tmp_path, private_tmp, capsys):
    # In one test process: there the bomb can fill the sandbox's whole process limit (a subject gets half).
    learner = make_submission("half_done", workbook, tmp_path / "learner")
    mini = learner / "starters" / "mini.py"
    mini.write_text(BOMB_IN_A_NEW_PROCESS + mini.read_text(encoding="utf-8").split("def add", 1)[1]
                    .split("\n\n\n", 1)[1], encoding="utf-8")
    out = tmp_path / "report"
    code = grade(workbook, learner, out, "--one-process")
    printed = capsys.readouterr()
    assert code == 0, f"grade-submission of a fork bomb: exit {code}\n{printed.out}\n{printed.err}"
    full = json.loads((out / "instructor" / "results.json").read_text(encoding="utf-8"))
    report = (out / "instructor" / "report.md").read_text(encoding="utf-8")
    assert any("fork bomb" in note for note in full["notes"]), (
        f"grade-submission of a submission that fills the sandbox with processes: expected a note that the "
        f"grader stopped a fork bomb, got notes {full['notes']}\n{report[:3000]}")
    assert not processes_mentioning(str(private_tmp), "os.fork()"), \
        f"processes outlived the grade: {processes_mentioning(str(private_tmp), 'os.fork()')}"
    assert not list(private_tmp.iterdir()), f"left behind {sorted(private_tmp.iterdir())}"


@SLOW_MACHINE
def test_a_python_the_sandbox_cannot_start_is_could_not_grade(workbook, tmp_path, private_tmp, capsys, monkeypatch):
    """The grader's own setup at fault (here: its venv not mounted), not the submission: no verdict on it."""
    from grading.suite import sandbox

    monkeypatch.setattr(sandbox, "python_prefixes", lambda: [])
    learner = make_submission("half_done", workbook, tmp_path / "learner")
    out = tmp_path / "report"
    code = grade(workbook, learner, out)
    err = capsys.readouterr().err
    assert code == 2, f"expected exit 2 (could not grade), got {code}\n{err}"
    assert "the sandbox cannot start the test process's Python" in err, err
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert (results["verdict"], results["total"]["points"]) == ("could_not_grade", 0), results


@SLOW_MACHINE
@pytest.mark.parametrize("name", ["patches_report", "forges_record"])
def test_in_one_test_process_canaries_and_the_record_checks_catch_tampering(name, workbook, tmp_path, private_tmp,
                                                                            capsys):
    """`--one-process` (the learner's code in the test process) still has its defences: canaries, the record's
    order and schema, the grader's own names."""
    learner = make_submission(name, workbook, tmp_path / "learner")
    out = tmp_path / "report"
    code = grade(workbook, learner, out, "--one-process")
    printed = capsys.readouterr()
    assert code == 0, f"grade-submission --one-process {name}: exit {code}\n{printed.out}\n{printed.err}"
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert results["verdict"] == "tampered" and results["total"]["points"] == 0, (
        f"{name} in one test process: verdict {results['verdict']}, {results['total']}; expected tampered, 0 points")
