"""What the code under test logged through Airflow's structlog loggers (`self.log` in Airflow 3).

In a graded run the learner's code logs in the subject: the capture is made there and every read of the
events fetches them as data (a list of dicts, one per log call).
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from typing import Any

import structlog.testing

from tests.harness import remote

_open: dict[int, Any] = {}


class Events:
    """The captured events, held in the subject: each read from the judge gets the list as it is then."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events

    def __iter__(self):
        return iter(list(self.events))

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index: Any) -> Any:
        return self.events[index]

    def clear(self) -> None:
        self.events.clear()


@contextlib.contextmanager
def captured_logs() -> Generator[list[dict[str, Any]]]:
    if not remote.enabled():
        with structlog.testing.capture_logs() as events:
            yield events
        return
    remote.note_measured("log records")
    link = remote.current_link()
    number, events = link.request("call_path", module=__name__, qualname="start_capture", args=[],
                                  kwargs={"$": "dict", "items": []})
    try:
        yield events
    finally:
        if link.alive:
            link.request("call_path", module=__name__, qualname="stop_capture", args=[number],
                         kwargs={"$": "dict", "items": []})


def start_capture() -> tuple[int, Events]:
    """In the subject: start capturing; the list fills as the learner's code logs."""
    manager = structlog.testing.capture_logs()
    events = manager.__enter__()
    _open[id(manager)] = manager
    return id(manager), Events(events)


def stop_capture(number: int) -> None:
    manager = _open.pop(number, None)
    if manager is not None:
        manager.__exit__(None, None, None)
