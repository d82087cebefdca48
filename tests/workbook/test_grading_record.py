"""The test process's record is decoded with a schema and a size limit, and held to the grader's own names:
a wrong-typed field is an ignored event and a flag (never a crash), a flood costs the flood (never the grader's
memory or disk), and no name from the record that the grader does not have reaches a learner's files."""

from __future__ import annotations

import base64
import json
import os
import threading
import urllib.parse
from pathlib import Path

import pytest

from grading.core.rubric import load
from grading.scoring.grade import grade
from grading.scoring.run import Run
from grading.scoring.run import TestOutcome as Outcome  # named Test*, pytest would collect it
from grading.submission import inventory
from grading.suite import record_check, record_schema
from grading.suite.supervision import _Collector
from tests.workbook.grading_fixtures.builder import make_workbook

GOOD = [
    {"event": "collected", "nodeid": "tests/ex01_mini/test_mini.py::test_add", "path": "tests/ex01_mini/test_mini.py",
     "criteria": ["ex01.t1.adds"], "speed": 0},
    {"event": "start", "nodeid": "tests/ex01_mini/test_mini.py::test_add", "at": 1.5},
    {"event": "result", "nodeid": "tests/ex01_mini/test_mini.py::test_add", "outcome": "passed", "message": "",
     "timed_out": False, "duration": 0.01},
    {"event": "finish", "exitstatus": 0},
]
WRONG_TYPES = {
    "nodeid a number": {"event": "collected", "nodeid": 7, "path": "p", "criteria": [], "speed": 0},
    "criteria a string": {"event": "collected", "nodeid": "a::b", "path": "p", "criteria": "ex01.t1.adds", "speed": 0},
    "speed a string": {"event": "collected", "nodeid": "a::b", "path": "p", "criteria": [], "speed": "fast"},
    "speed a bool": {"event": "collected", "nodeid": "a::b", "path": "p", "criteria": [], "speed": True},
    "outcome unknown": {"event": "result", "nodeid": "a::b", "outcome": "PASSED!", "message": ""},
    "timed_out a string": {"event": "result", "nodeid": "a::b", "outcome": "failed", "message": "",
                           "timed_out": "no"},
    "duration infinite": {"event": "result", "nodeid": "a::b", "outcome": "failed", "message": "",
                          "duration": 1e400},
    "message a dict": {"event": "result", "nodeid": "a::b", "outcome": "failed", "message": {"a": 1}},
    "message huge": {"event": "result", "nodeid": "a::b", "outcome": "failed", "message": "x" * 10_000},
    "exitstatus a list": {"event": "finish", "exitstatus": [0]},
    "nodeid with a newline": {"event": "start", "nodeid": "a::b\nhidden text"},
    "an extra field": {"event": "start", "nodeid": "a::b", "payload": "hidden text"},
    "a missing field": {"event": "result", "nodeid": "a::b", "outcome": "passed"},
    "not an object": [1, 2, 3],
    "an unknown kind": {"event": "verdict", "points": 208},
}


