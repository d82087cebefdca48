"""The test process's record, decoded with a schema and a size limit before the grader believes any of it.

Each line must be one JSON object of a known kind whose fields have the types and lengths
grading.judge.recorder writes; anything else is a problem (a flag for the instructor), never a crash, and the
event is ignored. The record as a whole is read up to MAX_RECORD_BYTES and MAX_EVENTS: a flood of
well-formed events costs the flood, not the grader's memory.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAX_RECORD_BYTES = 16 * 1024 * 1024  # an honest full run writes well under 1 MiB
MAX_LINE_BYTES = 16 * 1024
MAX_EVENTS = 50_000  # about 4 events per test, a few processes per run
MAX_NAME_CHARS = 400  # a node id or path
MAX_MESSAGE_CHARS = 2000  # the plugin cuts a message to one line of 300 characters
MAX_CRITERIA = 50
OUTCOMES = frozenset({"passed", "failed", "error", "skipped", "not_run", "infrastructure"})

# kind -> field -> type; a field named with a trailing "?" may be missing.
SCHEMA: dict[str, dict[str, str]] = {
    "collected": {"nodeid": "name", "path": "name", "criteria": "criteria", "speed": "int"},
    "collection_error": {"path": "name", "message": "text"},
    "start": {"nodeid": "name", "at?": "number"},
    "result": {"nodeid": "name", "outcome": "outcome", "message": "text", "timed_out?": "bool",
               "duration?": "number", "measured?": "criteria"},
    "finish": {"exitstatus": "int"},
}


@dataclass
class Record:
    events: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # "record line 3: ..." (instructor evidence)


def decode(line: str | bytes) -> tuple[dict[str, Any] | None, str | None]:
    """One record line as an event that fits the schema, or (None, why not)."""
    if len(line) > MAX_LINE_BYTES:
        return None, f"a line of {len(line)} bytes (at most {MAX_LINE_BYTES})"
    try:
        event = json.loads(line)
    except (ValueError, RecursionError):
        return None, "not JSON"
    if not isinstance(event, dict):
        return None, "not a JSON object"
    kind = event.get("event")
    fields = SCHEMA.get(kind) if isinstance(kind, str) else None
    if fields is None:
        return None, f"an unknown event {_shown(kind)}"
    wanted = {name.rstrip("?") for name in fields} | {"event"}
    if set(event) - wanted:
        return None, f"a {kind} event with unknown fields {sorted(_shown(k) for k in set(event) - wanted)}"
    for name, kind_of_value in fields.items():
        key, optional = name.rstrip("?"), name.endswith("?")
        if key not in event:
            if optional:
                continue
            return None, f"a {kind} event without {key}"
        problem = _type_problem(event[key], kind_of_value)
        if problem:
            return None, f"a {kind} event whose {key} is {problem}"
    return event, None


def read(path: Path) -> Record:
    """Every event of the record that fits the schema (at most MAX_EVENTS, from its first MAX_RECORD_BYTES)."""
    record = Record()
    try:
        with path.open("rb") as file:
            data = file.read(MAX_RECORD_BYTES + 1)
    except OSError:
        return record
    if len(data) > MAX_RECORD_BYTES:
        data = data[:MAX_RECORD_BYTES]
        record.problems.append(f"the record is larger than {MAX_RECORD_BYTES // 1024 // 1024} MiB: the rest "
                               "was not read")
    lines = data.split(b"\n")
    complete = data.endswith(b"\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        event, problem = decode(line)
        if problem:
            if not (number == len(lines) and not complete and problem == "not JSON"):  # a killed process's cut line
                record.problems.append(f"record line {number}: {problem}")
            continue
        if len(record.events) >= MAX_EVENTS:
            record.problems.append(f"the record holds more than {MAX_EVENTS} events: the rest was ignored")
            break
        record.events.append(event)
    return record


def room_left(path: Path) -> int:
    """How many more bytes the record may take (the collector discards what does not fit)."""
    try:
        size = os.stat(path).st_size
    except OSError:
        size = 0
    return max(MAX_RECORD_BYTES + 1 - size, 0)


def _type_problem(value: Any, kind: str) -> str | None:
    if kind == "name":
        if not isinstance(value, str):
            return f"a {type(value).__name__}, not text"
        if len(value) > MAX_NAME_CHARS:
            return f"{len(value)} characters long"
        if any(not char.isprintable() for char in value):
            return "text with control characters"
        return None
    if kind == "text":
        if not isinstance(value, str):
            return f"a {type(value).__name__}, not text"
        return f"{len(value)} characters long" if len(value) > MAX_MESSAGE_CHARS else None
    if kind == "criteria":
        if not isinstance(value, list) or len(value) > MAX_CRITERIA:
            return "not a short list"
        bad = [c for c in value if not isinstance(c, str) or len(c) > MAX_NAME_CHARS or not c.isprintable()]
        return "a list with something that is not a criterion id" if bad else None
    if kind == "int":
        return None if type(value) is int and abs(value) < 2**31 else f"{_shown(value)}, not a small integer"
    if kind == "number":
        ok = type(value) in (int, float) and math.isfinite(value) and 0 <= value < 10**12
        return None if ok else f"{_shown(value)}, not a time"
    if kind == "bool":
        return None if type(value) is bool else f"{_shown(value)}, not true or false"
    if kind == "outcome":
        return None if isinstance(value, str) and value in OUTCOMES else f"{_shown(value)}, not an outcome"
    raise ValueError(kind)


def _shown(value: Any) -> str:
    """A value from the record as evidence may quote it: short, escaped."""
    text = ascii(value)
    return text if len(text) <= 60 else text[:59] + "…"
