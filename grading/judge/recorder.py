"""The graded record: one JSON line per test event, written as soon as it is known (a run that crashes or is
cut short still leaves everything up to the last test), and the gates that leave out slow tests that cannot
change the outcome (see grading.judge.plugin's options).

A graded submission's run writes to an inherited file descriptor, its number in WORKBOOK_GRADING_FD, read and
removed before any test module is imported and the descriptor moved to a random number; a run of its own
(`--grading-record=FILE`) appends to a file.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import IO, Any

import pytest

from grading.core.channel import CHANNEL_FD_VAR
from grading.core.speed import speed_of
from grading.judge.hardening import Watchdog, hide_fd, kill_forked_copies
from grading.judge.messages import (
    collection_message,
    failure_message,
    is_timeout,
    learner_notes,
    take_measured,
)

GATE_KEY = pytest.StashKey[str]()  # why the gate left this test out


def open_record(config: pytest.Config) -> IO[str] | None:
    """Where this process writes the record: the grader's channel, else --grading-record, else nowhere."""
    channel = os.environ.pop(CHANNEL_FD_VAR, None)
    if channel is not None:
        return os.fdopen(hide_fd(int(channel)), "w", encoding="utf-8")
    path = config.getoption("--grading-record")
    return Path(path).open("a", encoding="utf-8") if path else None


ALL_EVENTS = frozenset({"collected", "collection_error", "start", "result", "finish"})


class Recorder:
    """Writes the record and gates slow tests: a pytest plugin object, its hooks see every test."""

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
            self.write(event="collection_error", path=report.nodeid, message=collection_message(report))

    # ---- running ---------------------------------------------------------------------------------------
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        learner_notes.clear()
        self.write(event="start", nodeid=nodeid, at=time.time())
        if self.reap_clones:
            self.watchdog = Watchdog(self.per_test_timeout)
            self.watchdog.start()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        reason = self._gate_reason(item)
        if reason:
            item.stash[GATE_KEY] = reason
            pytest.skip(reason)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        report = yield
        report.grading_message = failure_message(report, call, item.config.rootpath)
        report.grading_not_run = item.stash.get(GATE_KEY, None) is not None
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
        measured = take_measured()
        self.write(event="result", nodeid=nodeid, outcome=outcome, message=message, timed_out=timed_out,
                   duration=round(duration, 3), **({"measured": measured} if measured else {}))
        if self.reap_clones:
            self.watchdog.finished.set()
            kill_forked_copies()
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
            kill_forked_copies()  # the sandbox ends only when its last process has

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


def events_of_this_process(config: pytest.Config) -> frozenset[str]:
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


def _criteria(item: pytest.Item) -> list[str]:
    return [str(m.args[0]) for m in item.iter_markers("criterion") if m.args]


def _tasks(criteria: list[str]) -> set[str]:
    return {c.rsplit(".", 1)[0] for c in criteria}


def rubric_builds_on(root: Path) -> dict[str, tuple[str, ...]]:
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
