"""What grade-class prints while it grades: one line per finished submission, and a live counter on a
terminal."""

from __future__ import annotations

import sys
from typing import Any

from grading.core.verdicts import VERDICT_FLAG


class Progress:
    """One line per finished submission; on a terminal also a counter line that rewrites itself."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total, self.done = total, 0
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self._counter()

    def advance(self, line: str) -> None:
        self.done += 1
        if self.live:
            self.stream.write("\r\033[K")
        self.stream.write(f"[{self.done}/{self.total}] {line}\n")
        self._counter()

    def _counter(self) -> None:
        if self.live and self.done < self.total:
            self.stream.write(f"grading: {self.done}/{self.total} done")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()


def describe(record: dict[str, Any], graded_now: bool) -> str:
    verdict = record["verdict"]
    if verdict == "could_not_grade":
        result = "; ".join(record.get("flags", [])) or "could not grade"
    else:
        result = f"{record['points']}/{record['max_points']} ({record['percent']:g} %)"
        if verdict != "graded":
            result = f"{VERDICT_FLAG[verdict]}: scored 0/{record['max_points']}, to review"
    suffix = f" at {record['commit'][:12]}" if record.get("commit") else ""
    return f"{record['learner']}{suffix}: {result}" + ("" if graded_now else " (already graded, skipped)")
