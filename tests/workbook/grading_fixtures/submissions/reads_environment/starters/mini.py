"""Exercise 1: add() fails with the grader's environment and home folder as its message."""

from __future__ import annotations

import os


def add(a: int, b: int) -> int:
    """Return the sum of a and b."""
    home = os.path.expanduser("~")
    raise AssertionError(f"home={home} has {os.listdir(home) if os.path.isdir(home) else []} env={dict(os.environ)!r}")


KNOWN = ("ok", "down")


def parse_status(payload: dict[str, str]) -> str:
    """The payload's status, lower-cased, when it is 'ok' or 'down'; ValueError otherwise."""
    status = str(payload.get("status", "")).lower()
    if status not in KNOWN:
        raise ValueError(f"unknown status {status!r}")
    return status


class Countdown:
    def __init__(self, start: int) -> None:
        self.start = start

    def ticks(self) -> list[int]:
        """start, start - 1, ..., 0."""
        return list(range(self.start, -1, -1))
