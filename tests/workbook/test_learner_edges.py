"""The learner's loop at its edges, on the fixture workbook: Ctrl-C during a run of code that never returns,
a hang located in the starter, one line for a starter that does not import in a one-file pytest run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from tests.workbook.grading_fixtures.builder import make_workbook

# Each test starts the grading CLI, which imports Airflow: on a loaded machine that takes minutes.
pytestmark = pytest.mark.timeout(900)

# Ctrl-C must give the prompt back at once; the bound is generous for a loaded machine (seen: well under 2 s).
STOP_BOUND_S = 10.0
STARTED_BOUND_S = 600.0

BUSY_ADD = '''"""add() spins forever, after writing its process id where the test can read it."""
import os
from pathlib import Path
from types import SimpleNamespace

from starters._todo import todo


def add(a, b):
    Path(__file__).with_name("busy.pid").write_text(str(os.getpid()))
    while True:
        pass


def parse_status(payload):
    raise todo("1", 2, "implement parse_status", "ex01_mini.md#task-2")


class Countdown:
    def __init__(self, start):
        self.start = start

    def ticks(self):
        raise todo("1", 2, "implement Countdown.ticks", "ex01_mini.md#task-2")
'''


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    return make_workbook(tmp_path / "workbook")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for_busy_loop(mark: Path, process: subprocess.Popen) -> int:
    """The busy starter's pid, once it runs (polled: the CLI first imports Airflow, which takes a while)."""
    deadline = time.monotonic() + STARTED_BOUND_S
    while not (mark.exists() and mark.read_text(encoding="utf-8").strip()):
        if process.poll() is not None:
            pytest.fail(f"the command ended before the starter ran:\n{process.stdout.read()}")
        if time.monotonic() > deadline:
            pytest.fail(f"the starter did not run within {STARTED_BOUND_S:g} s")
        time.sleep(0.1)
    return int(mark.read_text(encoding="utf-8"))


