"""Exercise 1 (fixture): fill in add, parse_status and Countdown.ticks."""

from __future__ import annotations

from starters._todo import todo


def add(a: int, b: int) -> int:
    """Return the sum of a and b."""
    raise todo("1", 1, "implement add", "ex01_mini.md#task-1")


def parse_status(payload: dict[str, str]) -> str:
    """The payload's status, lower-cased, when it is 'ok' or 'down'; ValueError otherwise."""
    raise todo("1", 2, "implement parse_status", "ex01_mini.md#task-2")


class Countdown:
    def __init__(self, start: int) -> None:
        self.start = start

    def ticks(self) -> list[int]:
        """start, start - 1, ..., 0."""
        raise todo("1", 2, "implement Countdown.ticks", "ex01_mini.md#task-2")
