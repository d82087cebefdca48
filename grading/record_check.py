"""What an honest test process's record looks like, checked event by event.

grading.pytest_plugin writes, per process: `collected` (and `collection_error`) lines, then for each
test `start` and its `result`, one test at a time, then `finish`. Lines that break that order (a result
for a test that is not running, a second result, anything after `finish`, a test nobody collected) were
not written by the plugin: a submission writing to the channel itself.
"""

from __future__ import annotations

import json
from pathlib import Path

KINDS = {"collected", "collection_error", "start", "result", "finish"}


def violations(lines: list[str]) -> list[str]:
    """One line per event that an honest process would not have written (empty: the record is in order)."""
    found: list[str] = []
    collected: set[str] = set()
    seen: set[str] = set()
    running: str | None = None
    finished = False
    for number, line in enumerate(lines, start=1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            if number != len(lines):  # the last line of a killed process may be cut
                found.append(f"record line {number} is not JSON")
            continue
        kind = event.get("event") if isinstance(event, dict) else None
        nodeid = event.get("nodeid") if isinstance(event, dict) else None
        problem = None
        if kind not in KINDS:
            problem = f"an unknown event {kind!r}"
        elif finished:
            problem = f"a {kind} event after the run finished"
        elif kind == "collected":
            if seen or nodeid in collected:
                problem = f"{nodeid} collected twice or after tests started"
            collected.add(nodeid)
        elif kind == "start":
            if running is not None or nodeid not in collected or nodeid in seen:
                problem = f"{nodeid} started out of turn"
            running = nodeid
            seen.add(nodeid)
        elif kind == "result":
            if nodeid != running:
                problem = f"a result for {nodeid}, which was not running"
            running = None
        elif kind == "finish":
            if running is not None:
                problem = f"the run finished while {running} was running"
            finished = True
        if problem:
            found.append(f"record line {number}: {problem}")
    return found


def check_file(path: Path, start_line: int = 0) -> list[str]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()[start_line:]
    return violations(lines)