@pytest.mark.parametrize(("command", "whom"), [
    (("watch", "ex01", "--once"), "terminal"),  # Ctrl-C in a terminal: every process of the foreground group
    (("watch", "ex01", "--once"), "front"),  # an IDE's stop button: the command alone
    (("check", "ex01"), "front"),
    (("grade", "--out", "reports"), "terminal"),
])
def test_ctrl_c_during_a_busy_loop_stops_at_once_and_leaves_no_process(workbook, command, whom):
    (workbook / "starters" / "mini.py").write_text(BUSY_ADD, encoding="utf-8")
    process = subprocess.Popen([sys.executable, "-m", "grading", "--root", str(workbook), *command],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    busy = None
    try:
        busy = _wait_for_busy_loop(workbook / "starters" / "busy.pid", process)
        assert _alive(busy)
        if whom == "terminal":
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        process.wait(timeout=120)
        took = time.monotonic() - interrupted
    finally:
        with_children = [process.pid] + ([busy] if busy else [])
        for pid in with_children:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        process.wait()
    assert took < STOP_BOUND_S, f"Ctrl-C took {took:.1f} s to give the prompt back"
    assert not _alive(busy), "the learner's busy loop outlived the command"
    assert process.returncode == 130, process.stdout.read()


@pytest.mark.parametrize("broken", ["def add(a, b:\n    return a + b\n", "import no_such_module_anywhere\n"])
@pytest.mark.parametrize("selection", ["tests/ex01_mini/test_mini.py", "tests/ex01_mini/test_mini.py::test_add",
                                       "tests/ex01_mini/"])
def test_a_starter_that_does_not_import_is_a_few_lines_in_any_pytest_run(workbook, broken, selection):
    (workbook / "starters" / "mini.py").write_text(broken, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
                           "--target=starter", selection], cwd=workbook, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + done.stderr
    why = "SyntaxError" if broken.startswith("def") else "No module named 'no_such_module_anywhere'"
    assert why in output, output
    assert "starters/mini.py:1" in output, output
    assert len(output.splitlines()) <= 30, f"{len(output.splitlines())} lines:\n{output}"
    assert "Traceback" not in output, output


def test_watch_notices_when_a_task_it_moved_past_breaks(workbook):
    import io

    from grading.core.rubric import load
    from grading.learner.watch import watch_loop
    from grading.learner.watch_view import LEGEND
    from grading.learner.watch_worker import Worker

    starter = workbook / "starters" / "mini.py"
    add_done = BUSY_ADD.replace('''    Path(__file__).with_name("busy.pid").write_text(str(os.getpid()))
    while True:
        pass''', "    return a + b")
    starter.write_text(add_done, encoding="utf-8")
    out = io.StringIO()
    screens = []

    def saves():
        screens.append(out.getvalue())
        starter.write_text(add_done.replace("return a + b", "return a - b"), encoding="utf-8")
        yield {starter}
        screens.append(out.getvalue()[len(screens[0]):])

    rubric = load(workbook)
    worker = Worker(workbook, "starter")
    try:
        watch_loop(workbook, rubric, [rubric.exercise("ex01")], target="starter", run_tests=worker.run,
                   changes=saves(), out=out, clear=False)
    finally:
        worker.close()
    first, after_break = screens
    assert "<- you are here" in first.split("t2   parse", 1)[1].splitlines()[0] and LEGEND in first, first
    assert "ex01.t1 broke" in after_break, after_break
    assert "<- you are here" in after_break.split("t1   add", 1)[1].splitlines()[0], after_break
    assert "Next: ex01.t1.adds" in after_break and "expected 5, got -1" in after_break, after_break
    assert " 1 tests " not in out.getvalue(), out.getvalue()


HANGING_ADD = BUSY_ADD.replace('''    Path(__file__).with_name("busy.pid").write_text(str(os.getpid()))
    while True:
        pass''', '''    total = a
    while total != a + b:  # never true for b > 0: the bug stays on this line
        total -= 1
    return total''')
HANG_LINE = HANGING_ADD.splitlines().index("    while total != a + b:  # never true for b > 0: the bug stays on this line") + 1


def test_check_names_the_line_a_hanging_test_was_cut_on(workbook, capsys):
    from grading.cli import main

    # Only add(2, 3) hangs: the hidden test (add(-2, 3)) runs first and passes, then test_add hangs.
    hangs_for_b_3 = HANGING_ADD.replace("while total != a + b:", "while a == 2 and total != a + b:")
    (workbook / "starters" / "mini.py").write_text(hangs_for_b_3, encoding="utf-8")
    assert main(["--root", str(workbook), "check", "ex01", "t1", "--timeout", "5"]) == 0
    shown = capsys.readouterr().out
    assert f"the code was at starters/mini.py:{HANG_LINE} in add" in shown, shown


def test_check_stops_a_task_at_its_first_hang(workbook, capsys):
    from grading.cli import main

    (workbook / "starters" / "mini.py").write_text(HANGING_ADD, encoding="utf-8")
    started = time.monotonic()
    assert main(["--root", str(workbook), "check", "ex01", "t1", "--timeout", "5"]) == 0
    took = time.monotonic() - started
    shown = capsys.readouterr().out
    # ex01.t1 has two tests (the hidden test_add_negative, then test_add): the second does not run after the hang
    assert "[.x] 0/2  (1 not run after a hang)" in shown, shown
    assert took < 240, f"check ran {took:.0f} s"


def test_pytest_names_the_line_a_hanging_test_was_cut_on(workbook):
    (workbook / "starters" / "mini.py").write_text(HANGING_ADD, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly",
                           "--target=starter", "--timeout=5", "tests/ex01_mini/test_mini.py::test_add"],
                          cwd=workbook, capture_output=True, text=True, timeout=600, check=False)
    assert f"Timeout (>5.0s) from pytest-timeout: the code was at starters/mini.py:{HANG_LINE} in add" in done.stdout, \
        done.stdout


def _criterion(cid: str, message: str, status: str = "failed", visibility: str = "public"):
    from grading.scoring.grade import CriterionResult

    return CriterionResult(id=cid, title=f"title of {cid}", visibility=visibility, status=status, points=0,
                           max_points=1, message=message, hint=f"hint of {cid}", tests=[])


def _grade_of(*tasks: tuple[str, list]):
    from grading.scoring.grade import ExerciseResult, Grade, TaskResult

    task_results = [TaskResult(id=tid, title=f"task {tid}", points=0, max_points=len(cs), criteria=cs)
                    for tid, cs in tasks]
    exercise = ExerciseResult(id="ex09", title="Nine", points=0, max_points=9, tasks=task_results,
                              collection_errors={})
    return Grade(target="starter", exercises=[exercise], notes=[], run={},
                 submission="/tmp/workbook-submission-abc123/alice")


TODO = "NotImplementedError: Exercise 9 · Task 1: implement Sensor.poke (exercises/ex09.md#task-1)"


def test_a_report_tells_an_unfinished_task_in_one_line():
    from grading.scoring import reports

    grade = _grade_of(("ex09.t1", [
        _criterion("ex09.t1.a", TODO),
        _criterion("ex09.t1.b", "AssertionError: Sensor.execute(): expected no deferral, got "
                                "NotImplementedError('Exercise 9 · Task 1: implement Sensor.poke')"),
        _criterion("ex09.t1.c", "Failed: DID NOT RAISE ValueError"),
    ]))
    markdown, table = reports.markdown(grade), reports.table(grade)
    lines = [line for line in markdown.splitlines() if "**ex09.t1" in line]
    assert len(lines) == 1 and "3 criteria" in lines[0] and TODO in lines[0], markdown
    assert "| t1 · task ex09.t1 | 0/3 | 0/3 | unfinished |" in markdown, markdown
    assert len([line for line in table.splitlines() if line.startswith("  ex09.t1")]) == 1, table


