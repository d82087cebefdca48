"""What the pytest run(s) reported, read from the record's events: each test's outcome, however the run ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grading.suite import record_schema


@dataclass
class TestOutcome:
    nodeid: str
    path: str
    criteria: list[str]
    speed: int
    outcome: str = "not_run"  # passed | failed | error | skipped | not_run | crashed | infrastructure
    message: str = "not run"
    timed_out: bool = False
    duration: float = 0.0
    hidden: bool = False  # in a hidden test file: never named, nor its message shown, to a learner
    measured: list[str] = field(default_factory=list)  # what it measured inside the learner's process


@dataclass
class Run:
    """What the pytest run(s) reported, however they ended."""
    tests: dict[str, TestOutcome] = field(default_factory=dict)
    collection_errors: dict[str, str] = field(default_factory=dict)  # path -> one-line reason
    notes: list[str] = field(default_factory=list)  # crashes, cut runs: shown in every report
    exit_codes: list[int] = field(default_factory=list)
    duration: float = 0.0
    violations: list[str] = field(default_factory=list)  # record lines no honest test process writes

    def add_events(self, lines: list[dict[str, Any]]) -> None:
        for event in lines:
            kind = event.get("event")
            if kind == "collected":
                self.tests.setdefault(event["nodeid"], TestOutcome(
                    nodeid=event["nodeid"], path=event["path"], criteria=list(event["criteria"]),
                    speed=int(event["speed"])))
            elif kind == "collection_error":
                self.collection_errors[event["path"]] = event["message"]
            elif kind == "start" and event["nodeid"] in self.tests:
                test = self.tests[event["nodeid"]]
                test.outcome, test.message = "crashed", "the test process died during this test"
            elif kind == "result" and event["nodeid"] in self.tests:
                test = self.tests[event["nodeid"]]
                test.outcome, test.message = event["outcome"], event["message"]
                test.timed_out, test.duration = bool(event.get("timed_out")), float(event.get("duration", 0))
                test.measured = list(event.get("measured", []))

    @classmethod
    def from_record(cls, path: Path) -> Run:
        run = cls()
        run.add_events(read_events(path))
        return run


def read_events(path: Path) -> list[dict[str, Any]]:
    """The record's events that fit its schema, within its size limit (grading.suite.record_schema); what does not
    fit is left out here and reported by grading.suite.record_check."""
    return record_schema.read(path).events
