"""The pieces of grade-submission's tamper evidence, without running a grade: the record's order check,
the canaries' verdict, the tree digest, the review flags and the hidden-detail redaction."""

from __future__ import annotations

import json
import random

from grading.scoring.redaction import redact
from grading.scoring.run import Run
from grading.scoring.run import TestOutcome as Outcome  # named Test*, pytest would collect it
from grading.submission import canaries, graded_tree, review
from grading.suite import record_check

HONEST = [
    {"event": "collected", "nodeid": "t.py::a", "path": "t.py", "criteria": [], "speed": 0},
    {"event": "collected", "nodeid": "t.py::b", "path": "t.py", "criteria": [], "speed": 0},
    {"event": "start", "nodeid": "t.py::a"}, {"event": "result", "nodeid": "t.py::a", "outcome": "failed", "message": "x"},
    {"event": "start", "nodeid": "t.py::b"}, {"event": "result", "nodeid": "t.py::b", "outcome": "passed", "message": ""},
    {"event": "finish", "exitstatus": 1},
]


def lines(events):
    return [json.dumps(e) for e in events]


def test_an_honest_record_is_in_order():
    assert record_check.violations(lines(HONEST)) == []
    # A process killed mid-test (its last line cut) is a crash, not a forgery.
    assert record_check.violations(lines(HONEST[:3]) + ['{"event": "res']) == []


def test_forged_lines_break_the_order():
    forged_during_a_test = HONEST[:3] + [{"event": "result", "nodeid": "t.py::b", "outcome": "passed", "message": ""}] \
        + HONEST[3:]
    assert record_check.violations(lines(forged_during_a_test)) == [
        "record line 4: a result for t.py::b, which was not running",
        "record line 5: a result for t.py::a, which was not running",
    ]
    after_the_end = HONEST + [{"event": "result", "nodeid": "t.py::a", "outcome": "passed", "message": ""}]
    assert record_check.violations(lines(after_the_end)) == ["record line 8: a result event after the run finished"]
    never_collected = [HONEST[0], {"event": "start", "nodeid": "x.py::z"}]
    assert record_check.violations(lines(never_collected)) == ["record line 2: x.py::z started out of turn"]
    assert record_check.violations(["garbage", *lines(HONEST)]) == ["record line 1: not JSON"]


def test_canaries_must_report_what_they_must(tmp_path):
    from grading.core.rubric import load
    from tests.workbook.grading_fixtures.builder import make_workbook

    workbook = make_workbook(tmp_path / "workbook")
    exercises = list(load(workbook).exercises)
    planted = canaries.plant(workbook, exercises, random.Random(7))
    assert sorted(c.must for c in planted) == ["failed", "failed", "passed", "passed"], planted
    for canary in planted:
        path = workbook / canary.nodeid.split("::")[0]
        assert path.parent.parent.name == "tests" and "@pytest.mark.criterion(" in path.read_text(), path
    run = Run(tests={c.nodeid: Outcome(c.nodeid, "", [], 0, outcome=c.must) for c in planted})
    assert canaries.evidence(planted, run, run_was_cut=False) == []
    liar = planted[-1] if planted[-1].must == "failed" else planted[0]
    run.tests[liar.nodeid].outcome = "passed" if liar.must == "failed" else "failed"
    assert canaries.evidence(planted, run, run_was_cut=False) == [
        f"canary {liar.nodeid} must have {liar.must}, the run reported {run.tests[liar.nodeid].outcome}"]
    canaries.remove(planted, run)
    assert run.tests == {}


def test_the_digest_sees_every_change_but_the_db_template_copy(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_a.py").write_text("a")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "airflow.db").write_text("db")
    before = graded_tree.digest(tmp_path)
    (tmp_path / ".cache" / "airflow.db").write_text("migrated")
    assert graded_tree.changes(before, graded_tree.digest(tmp_path)) == []
    (tmp_path / "tests" / "test_a.py").write_text("b")
    (tmp_path / "tests" / "test_b.py").write_text("new")
    assert graded_tree.changes(before, graded_tree.digest(tmp_path)) == [
        "changed: tests/test_a.py", "added: tests/test_b.py"]


def test_review_flags_name_the_file_and_line(tmp_path):
    (tmp_path / "sensor.py").write_text(
        "import os\nimport subprocess\nfrom importlib import import_module\nimport sys\n"
        "def f():\n    sys.modules['x'] = 1\n    os._exit(0)\n    open('/proc/self/fd')\n")
    (tmp_path / "clean.py").write_text("import time\n\ndef g():\n    return time.monotonic()\n")
    flags = {(f.what, f.where) for f in review.scan(tmp_path)}
    assert flags == {("imports subprocess", "starters/sensor.py:2"), ("imports importlib", "starters/sensor.py:3"),
                     ("uses sys.modules", "starters/sensor.py:6"), ("calls os._exit", "starters/sensor.py:7"),
                     ("mentions /proc", "starters/sensor.py:8")}, flags


def test_redaction_leaves_no_hidden_id_or_file():
    note = "the test process died (exit code 3) during tests/ex01/test_hidden.py::test_secret_case; it failed"
    assert redact(note, {"tests/ex01/test_hidden.py::test_secret_case"}, {"tests/ex01/test_hidden.py"}) == \
        "the test process died (exit code 3) during a hidden test; it failed"


def test_refused_files():
    from pathlib import Path

    refused = [p for p in ("mini.cpython-311-x86_64-linux-gnu.so", "mini.pyc", "dags/airflow_local_settings.py",
                           "conftest.py", "sitecustomize.py", "usercustomize.py", "x.pth")
               if graded_tree.refusal_reason(Path(p))]
    assert len(refused) == 7, refused
    assert graded_tree.refusal_reason(Path("custom_sensors.py")) is None
    assert graded_tree.refusal_reason(Path("__pycache__/mini.cpython-311.pyc")) is None  # not taken, not refused


def test_a_venv_reached_through_a_symlink_runs_in_the_sandbox(tmp_path):
    """The grader's Python started as `linked/.venv/bin/python`, where `.venv` links to the real venv."""
    import subprocess
    import sys
    from pathlib import Path

    from grading.suite import sandbox
    from grading.suite.options import sandbox_env

    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / ".venv").symlink_to(Path(sys.prefix))
    python = linked / ".venv" / "bin" / Path(sys.executable).name
    tree = tmp_path / "tree"
    (tree / ".cache").mkdir(parents=True)
    prefixes = [Path(sys.prefix), Path(sys.base_prefix), python.resolve().parent.parent, python.parent.parent]
    wrapped = sandbox.command(sandbox.probe(), [str(python), "-c", "import sys; print(sys.prefix)"], tree=tree,
                              cache=tree / ".cache", env=sandbox_env(tree), python_prefixes=prefixes)
    done = subprocess.run(wrapped, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, f"{python} in the sandbox: exit {done.returncode}: {done.stderr.strip()[-500:]}"
