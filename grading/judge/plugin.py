"""The pytest side of grading, loaded with `-p grading.judge.plugin` into the graded run.

It records what happened to every test as JSON lines, one line as soon as it is known, so a run that
crashes or is cut short still leaves everything up to the last test. Optionally it gates slow tests:

- `--grading-gate=exercise`: a task's integration tests run only when its unit tests passed (and those of
  the tasks it builds on, per the rubric), its e2e tests only when its integration tests passed too (the
  learner's fast loop: another task left unstarted holds nothing back);
- `--grading-gate=criterion`: a test is not run when every criterion it proves already failed (enough to
  show that a criterion earns nothing, e.g. that the shipped starters earn 0 %).

A graded submission's run writes its events to an inherited file descriptor instead of a file (its
number in WORKBOOK_GRADING_FD, read and removed before any test module is imported, and the descriptor
moved to a random number): the grader reads the other end, so no path names the outcomes.
"""

from __future__ import annotations

import ast
import json
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from grading.core.channel import CHANNEL_FD_VAR, SANDBOXED_VAR
from grading.core.errors import StarterImportError
from grading.core.speed import speed_of

# What the learner's code gave back in the test running now, when its type is not the one Airflow expects
# (tests/conftest.py notes it: `OrderStatusSensor.poke() returned 'not yet' (str), not a bool or ...`).
learner_notes: list[str] = []
MESSAGE_LIMIT = 300
_record_key = pytest.StashKey[dict[str, Any]]()
_gate_key = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grading", "workbook grading")
    group.addoption("--grading-record", default=None, help="write one JSON line per test event to this file")
    group.addoption("--grading-gate", choices=("none", "exercise", "criterion"), default="none",
                    help="skip slow tests that cannot change the outcome (see grading.judge.plugin)")
    group.addoption("--grading-deselect", default=None,
                    help="a file of node ids (one a line) not to run, e.g. the ones a crashed run already did")
    group.addoption("--grading-stop-on-hang", action="store_true", default=False,
                    help="once a test of a task times out, the task's other tests are not run (the learner's "
                         "loop: code that hangs once would hang in each of them, costing the timeout every time)")


ALL_EVENTS = frozenset({"collected", "collection_error", "start", "result", "finish"})


