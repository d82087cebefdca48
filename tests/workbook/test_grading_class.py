"""`grade-class`: a folder (or roster) of the fixture submissions gives the gradebook rows their expected
reports imply; an interrupted run resumes with only what is missing; parallel grading changes nothing."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from grading.classroom.progress import Progress
from grading.classroom.roster import batches_for, parse_roster, select
from grading.cli import main
from grading.core.errors import RosterError
from grading.core.rubric import load
from tests.workbook.grading_fixtures.builder import EXPECTED, SUBMISSIONS, make_submission, make_workbook

# The class: the honest and failing fixtures, and one cheat of each verdict. The other adversarial fixtures
# (fork bomb, memory hog, ...) are graded one by one in test_grading_submissions.py; in a class run they
# would only make every other grade wait for their limits.
NAMES = ["crashes_on_import", "edits_tests", "exits_process", "half_done", "hangs", "patches_report",
         "starters_symlink", "imports_solutions"]
BROKEN = "no_starters"  # not a learner repo at all: the class must go on without it
TIMEOUT = "3"
REPO_ROOT = Path(__file__).resolve().parents[2]
VERDICT_FLAG = {"tampered": "tampered", "refused": "refused"}
# Tests that grade several submissions one after the other: more than the suite's per-test budget on a
# loaded machine (their waits are on conditions, never on the clock).
SLOW = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("instructor") / "workbook")


@pytest.fixture(scope="module")
def class_folder(workbook: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("class")
    for name in NAMES:
        make_submission(name, workbook, folder / name)
    (folder / BROKEN).mkdir()
    (folder / BROKEN / "README.md").write_text("no starters here\n", encoding="utf-8")
    return folder


def grade_class(workbook: Path, source: Path, out: Path, *options: str) -> tuple[int, str]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["--root", str(workbook), "grade-class", str(source), "--out", str(out), "--timeout", TIMEOUT,
                     *options])
    return code, printed.getvalue()


def gradebook(out: Path) -> dict[str, dict[str, str]]:
    with (out / "gradebook.csv").open(encoding="utf-8", newline="") as file:
        return {row["learner"]: row for row in csv.DictReader(file)}


def expected_row(name: str, rubric) -> dict[str, str]:
    """The gradebook row grading_fixtures/expected/NAME.json implies (tampered and refused score 0)."""
    expected = json.loads((EXPECTED / f"{name}.json").read_text(encoding="utf-8"))
    verdict = expected.get("verdict", "graded")
    earned = {c: want["points"] for c, want in expected["criteria"].items()} if verdict == "graded" else {}
    row = {"learner": name, "verdict": verdict}
    for exercise in rubric.exercises:
        row[exercise.id] = str(sum(earned.get(c.id, 0) for c in exercise.criteria))
        for task in exercise.tasks:
            row[task.id] = str(sum(earned.get(c.id, 0) for c in task.criteria))
    points = expected["total"]["points"] if verdict == "graded" else 0
    row["points"], row["max_points"] = str(points), str(expected["total"]["max_points"])
    return row


@pytest.fixture(scope="module")
def graded_class(workbook: Path, class_folder: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("gradebook")
    code, printed = grade_class(workbook, class_folder, out, "--jobs", "2")
    return out, code, printed


def expected_verdict(name: str) -> str:
    return json.loads((EXPECTED / f"{name}.json").read_text(encoding="utf-8")).get("verdict", "graded")


def test_the_fixture_submissions_include_honest_failing_and_adversarial_ones():
    assert set(NAMES) <= {p.name for p in SUBMISSIONS.iterdir() if p.is_dir()}, NAMES
    verdicts = {expected_verdict(name) for name in NAMES}
    # No fixture is `tampered` any more: the learner's code runs in a subject that cannot reach the record.
    assert {"graded", "refused"} <= verdicts, f"expected verdicts of the fixtures: {verdicts}"


@pytest.mark.parametrize("name", NAMES)
@SLOW
def test_gradebook_row_of_each_fixture_submission(name, graded_class, workbook):
    out, _, printed = graded_class
    rows = gradebook(out)
    want = expected_row(name, load(workbook))
    have = {key: rows[name][key] for key in want}
    assert have == want, f"gradebook.csv row of {name}: {have}, expected {want}\n{printed}"
    flags = rows[name]["flags"]
    if want["verdict"] in VERDICT_FLAG:
        assert VERDICT_FLAG[want["verdict"]] in flags.split("; "), f"{name}: flags {flags!r}"
    else:
        assert "could not grade" not in flags, f"{name}: flags {flags!r}"
    for report in ("report.md", "results.json", "junit.xml", "record.json"):
        assert (out / "learners" / name / report).is_file(), f"{name}: no learners/{name}/{report}"


@SLOW
def test_a_submission_that_cannot_be_graded_gets_its_row_and_the_class_goes_on(graded_class):
    out, code, printed = graded_class
    row = gradebook(out)[BROKEN]
    assert row["verdict"] == "could_not_grade" and row["points"] == "" and row["percent"] == "", row
    assert row["flags"].startswith("could not grade: ") and "has no starters/ folder" in row["flags"], row
    assert code == 2, f"grade-class with a submission it could not grade: exit {code}, expected 2"
    everyone = {*NAMES, BROKEN}
    assert set(gradebook(out)) == everyone, sorted(gradebook(out))
    lines = [line for line in printed.splitlines() if line.startswith("[")]
    assert len(lines) == len(everyone) and lines[-1].startswith(f"[{len(everyone)}/{len(everyone)}] "), printed


@SLOW
def test_summary_counts_what_the_class_missed(graded_class, workbook):
    out, _, _ = graded_class
    summary = (out / "summary.md").read_text(encoding="utf-8")
    rubric = load(workbook)
    graded = [n for n in NAMES if expected_row(n, rubric)["verdict"] == "graded"]
    for criterion in rubric.criteria.values():
        missed = sum(json.loads((EXPECTED / f"{n}.json").read_text(encoding="utf-8"))["criteria"][criterion.id]
                     ["points"] == 0 for n in graded)
        if missed:
            assert f"| `{criterion.id}` | {criterion.title} |" in summary and \
                f"| {missed} of {len(graded)} |" in summary.split(f"`{criterion.id}`", 1)[1].splitlines()[0], \
                f"summary.md: {criterion.id} should be missed by {missed} of {len(graded)}:\n{summary}"
    assert "![score histogram](histogram.png)" in summary, summary
    assert (out / "histogram.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "histogram.png is not a PNG"
    assert f"| {BROKEN} | could not grade |" in summary, summary
    to_review = summary.split("## To review", 1)[1]
    for name in NAMES:
        verdict = expected_verdict(name)
        if verdict != "graded":
            assert f"| {name} | {verdict} |" in to_review, f"summary.md does not list {name} to review:\n{summary}"
        expected = json.loads((EXPECTED / f"{name}.json").read_text(encoding="utf-8"))
        flags = [f for f in expected.get("flags", []) if f.startswith("review: ")]
        if verdict == "graded" and flags:
            row = next((line for line in to_review.splitlines() if line.startswith(f"| {name} | graded |")), "")
            assert row and all(flag in row for flag in flags), f"{name} has review flags {flags}:\n{to_review}"


def test_to_review_lists_every_flag_and_every_row_without_a_grade(workbook):
    from grading.classroom.summary import summary_markdown

    rubric = load(workbook)
    base = {"exercises": {}, "missed": [], "max_points": rubric.points}
    records = [
        {**base, "learner": "ada", "verdict": "graded", "points": 7, "percent": 100.0, "flags": []},
        {**base, "learner": "bob", "verdict": "graded", "points": 3, "percent": 42.9,
         "flags": ["review: imports subprocess"]},
        {**base, "learner": "cyd", "verdict": "could_not_grade", "points": None, "percent": None,
         "max_points": None, "flags": ["could not grade: no starters/ folder"]},
        {**base, "learner": "dan", "verdict": "tampered", "points": 0, "percent": 0.0, "flags": ["tampered"]},
    ]
    to_review = summary_markdown(records, rubric, None).split("## To review", 1)[1]
    rows = [line for line in to_review.splitlines() if line.startswith("| ") and not line.startswith(("| learner", "| ---"))]
    assert rows == ["| cyd | could not grade | none | could not grade: no starters/ folder |",
                    "| dan | tampered | 0/7 | tampered |",
                    "| bob | graded | 3/7 | review: imports subprocess |"], to_review
    clean = summary_markdown(records[:1], rubric, None).split("## To review", 1)[1]
    assert "Every submission reached a grade, and none has a flag." in clean, clean


def running_tests(pid: int, deadline: float) -> list[psutil.Process]:
    """Every process under `pid` once one of them is a pytest run."""
    while time.monotonic() < deadline:
        children = psutil.Process(pid).children(recursive=True)
        with contextlib.suppress(psutil.Error):
            if any(child.cmdline()[1:3] == ["-m", "pytest"] for child in children):
                return children
        time.sleep(0.05)
    pytest.fail(f"no pytest process ever ran under grade-class (pid {pid})")


@SLOW
def test_interrupted_run_grades_only_what_is_missing_when_run_again(workbook, class_folder, tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    names = ["a_half_done", "b_hangs", "c_edits_tests"]
    for name in names:
        os.symlink(class_folder / name.split("_", 1)[1], folder / name)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "grading", "--root", str(workbook), "grade-class", str(folder), "--out",
               str(out), "--jobs", "1", "--timeout", TIMEOUT]
    # Started as a shell starts a background job, with SIGINT ignored: Ctrl-C must stop it all the same.
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    first = out / "learners" / names[0] / "record.json"
    deadline = time.monotonic() + 600
    while not first.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.exists(), f"grade-class never recorded {names[0]}: {process.communicate()[0] if process.poll() is not None else 'still running'}"
    children = running_tests(process.pid, deadline)  # the next submission's tests are running: interrupt now
    process.send_signal(signal.SIGINT)
    printed, _ = process.communicate(timeout=120)
    assert process.returncode == 130, f"grade-class after Ctrl-C: exit {process.returncode}\n{printed}"
    recorded = sorted(p.parent.name for p in out.glob("learners/*/record.json"))
    assert recorded == names[:1], f"after the interrupt, recorded: {recorded}\n{printed}"
    assert not (out / ".staging").exists(), "the interrupted grade left its staging folder"
    alive = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not alive, f"processes outlived the interrupted grade-class: {[c.cmdline() for c in alive]}"

    kept = first.read_bytes()
    code, printed = grade_class(workbook, folder, out, "--jobs", "1")
    assert code == 0, printed
    assert f"{names[0]}: 3/7 (42.9 %) (already graded, skipped)" in printed, printed
    assert "(1 graded now" not in printed and "(2 graded now, 1 already graded)" in printed, printed
    assert first.read_bytes() == kept, f"{names[0]} was graded again"
    assert sorted(gradebook(out)) == names, sorted(gradebook(out))
    assert gradebook(out)["b_hangs"]["points"] == "0" and gradebook(out)["c_edits_tests"]["points"] == "0"


@SLOW
def test_two_submissions_graded_in_parallel_match_one_at_a_time(workbook, class_folder, tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("half_done", "crashes_on_import"):
        os.symlink(class_folder / name, folder / name)
    outcomes = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        code, printed = grade_class(workbook, folder, out, "--jobs", jobs)
        assert code == 0, printed
        statuses = {}
        for name in ("half_done", "crashes_on_import"):
            results = json.loads((out / "learners" / name / "results.json").read_text(encoding="utf-8"))
            statuses[name] = {c["id"]: (c["status"], c["points"], c["message"])
                              for e in results["exercises"] for t in e["tasks"] for c in t["criteria"]}
        records = [json.loads((out / "learners" / n / "record.json").read_text(encoding="utf-8"))
                   for n in ("half_done", "crashes_on_import")]
        spans = sorted((r["started_at"], r["graded_at"]) for r in records)
        outcomes[jobs] = (gradebook(out), statuses, spans[1][0] < spans[0][1])
    assert outcomes["2"][2], "with --jobs 2 the two submissions were not graded at the same time"
    assert not outcomes["1"][2], "with --jobs 1 the two submissions overlapped"
    assert outcomes["2"][:2] == outcomes["1"][:2], f"parallel {outcomes['2'][:2]}\nserial {outcomes['1'][:2]}"


def git(*args: str, cwd: Path) -> str:
    env = os.environ | {"GIT_AUTHOR_NAME": "Learner", "GIT_AUTHOR_EMAIL": "learner@example.org",
                        "GIT_COMMITTER_NAME": "Learner", "GIT_COMMITTER_EMAIL": "learner@example.org"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


@SLOW
def test_roster_grades_git_repos_at_their_commits(workbook, tmp_path):
    """A roster of local git repos (a file:// URL and a path): each graded at the commit it names."""
    repo = make_submission("half_done", workbook, tmp_path / "alice")
    shipped = {p: (workbook / p).read_bytes() for p in ("starters/mini.py", "starters/greeting.py")}
    solved = {p: (repo / p).read_bytes() for p in shipped}
    for path, text in shipped.items():
        (repo / path).write_bytes(text)
    git("init", "-q", "-b", "main", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-q", "-m", "start", cwd=repo)
    started = git("rev-parse", "HEAD", cwd=repo)
    for path, text in solved.items():
        (repo / path).write_bytes(text)
    git("commit", "-q", "-am", "tasks", cwd=repo)
    done = git("rev-parse", "HEAD", cwd=repo)
    (repo / "starters" / "mini.py").write_text("raise SystemExit('uncommitted work is not graded')\n")
    roster = tmp_path / "roster.csv"
    roster.write_text("learner,repo,commit\n"
                      f"alice,{repo.as_uri()},{started}\n"
                      f"bob,alice,{done}\n"
                      f"carol,alice,{'0' * 40}\n"
                      "dave,nobody-here,\n", encoding="utf-8")
    out = tmp_path / "out"
    code, printed = grade_class(workbook, roster, out, "--jobs", "2")
    rows = gradebook(out)
    assert code == 2, printed
    assert (rows["alice"]["commit"], rows["alice"]["points"]) == (started, "0"), rows["alice"]
    assert (rows["bob"]["commit"], rows["bob"]["points"]) == (done, "3"), rows["bob"]
    assert "has no commit 0000000000000000000000000000000000000000" in rows["carol"]["flags"], rows["carol"]
    assert "nobody-here: no such folder" in rows["dave"]["flags"], rows["dave"]

    roster.write_text(roster.read_text(encoding="utf-8").replace(f"alice,{repo.as_uri()},{started}",
                                                                 f"alice,{repo.as_uri()},{done}"), encoding="utf-8")
    code, printed = grade_class(workbook, roster, out, "--jobs", "2")
    assert "bob at " in printed and "(already graded, skipped)" in printed.split("bob at ", 1)[1].splitlines()[0], \
        printed
    assert gradebook(out)["alice"]["points"] == "3", "alice's new commit was not graded"


def test_roster_errors_name_the_line(tmp_path):
    cases = {
        "learner,repo\nada,a\nada,b\n": "roster:3: learner 'ada' is listed twice (first on line 2)",
        "name,url\nada,a\n": "roster:1: the header must be learner,repo[,commit]",
        "learner,repo\n../up,a\n": "roster:2: '../up' cannot name a learner",
        "learner,repo,commit\nada,a,main\n": "roster:2: 'main' is not a commit SHA",
        "learner,repo\nada,\n": "roster:2: learner 'ada' has no repo",
        "# only a comment\n": "roster: empty roster",
    }
    for text, message in cases.items():
        with pytest.raises(RosterError) as error:
            parse_roster(text, base=tmp_path)
        assert message in str(error.value), f"parse_roster({text!r}): {error.value}, expected {message!r}"
    entries = parse_roster("learner,repo,commit\n# a comment\nada,ada-repo,ABCDEF1\nbob,https://github.com/o/b,\n",
                           base=tmp_path)
    assert [(e.learner, e.repo, e.commit) for e in entries] == [
        ("ada", str(tmp_path / "ada-repo"), "abcdef1"), ("bob", "https://github.com/o/b", None)], entries


def test_matrix_batches_stay_within_githubs_limit_and_cover_everyone(tmp_path):
    roster = "learner,repo\n" + "".join(f"l{i:04d},r{i}\n" for i in range(1000))
    entries = parse_roster(roster, base=tmp_path)
    for count, per_job, jobs in ((1000, 4, 250), (1000, 2, 256), (3, 4, 1), (9, 4, 3)):
        batches = batches_for(count, per_job=per_job)
        assert len(batches) == jobs, f"batches_for({count}, per_job={per_job}): {len(batches)} jobs, expected {jobs}"
        chosen = [e.learner for b in batches for e in select(entries[:count], only=None, batch=b)]
        assert chosen == [e.learner for e in entries[:count]], f"{count} learners in {jobs} jobs: {len(chosen)} graded"
    with pytest.raises(RosterError, match="expected I/N"):
        select(entries, only=None, batch="0/3")
    with pytest.raises(RosterError, match="not in the roster: zed"):
        select(entries, only=["zed"], batch=None)


def test_progress_prints_plain_lines_without_a_terminal_and_a_counter_on_one():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    plain, terminal = io.StringIO(), Terminal()
    for stream in (plain, terminal):
        progress = Progress(2, stream)
        progress.advance("ada: 7/7 (100 %)")
        progress.advance("bob: 0/7 (0 %)")
        progress.close()
    assert plain.getvalue() == "[1/2] ada: 7/7 (100 %)\n[2/2] bob: 0/7 (0 %)\n", repr(plain.getvalue())
    assert terminal.getvalue() == ("grading: 0/2 done\r\x1b[K[1/2] ada: 7/7 (100 %)\ngrading: 1/2 done"
                                   "\r\x1b[K[2/2] bob: 0/7 (0 %)\n"), repr(terminal.getvalue())


def test_class_status_posts_the_score_only(tmp_path, capsys, monkeypatch):
    """Real HTTP on loopback: one commit status per GitHub learner, with the score and nothing that explains it."""
    import http.server
    import threading

    received = []

    class API(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, self.headers["Authorization"], json.loads(body)))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), API)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sha = "a" * 40
        (tmp_path / "roster.csv").write_text(
            "learner,repo,commit\nada,https://github.com/course/ada.git,\nbob,git@github.com:course/bob.git,\n"
            "cyd,https://github.com/course/cyd,\ndee,local/dee,\n", encoding="utf-8")
        (tmp_path / "gradebook.csv").write_text(
            "learner,commit,verdict,ex01,points,max_points,percent,flags\n"
            f"ada,{sha},graded,5,5,7,71.4,review: imports subprocess\n"
            f"bob,{sha},tampered,0,0,7,0,tampered; canary tests/ex01/test_x.py passed\n"
            f"cyd,{sha},could_not_grade,,,7,,could not grade: infrastructure\n"
            f"dee,{sha},graded,7,7,7,100,\n", encoding="utf-8")
        monkeypatch.setenv("STATUS_TOKEN", "secret-status-token")
        code = main(["--root", str(REPO_ROOT), "class-status", str(tmp_path / "gradebook.csv"),
                     str(tmp_path / "roster.csv"), "--api-url", f"http://127.0.0.1:{server.server_port}"])
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    printed = capsys.readouterr()
    assert code == 0, printed
    assert sorted(received) == [
        (f"/repos/course/ada/statuses/{sha}", "Bearer secret-status-token",
         {"state": "success", "context": "workbook/grade", "description": "Points 5/7 (71.4 %)"}),
        (f"/repos/course/bob/statuses/{sha}", "Bearer secret-status-token",
         {"state": "failure", "context": "workbook/grade", "description": "Points 0/7: please see your instructor"}),
        (f"/repos/course/cyd/statuses/{sha}", "Bearer secret-status-token",
         {"state": "error", "context": "workbook/grade",
          "description": "Not graded yet: your instructor will regrade it"}),
    ], received
    assert "no status: dee: not a GitHub repo in the roster" in printed.out, printed.out
    assert "secret-status-token" not in printed.out + printed.err


def test_grade_submission_gets_none_of_the_instructors_credentials(monkeypatch):
    from grading.classroom.class_runner import GRADING_HOME, grader_env

    for name in ("GH_TOKEN", "WORKBOOK_READ_TOKEN", "AWS_SECRET_ACCESS_KEY", "GIT_CONFIG_VALUE_0", "DB_PASSWORD",
                 "OPENAI_API_KEY"):
        monkeypatch.setenv(name, "do-not-pass")
    monkeypatch.setenv("LANG", "C.UTF-8")
    env = grader_env()
    assert "do-not-pass" not in env.values(), sorted(k for k, v in env.items() if v == "do-not-pass")
    assert env["LANG"] == "C.UTF-8" and env["PYTHONPATH"].split(os.pathsep)[0] == str(GRADING_HOME)