@pytest.mark.parametrize("event", WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_a_wrong_typed_event_is_ignored_and_flagged(tmp_path, event):
    record = tmp_path / "record.jsonl"
    lines = [json.dumps(GOOD[0]), json.dumps(event), *(json.dumps(e) for e in GOOD[1:])]
    record.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = Run.from_record(record)  # must not raise
    assert list(run.tests) == ["tests/ex01_mini/test_mini.py::test_add"], run.tests
    assert run.tests["tests/ex01_mini/test_mini.py::test_add"].outcome == "passed"
    problems = record_check.check_file(record)
    assert len(problems) == 1 and problems[0].startswith("record line 2: "), problems


def test_the_honest_record_has_no_problem(tmp_path):
    record = tmp_path / "record.jsonl"
    record.write_text("".join(json.dumps(e) + "\n" for e in GOOD) + '{"event": "coll', encoding="utf-8")
    assert record_check.check_file(record) == [], "a cut last line is a killed process, not a forgery"
    assert record_schema.read(record).problems == []


def test_a_flood_of_well_formed_events_is_cut_at_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(record_schema, "MAX_RECORD_BYTES", 64 * 1024)
    record = tmp_path / "record.jsonl"
    line = json.dumps(GOOD[0]) + "\n"
    record.write_text(line * (4 * 64 * 1024 // len(line)), encoding="utf-8")
    read = record_schema.read(record)
    assert len(read.events) * len(line) <= 64 * 1024, len(read.events)
    assert any("larger than" in p for p in read.problems), read.problems
    assert any("flood" in p for p in record_check.check_file(record)), record_check.check_file(record)


def test_too_many_events_are_cut(tmp_path, monkeypatch):
    monkeypatch.setattr(record_schema, "MAX_EVENTS", 10)
    record = tmp_path / "record.jsonl"
    record.write_text((json.dumps(GOOD[1]) + "\n") * 50, encoding="utf-8")
    read = record_schema.read(record)
    assert len(read.events) == 10 and any("more than 10 events" in p for p in read.problems), read.problems
    assert any("flood" in p for p in record_check.check_file(record))


def test_the_collector_drains_a_flood_but_keeps_only_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(record_schema, "MAX_RECORD_BYTES", 256 * 1024)
    record = tmp_path / "record.jsonl"
    record.touch()
    read_end, write_end = os.pipe()
    collector = _Collector(read_end, record)
    collector.start()
    written = []

    def flood() -> None:
        with os.fdopen(write_end, "wb") as pipe:
            for _ in range(64):
                pipe.write(b"x" * 64 * 1024)  # 4 MiB in all: a writer the collector stopped reading would block
            written.append(True)

    writer = threading.Thread(target=flood, daemon=True)
    writer.start()
    writer.join(60)
    assert written, "the flood's writer blocked: the collector stopped draining the pipe"
    collector.join(30)
    collector.stop()
    assert record.stat().st_size == 256 * 1024 + 1, record.stat().st_size


# ---- names: only the grader's own ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_workbook(tmp_path_factory.mktemp("instructor") / "workbook")
    (root / "tests" / "ex01_mini" / "test_params.py").write_text(
        "import pytest\n\n\n@pytest.mark.criterion('ex01.t1.adds')\n"
        "@pytest.mark.parametrize(('a', 'expected'), [(2, 'two'), (3, 'not a url'), (-5, 'minus')])\n"
        "def test_param(a, expected):\n    pass\n", encoding="utf-8")
    return root


def outcome(nodeid: str, criteria: list[str], result: str = "failed", message: str = "boom") -> Outcome:
    return Outcome(nodeid=nodeid, path=nodeid.split("::")[0], criteria=criteria, speed=0, outcome=result,
                       message=message)


def confined(workbook: Path, tests: list[Outcome], **run) -> tuple[Run, list[str]]:
    rubric = load(workbook)
    known = inventory.Inventory.of_tree(workbook, list(rubric.exercises))
    result = Run(tests={t.nodeid: t for t in tests}, **run)
    return result, inventory.confine(result, known)


def test_a_test_the_grader_does_not_have_is_dropped_and_flagged(workbook):
    smuggled = "tests/ex01_mini/test_mini.py::test_YWRkKC0yLCAzKTogZXhwZWN0ZWQgMQ"  # base64 of a hidden line
    run, violations = confined(workbook, [outcome(smuggled, ["ex01.t1.adds"]),
                                          outcome("tests/ex01_mini/test_mini.py::test_add", ["ex01.t1.adds"])])
    assert list(run.tests) == ["tests/ex01_mini/test_mini.py::test_add"], run.tests
    assert len(violations) == 1 and "does not have" in violations[0], violations


def test_criteria_of_another_exercise_are_not_believed(workbook):
    run, violations = confined(workbook, [outcome("tests/ex02_greeting/test_greeting.py::test_greet",
                                                  ["ex01.t1.adds", "ex02.t1.greets"])])
    test = next(iter(run.tests.values()))
    assert test.criteria == ["ex02.t1.greets"] and len(violations) == 1, (test.criteria, violations)


def test_a_hidden_test_under_a_public_criterion_is_still_not_named(workbook):
    hidden = "tests/ex01_mini/test_hidden.py::test_add_negative"
    run, violations = confined(workbook, [outcome(hidden, ["ex01.t1.adds"], message="add(-2, 3): expected 1")])
    rubric = load(workbook)
    shown = grade(rubric, list(rubric.exercises), run, target="starter")
    text = json.dumps(shown.to_json())
    assert "test_hidden" not in text and "test_add_negative" not in text and "add(-2, 3)" not in text, text


def test_parameter_ids_are_shown_only_when_the_test_file_makes_them(workbook):
    honest = ["tests/ex01_mini/test_params.py::test_param[2-two]",
              "tests/ex01_mini/test_params.py::test_param[3-not a url]",
              "tests/ex01_mini/test_params.py::test_param[-5-minus]", "tests/ex01_mini/test_params.py::test_param[]"]
    forged = "tests/ex01_mini/test_params.py::test_param[assert result == 1, f'add(-2, 3)']"
    run, violations = confined(workbook, [outcome(n, ["ex01.t1.adds"]) for n in [*honest, forged]],
                               notes=[f"the test process died (exit code 1) during {forged}; that test failed"])
    assert violations == [], violations
    assert [run.tests[n].nodeid for n in honest] == honest
    assert run.tests[forged].nodeid == "tests/ex01_mini/test_params.py::test_param[…]"
    assert "add(-2, 3)" not in run.notes[0] and "test_param[…]" in run.notes[0], run.notes


def test_collection_errors_of_files_the_grader_does_not_have_are_dropped(workbook):
    run, violations = confined(workbook, [], collection_errors={
        "tests/ex01_mini/test_mini.py": "ImportError: x", "tests/ex01_mini/assert result == 1": "x",
        "tests/ex01_mini": "the test process died"})
    assert sorted(run.collection_errors) == ["tests/ex01_mini", "tests/ex01_mini/test_mini.py"], run.collection_errors
    assert len(violations) == 1, violations


def test_the_starter_import_item_is_the_graders(workbook):
    run, violations = confined(workbook, [outcome("tests/ex01_mini::mini_imports", ["ex01.t1.adds"])])
    assert violations == [] and list(run.tests) == ["tests/ex01_mini::mini_imports"], violations


# ---- messages: a hidden line encoded is still a hidden line -----------------------------------------------
HIDDEN_LINE = 'assert result == 1, f"add(-2, 3): expected 1, got {result!r}"'
ENCODED = {
    "verbatim": HIDDEN_LINE,
    "base64": base64.b64encode(HIDDEN_LINE.encode()).decode(),
    "urlsafe base64 unpadded": base64.urlsafe_b64encode(HIDDEN_LINE.encode()).decode().rstrip("="),
    "base32 lower-case": base64.b32encode(HIDDEN_LINE.encode()).decode().lower(),
    "hex": HIDDEN_LINE.encode().hex(),
    "reversed": HIDDEN_LINE[::-1],
    "backslash escapes": "".join(f"\\x{ord(c):02x}" for c in HIDDEN_LINE),
    "percent escapes": urllib.parse.quote(HIDDEN_LINE, safe=""),
    "html entities": "".join(f"&#{ord(c)};" for c in HIDDEN_LINE),
    "respaced and upper-cased": HIDDEN_LINE.upper().replace(" ", "  "),
}


@pytest.mark.parametrize("text", ENCODED.values(), ids=ENCODED.keys())
def test_a_hidden_line_is_found_however_it_is_encoded(workbook, text):
    from grading.submission.quoted_secrets import secret_detector

    quotes_a_secret = secret_detector(workbook, workbook)
    assert quotes_a_secret(f"add(2, 3): expected 5, got {text!r}"), text


def test_honest_messages_are_not_taken_for_secrets(workbook):
    from grading.submission.quoted_secrets import secret_detector

    quotes_a_secret = secret_detector(workbook, workbook)
    for message in ("add(2, 3): expected 5, got 6", "result = mini.add(2, 3) failed",
                    "NotImplementedError: Exercise 1 · Task 2: implement parse_status (exercises/ex01_mini.md#task-2)",
                    "greet('Ada'): expected 'Hello, Ada!', got 'Hi'", "c2VjcmV0IGJ1dCBub3QgaGlkZGVu"):
        assert not quotes_a_secret(message), message


def test_every_test_of_the_real_suite_has_a_name_the_grader_vouches_for():
    """An honest record names only tests the grader has, with parameter ids it can vouch for: else an honest
    submission would be `tampered`, or its report would hide which case failed."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    rubric = load(root)
    folders = [e.test_folder for e in rubric.exercises if (root / e.test_folder).is_dir()]
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--target=solution", *folders],
                          cwd=root, capture_output=True, text=True, timeout=600, check=False)
    nodeids = [line for line in done.stdout.splitlines() if "::" in line]
    assert done.returncode == 0 and nodeids, done.stdout[-2000:] + done.stderr[-2000:]
    known = inventory.Inventory.of_tree(root, list(rubric.exercises))
    assert [n for n in nodeids if known.exercise_of(n) is None] == []
    assert [n for n in nodeids if known.shown(n) != n] == []
