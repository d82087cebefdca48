"""Exercise 1: add works (for positive numbers), but importing the module ends the test process with pytest's
usage-error status, as if pytest could not start: the grade would be "could not grade" instead of a score."""

from __future__ import annotations

import importlib

from starters._todo import todo

importlib.import_module("os")._exit(4)


def add(a: int, b: int) -> int:
    """Return the sum of a and b."""
    return abs(a) + abs(b)


def parse_status(payload: dict[str, str]) -> str:
    """The payload's status, lower-cased, when it is 'ok' or 'down'; ValueError otherwise."""
    raise todo("1", 2, "implement parse_status", "ex01_mini.md#task-2")


class Countdown:
    def __init__(self, start: int) -> None:
        self.start = start

    def ticks(self) -> list[int]:
        """start, start - 1, ..., 0."""
        raise todo("1", 2, "implement Countdown.ticks", "ex01_mini.md#task-2")