class Recorder:
    def __init__(self, file, gate: str, *, reap_clones: bool = False, events: frozenset[str] = ALL_EVENTS) -> None:
        self.file = file
        self.events = events  # the kinds this process writes (under pytest-xdist each process writes some)
        self.pid = os.getpid()
        self.reap_clones = reap_clones
        self.per_test_timeout = 0.0
        self.gate = gate
        self.reports: dict[str, list[pytest.TestReport]] = {}
        self.task_failed: dict[str, int] = {}  # task -> the fastest speed class that failed in it
        self.criterion_failed: set[str] = set()
        self.builds_on: dict[str, tuple[str, ...]] = {}  # task -> the tasks whose code it needs
        self.stop_on_hang = False
        self.hung: set[str] = set()  # tasks one of whose tests timed out

    def write(self, **event: Any) -> None:
        if os.getpid() != self.pid:
            return  # a forked copy of the test process (a fork in a test) speaks for nobody
        if event["event"] not in self.events:
            return  # in a parallel run another process writes this kind
        self.file.write(json.dumps(event, default=str) + "\n")
        self.file.flush()

    def close(self) -> None:
        self.file.close()

    # ---- collection ------------------------------------------------------------------------------------
    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, session: pytest.Session, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        deselect_file = config.getoption("--grading-deselect")
        if deselect_file:
            done = set(Path(deselect_file).read_text(encoding="utf-8").split("\n")) - {""}
            keep = [item for item in items if item.nodeid not in done]
            config.hook.pytest_deselected(items=[item for item in items if item.nodeid in done])
            items[:] = keep
        for item in items:
            self.write(event="collected", nodeid=item.nodeid, path=_relative_path(item, config),
                       criteria=_criteria(item), speed=_speed(item))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.write(event="collection_error", path=report.nodeid, message=_collect_message(report))

    # ---- running ---------------------------------------------------------------------------------------
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        learner_notes.clear()
        self.write(event="start", nodeid=nodeid, at=time.time())
        if self.reap_clones:
            self.watchdog = _Watchdog(self.per_test_timeout)
            self.watchdog.start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        reason = self._gate_reason(item)
        if reason:
            item.stash[_gate_key] = reason
            pytest.skip(reason)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        report.grading_message = _message(report, call, item.config.rootpath)
        report.grading_not_run = item.stash.get(_gate_key, None) is not None
        report.grading_criteria = _criteria(item)
        report.grading_speed = _speed(item)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.setdefault(report.nodeid, []).append(report)

    def pytest_runtest_logfinish(self, nodeid: str) -> None:
        reports = self.reports.pop(nodeid, [])
        outcome, message, timed_out = "passed", "", False
        for report in reports:
            if getattr(report, "grading_not_run", False):
                outcome, message = "not_run", report.grading_message
                break
            if report.failed:
                outcome = "failed" if report.when == "call" else "error"
                if getattr(report, "infrastructure", False):  # set by tests/conftest.py: Airflow failed
                    outcome = "infrastructure"
                message = report.grading_message
                timed_out = is_timeout(message)
                break
            if report.skipped:
                # A skip earns nothing: a submission must not be able to skip its way to points.
                outcome, message = "skipped", report.grading_message
                break
        if not reports:
            outcome, message = "error", "pytest reported nothing for this test"
        duration = sum(r.duration for r in reports)
        measured = _measured_in_subject()
        self.write(event="result", nodeid=nodeid, outcome=outcome, message=message, timed_out=timed_out,
                   duration=round(duration, 3), **({"measured": measured} if measured else {}))
        if self.reap_clones:
            self.watchdog.finished.set()
            _kill_forked_copies()
        if outcome != "passed" and outcome != "not_run" and reports:
            last = reports[-1]
            criteria = getattr(last, "grading_criteria", [])
            self.criterion_failed.update(criteria)
            speed = getattr(last, "grading_speed", 0)
            for task in _tasks(criteria):
                self.task_failed[task] = min(self.task_failed.get(task, speed), speed)
                if timed_out:
                    self.hung.add(task)

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.write(event="finish", exitstatus=int(exitstatus))
        if self.reap_clones:
            _kill_forked_copies()  # the sandbox ends only when its last process has

    def _gate_reason(self, item: pytest.Item) -> str | None:
        criteria = _criteria(item)
        if self.stop_on_hang:
            for task in sorted(_tasks(criteria)):
                if task in self.hung:
                    return f"not run: a test of {task} hung before it (a task stops at its first hang)"
        if self.gate == "criterion" and criteria and set(criteria) <= self.criterion_failed:
            return "not run: its criteria already failed in another test"
        if self.gate == "exercise":
            speed = _speed(item)
            for task in sorted(_tasks(criteria)):
                for needed in (task, *self.builds_on.get(task, ())):
                    failed_at = self.task_failed.get(needed)
                    if failed_at is not None and failed_at < speed:
                        slower = "unit" if failed_at == 0 else "integration"
                        return f"not run yet: {needed}'s {slower} tests fail first"
        return None


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--grading-record")
    channel = os.environ.pop(CHANNEL_FD_VAR, None)
    file = None
    if channel is not None:
        file = os.fdopen(_hide_fd(int(channel)), "w", encoding="utf-8")
    elif path:
        file = Path(path).open("a", encoding="utf-8")
    if file is not None:
        sandboxed = os.environ.pop(SANDBOXED_VAR, "") == "1"
        if sandboxed:
            os.register_at_fork(after_in_child=_demote)
        recorder = Recorder(file, config.getoption("--grading-gate"), reap_clones=sandboxed,
                            events=_events_of_this_process(config))
        recorder.per_test_timeout = float(config.getoption("timeout", default=0) or 0)
        recorder.stop_on_hang = bool(config.getoption("--grading-stop-on-hang"))
        if recorder.gate == "exercise":
            recorder.builds_on = _builds_on(config.rootpath)
        config.stash[_record_key] = {"recorder": recorder}
        config.pluginmanager.register(recorder, "grading-recorder")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_record_key, None)
    if state:
        state["recorder"].close()


# ---- helpers ---------------------------------------------------------------------------------------------
def _events_of_this_process(config: pytest.Config) -> frozenset[str]:
    """Under pytest-xdist (`make test` runs on two workers) one record still tells each test once: every
    worker collects the whole suite, so only the first one writes `collected`; the controller hears every
    worker's start, reports and finish (and one copy of each collection error) and writes the rest. A gate
    (--grading-gate) then sees only its own worker's failures: graded runs are never parallel."""
    worker = getattr(config, "workerinput", None)
    if worker is not None:
        return frozenset({"collected"}) if worker.get("workerid") == "gw0" else frozenset()
    if getattr(config.option, "dist", "no") != "no" and getattr(config.option, "tx", None):
        return ALL_EVENTS - {"collected"}
    return ALL_EVENTS


