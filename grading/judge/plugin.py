"""The pytest side of grading, loaded with `-p grading.judge.plugin` into the graded run: its options, and the
recorder (grading.judge.recorder) registered when the run is recorded.

It records what happened to every test as JSON lines, one line as soon as it is known, so a run that
crashes or is cut short still leaves everything up to the last test. Optionally it gates slow tests:

- `--grading-gate=exercise`: a task's integration tests run only when its unit tests passed (and those of
  the tasks it builds on, per the rubric), its e2e tests only when its integration tests passed too (the
  learner's fast loop: another task left unstarted holds nothing back);
- `--grading-gate=criterion`: a test is not run when every criterion it proves already failed (enough to
  show that a criterion earns nothing, e.g. that the shipped starters earn 0 %).

A graded submission's run writes its events to an inherited file descriptor instead of a file (its
number in WORKBOOK_GRADING_FD, read and removed before any test module is imported, and the descriptor
moved to a random number): the grader reads the other end, so no path names the outcomes. In the sandbox the
test process is hardened too (grading.judge.hardening); failure messages are grading.judge.messages'.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from grading.core.channel import SANDBOXED_VAR
from grading.judge.hardening import demote
from grading.judge.recorder import Recorder, events_of_this_process, open_record, rubric_builds_on

_record_key = pytest.StashKey[dict[str, Any]]()


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


def pytest_configure(config: pytest.Config) -> None:
    file = open_record(config)
    if file is not None:
        sandboxed = os.environ.pop(SANDBOXED_VAR, "") == "1"
        if sandboxed:
            os.register_at_fork(after_in_child=demote)
        recorder = Recorder(file, config.getoption("--grading-gate"), reap_clones=sandboxed,
                            events=events_of_this_process(config))
        recorder.per_test_timeout = float(config.getoption("timeout", default=0) or 0)
        recorder.stop_on_hang = bool(config.getoption("--grading-stop-on-hang"))
        if recorder.gate == "exercise":
            recorder.builds_on = rubric_builds_on(config.rootpath)
        config.stash[_record_key] = {"recorder": recorder}
        config.pluginmanager.register(recorder, "grading-recorder")


def pytest_unconfigure(config: pytest.Config) -> None:
    state = config.stash.get(_record_key, None)
    if state:
        state["recorder"].close()