def test_a_report_of_a_copy_that_does_not_import_says_why_once():
    from grading.scoring import reports
    from grading.scoring.redaction import HIDDEN_MESSAGE

    broken = "starters/nine.py:38: SyntaxError: expected ':'"
    grade = _grade_of(("ex09.t1", [_criterion("ex09.t1.a", broken), _criterion("ex09.t1.b", broken)]),
                      ("ex09.t2", [_criterion("ex09.t2.a", broken),
                                   _criterion("ex09.t2.h", HIDDEN_MESSAGE, visibility="hidden")]))
    markdown, table = reports.markdown(grade), reports.table(grade)
    assert markdown.count("SyntaxError") == 1, markdown
    assert f"> **Every criterion not met here:** {broken}" in markdown, markdown
    assert table.count("SyntaxError") == 1, table


def test_a_report_header_shows_a_temp_path_as_written():
    from grading.scoring import reports

    markdown = reports.markdown(_grade_of(("ex09.t1", [_criterion("ex09.t1.a", "AssertionError: no")])))
    header = markdown.splitlines()[2]
    assert "submission `<temp>/alice`" in header and "&lt;" not in header, header


def test_the_running_line_shows_the_test_that_runs_and_its_limit():
    from grading.learner.ticker import RunState, status_line

    state = RunState([{"event": "collected", "nodeid": "t.py::a"}, {"event": "collected", "nodeid": "t.py::b"},
                      {"event": "start", "nodeid": "t.py::a", "at": 100.0},
                      {"event": "result", "nodeid": "t.py::a"},
                      {"event": "start", "nodeid": "t.py::b", "at": 101.0}])
    line = status_line(state, elapsed=47.2, now=146.0, per_test_limit=60)
    assert line == "running: 1/2 tests done · b for 45 s (cut at 60 s) · 47 s in all · Ctrl-C stops", line


SENSORS = '''
from airflow.sdk.bases.sensor import BaseSensorOperator


class SaysNotYet(BaseSensorOperator):
    def poke(self, context):
        return "not yet"


class SaysFalse(BaseSensorOperator):
    def poke(self, context):
        return False
'''


def test_a_poke_that_returns_neither_bool_nor_poke_return_value_is_shown_with_its_type():
    import types

    from grading.judge.messages import failure_message, learner_notes
    from tests.conftest import _note_odd_pokes

    module = types.ModuleType("starters.odd_sensors")
    exec(compile(SENSORS, "starters/odd_sensors.py", "exec"), module.__dict__)  # noqa: S102 (the test's own code)
    _note_odd_pokes(module)
    learner_notes.clear()
    assert module.SaysFalse(task_id="quiet").poke({}) is False
    assert learner_notes == [], "a bool is what Airflow expects: nothing to note"
    assert module.SaysNotYet(task_id="odd").poke({}) == "not yet", "the noted poke still returns what it returned"
    note = "SaysNotYet.poke() returned 'not yet' (str), not a bool or a PokeReturnValue"
    assert learner_notes == [note]
    try:
        raise AssertionError("got [('pending', True)]")
    except AssertionError as error:
        excinfo = pytest.ExceptionInfo.from_exception(error)
    failed = SimpleNamespace(passed=False, skipped=False, fspath="tests/test_x.py", longrepr=None)
    try:
        assert failure_message(failed, SimpleNamespace(excinfo=excinfo)) == f"AssertionError: got [('pending', True)]; {note}"
    finally:
        learner_notes.clear()


def test_an_exception_raised_in_learner_code_names_its_line(tmp_path):
    from grading.judge.messages import failure_message

    (tmp_path / "starters").mkdir()
    source = tmp_path / "starters" / "mod.py"
    source.write_text("def read(payload):\n    return payload.get('status')\n", encoding="utf-8")
    namespace: dict = {}
    exec(compile(source.read_text(encoding="utf-8"), str(source), "exec"), namespace)  # noqa: S102
    try:
        namespace["read"]("a str")
    except AttributeError as error:
        excinfo = pytest.ExceptionInfo.from_exception(error)
    failed = SimpleNamespace(passed=False, skipped=False, fspath=str(tmp_path / "tests" / "test_x.py"), longrepr=None)
    assert failure_message(failed, SimpleNamespace(excinfo=excinfo), tmp_path) == \
        "AttributeError: 'str' object has no attribute 'get' (at starters/mod.py:2 in read)"