def _hide_fd(fd: int) -> int:
    """Move the channel to a random descriptor number (not inheritable), so it is not where it was announced."""
    target = random.SystemRandom().randrange(300, 900)
    os.dup2(fd, target, inheritable=False)
    os.close(fd)
    return target


class _Watchdog(threading.Thread):
    """When a test outlives its timeout, copies it forked may be what keeps it from ending (a fork bomb
    starves the timeout's signal): end them and signal the test again."""

    def __init__(self, timeout: float) -> None:
        super().__init__(daemon=True)
        self.timeout = timeout
        self.finished = threading.Event()
        self.main = threading.main_thread().ident

    def run(self) -> None:
        if self.timeout <= 0:
            return
        while not self.finished.wait(self.timeout + 1):
            _kill_forked_copies()
            if not self.finished.is_set() and self.main is not None:
                signal.pthread_kill(self.main, signal.SIGALRM)


def _demote() -> None:
    """A copy a test forks of this process runs only when nothing else wants the CPU (it cannot undo that
    unprivileged), so a fork bomb cannot starve the tests; copies still alive after the test are killed."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def _kill_forked_copies() -> None:
    """In the sandbox (its own PID namespace), end every copy of this process a test forked and left running.

    A copy has this process's command line (a fork without exec); its own copies are orphans by the time
    their parent is killed, so every such process is ended, pass after pass, until none is left.
    """
    me = os.getpid()
    try:
        own = Path(f"/proc/{me}/cmdline").read_bytes()
    except OSError:
        return
    for _ in range(100):
        copies = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != me:
                try:
                    if (entry / "cmdline").read_bytes() == own:
                        copies.append(int(entry.name))
                except OSError:
                    continue
        if not copies:
            return
        for pid in copies:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue


def _criteria(item: pytest.Item) -> list[str]:
    return [str(m.args[0]) for m in item.iter_markers("criterion") if m.args]


def _tasks(criteria: list[str]) -> set[str]:
    return {c.rsplit(".", 1)[0] for c in criteria}


def _builds_on(root: Path) -> dict[str, tuple[str, ...]]:
    """Each task's builds_on from the rubric; without a readable rubric, every task stands alone."""
    from grading.core.rubric import RubricError, load

    try:
        rubric = load(root)
    except RubricError:
        return {}
    return {t.id: t.builds_on for e in rubric.exercises for t in e.tasks}


def _speed(item: pytest.Item) -> int:
    return speed_of(m.name for m in item.iter_markers())


def _relative_path(item: pytest.Item, config: pytest.Config) -> str:
    try:
        return Path(item.path).resolve().relative_to(config.rootpath.resolve()).as_posix()
    except ValueError:
        return str(item.path)


def _one_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 1] + "…"


def _measured_in_subject() -> list[str]:
    """What this test measured inside the learner's process, in a judge/subject run (tests.harness.remote)."""
    remote = sys.modules.get("tests.harness.remote")
    return remote.take_measured() if remote is not None else []


