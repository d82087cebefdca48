"""What an honest test process's record looks like, checked event by event.

grading.judge.recorder writes, per process: `collected` (and `collection_error`) lines, then for each
test `start` and its `result`, one test at a time, then `finish`. Lines that break that order (a result
for a test that is not running, a second result, anything after `finish`, a test nobody collected) were
not written by the recorder: a submission writing to the channel itself.
"""

from __future__ import annotations

from pathlib import Path

from grading.suite import record_schema


def violations(lines: list[str]) -> list[str]:
    """One line per event that an honest process would not have written (empty: the record is in order)."""
    found: list[str] = []
    collected: set[str] = set()
    seen: set[str] = set()
    running: str | None = None
    finished = False
    for number, line in enumerate(lines, start=1):
        event, wrong = record_schema.decode(line)
        if wrong is not None:
            if not (number == len(lines) and wrong == "not JSON"):  # the last line of a killed process may be cut
                found.append(f"record line {number}: {wrong}")
            continue
        kind, nodeid = event["event"], event.get("nodeid")
        problem = None
        if finished:
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
    """The violations of the lines from `start_line` on (one process's part), within the record's size limit."""
    try:
        with path.open("rb") as file:
            data = file.read(record_schema.MAX_RECORD_BYTES + 1)
    except OSError:
        return []
    found = []
    if len(data) > record_schema.MAX_RECORD_BYTES:
        data = data[:record_schema.MAX_RECORD_BYTES]
        found.append(f"the record is larger than {record_schema.MAX_RECORD_BYTES // 1024 // 1024} MiB (a flood of "
                     "events no honest run writes)")
    lines = data.splitlines()[start_line:]
    if len(lines) > record_schema.MAX_EVENTS:
        found.append(f"the record holds more than {record_schema.MAX_EVENTS} events (a flood)")
        lines = lines[:record_schema.MAX_EVENTS]
    return found + violations(lines)
