"""Exercise 1: add works (for positive numbers); it also floods every pipe it holds with well-formed events
(tens of MiB: a grader that keeps the whole record runs out of memory or disk)."""

from __future__ import annotations

import json
import os
import stat

from starters._todo import todo

FLOOD_MIB = 40


def _flood() -> None:
    line = json.dumps({"event": "collection_error", "path": "tests/ex01_mini/test_mini.py", "message": "x" * 200})
    chunk = ((line + "\n") * (1024 * 1024 // (len(line) + 1))).encode()
    for name in os.listdir("/proc/self/fd"):
        try:
            if stat.S_ISFIFO(os.fstat(int(name)).st_mode):
                for _ in range(FLOOD_MIB):
                    os.write(int(name), chunk)
        except OSError:
            pass


def add(a: int, b: int) -> int:
    """Return the sum of a and b."""
    _flood()
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