def starter_todo(exc: BaseException | None) -> str | None:
    """A starter's `NotImplementedError("Exercise 4 · Task 1: ...")`, anywhere in the exception chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NotImplementedError) and str(exc).startswith("Exercise"):
            return f"NotImplementedError: {_one_line(str(exc))}"
        exc = exc.__cause__ or exc.__context__
    return None


# Expressions a failing lookup's container is read back with: names, attributes and constant subscripts only,
# so reading it back calls nothing.
_PLAIN = (ast.Expression, ast.Name, ast.Attribute, ast.Subscript, ast.Constant, ast.Load)


def lookup_message(excinfo: pytest.ExceptionInfo, test_file: str | os.PathLike[str]) -> str | None:
    """A KeyError or IndexError raised by a test's own lookup (`event["status"]`, `rows[0]`) in `test_file` as the
    line a learner needs: the test's file and line, the expression, the key, and the value that came back with its
    type. Only the failing test's own file is quoted: a frame that merely claims another file's name (code can
    compile itself under any filename) never gets that file's lines into the message."""
    if not isinstance(excinfo.value, KeyError | IndexError) or not excinfo.traceback:
        return None
    entry = excinfo.traceback[-1]
    path = Path(str(entry.path))
    if "tests" not in path.parts or path.resolve() != Path(test_file).resolve():
        return None  # raised in the code under test or in a library: its own message says more
    line = str(entry.statement).strip()
    where = f"{'/'.join(path.parts[path.parts.index('tests'):])}:{entry.lineno + 1}"
    key = excinfo.value.args[0] if excinfo.value.args else None
    shown = f"{type(excinfo.value).__name__}: {excinfo.value}"
    try:
        tree = ast.parse(line)
    except SyntaxError:
        return f"{where}: {shown} in `{' '.join(line.split())[:150]}`"
    for node in ast.walk(tree):
        if (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
                and (node.slice.value == key or isinstance(excinfo.value, IndexError))
                and all(isinstance(n, _PLAIN) for n in ast.walk(ast.Expression(node.value)))):
            try:
                container = eval(compile(ast.Expression(node.value), "<lookup>", "eval"),  # noqa: S307 (plain names)
                                 entry.frame.f_globals, entry.frame.f_locals)
            except Exception:  # noqa: BLE001 (the message falls back to the line)
                continue
            wanted = f"key {node.slice.value!r}" if isinstance(excinfo.value, KeyError) else f"index {node.slice.value!r}"
            return (f"{where}: `{ast.unparse(node.value)}` has no {wanted}: it came back as "
                    f"{type(container).__name__} {container!r:.200}")
    return f"{where}: {shown} in `{' '.join(line.split())[:150]}`"


# Where a learner's code lives (the target's package): a frame there is the line a failure points at.
LEARNER_FOLDERS = ("starters", "solutions")


def learner_frame(excinfo: pytest.ExceptionInfo, root: Path) -> str | None:
    """`starters/custom_sensors.py:73 in poke`: the innermost frame of the traceback in the learner's code
    (for a timeout: where the code was when it was cut), or None when no frame is theirs."""
    import traceback

    root = root.resolve()
    folders = [root / name for name in LEARNER_FOLDERS]
    found = None
    for frame in traceback.extract_tb(excinfo.tb):
        path = Path(frame.filename)
        if path.is_absolute() and any(path.is_relative_to(folder) for folder in folders):
            found = f"{path.relative_to(root).as_posix()}:{frame.lineno} in {frame.name}"
    return found


def is_timeout(text: str) -> bool:
    return "Timeout" in text and "pytest-timeout" in text


def _message(report: pytest.TestReport, call: pytest.CallInfo, root: Path | None = None) -> str:
    """The one line a learner needs: the starter's todo as is, else the exception's first line (with the line
    of the learner's code it came from, or where a timeout cut it)."""
    if report.passed:
        return ""
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        return _one_line(str(reason).removeprefix("Skipped: "))
    excinfo = call.excinfo
    if excinfo is not None:
        todo = starter_todo(excinfo.value)
        if todo:
            return todo
        if isinstance(excinfo.value, StarterImportError):
            return _one_line(str(excinfo.value))
        lookup = lookup_message(excinfo, report.fspath)
        if lookup:
            return _one_line(lookup)
        line = _one_line(excinfo.exconly()) or excinfo.typename
        if learner_notes:
            note = learner_notes[-1]
            line = f"{line[:max(MESSAGE_LIMIT - len(note) - 2, 60)]}; {note}"
        where = learner_frame(excinfo, root) if root is not None else None
        if where and is_timeout(line):
            return f"{line.removeprefix('Failed: ').rstrip('.')}: the code was at {where}"
        return f"{line[:MESSAGE_LIMIT - len(where) - 8]} (at {where})" if where else line
    crash = getattr(report.longrepr, "reprcrash", None)
    return _one_line(crash.message if crash else str(report.longrepr))


def _collect_message(report: pytest.CollectReport) -> str:
    text = str(report.longrepr)
    # pytest's import-error report ends with the exception line ("E   ModuleNotFoundError: ..."): keep that.
    errors = [line.strip()[1:].strip() for line in text.splitlines() if line.strip().startswith("E ")]
    for line in reversed(errors):
        if line and not line.startswith("^"):
            todo_at = line.find("NotImplementedError: Exercise")
            return _one_line(line[todo_at:] if todo_at >= 0 else line)
    return _one_line(text.splitlines()[-1] if text.strip() else "could not be collected")
