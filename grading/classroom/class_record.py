"""A learner's record in a class folder (`learners/LEARNER/record.json`, schema workbook-class-record/1): what
grade-submission's exit code and results.json say, or why the submission could not be graded; a folder with
a record is done, and is moved into place in one rename."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grading.classroom.roster import Entry
from grading.core.verdicts import VERDICT_FLAG, VERDICTS

RECORD_SCHEMA = "workbook-class-record/1"
RECORD_NAME = "record.json"
LEARNERS = "learners"


def record_from(entry: Entry, out: Path, code: int, commit: str | None, key: str, started: float,
                reason: str) -> dict[str, Any]:
    """The learner's record from grade-submission's exit code and results.json (schema workbook-grade/1)."""
    results_path = out / "results.json"
    results = None
    if results_path.is_file():
        try:
            results = json.loads(results_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            results = None
    if code not in (0, 1) or not isinstance(results, dict):
        if code not in (0, 1):
            why = f"grade-submission exited with {_describe_exit(code)}" + (f": {reason}" if reason else "")
        else:
            why = "grade-submission wrote no readable results.json"
        record = could_not_grade(entry, commit, why, started, key)
        if isinstance(results, dict):
            record["flags"] = _unique([*record["flags"], *map(str, results.get("flags") or [])])
        return record
    verdict = results.get("verdict", "graded")
    if verdict not in VERDICTS:
        return could_not_grade(entry, commit, f"results.json has an unknown verdict {verdict!r}", started, key)
    exercises = {}
    missed = []
    for exercise in results.get("exercises", []):
        tasks = {}
        for task in exercise.get("tasks", []):
            tasks[task["id"]] = {"points": int(task["points"]), "max_points": int(task["max_points"])}
            missed += [c["id"] for c in task.get("criteria", []) if c.get("status") != "passed"]
        exercises[exercise["id"]] = {"points": int(exercise["points"]),
                                     "max_points": int(exercise["max_points"]), "tasks": tasks}
    total = results.get("total", {})
    flags = [str(f) for f in results.get("flags") or []]
    if verdict != "graded":
        flags = [VERDICT_FLAG[verdict], *flags]
    return base_record(entry, commit or results.get("commit"), key, started) | {
        "verdict": verdict, "exit_code": code, "flags": _unique(flags), "notes": list(results.get("notes", [])),
        "points": int(total.get("points", 0)), "max_points": int(total.get("max_points", 0)),
        "percent": float(total.get("percent", 0.0)), "exercises": exercises, "missed": missed,
    }


def could_not_grade(entry: Entry, commit: str | None, reason: str, started: float,
                    key: str | None = None) -> dict[str, Any]:
    return base_record(entry, commit, key, started) | {
        "verdict": "could_not_grade", "exit_code": None, "flags": [f"could not grade: {reason}"], "notes": [],
        "points": None, "max_points": None, "percent": None, "exercises": {}, "missed": []}


def base_record(entry: Entry, commit: str | None, key: str | None, started: float) -> dict[str, Any]:
    return {"schema": RECORD_SCHEMA, "learner": entry.learner, "repo": entry.repo, "commit": commit, "key": key,
            "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds"),
            "graded_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "seconds": round(time.time() - started, 1)}


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        return f"signal {signal.Signals(-code).name}" if -code in signal.valid_signals() else f"signal {-code}"
    return f"code {code}"


def last_line(log: Path) -> str:
    """The last non-empty line grade-submission printed (its error, when it could not grade)."""
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1][:300] if len(lines) > 1 else ""


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def still_valid(record: dict[str, Any], entry: Entry, key: str) -> bool:
    """Whether an earlier record is the learner's grade at `key` (a commit, or a digest of their starters)."""
    return (record.get("key") == key and record.get("repo") == entry.repo
            and record.get("verdict") in VERDICTS and record.get("verdict") != "could_not_grade")


def read_record(folder: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("schema") == RECORD_SCHEMA else None


def install(staging: Path, folder: Path) -> None:
    """Move a finished learner folder into place; the earlier one (if any) is removed only afterwards."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if folder.exists():
        old = staging.with_name(staging.name + ".old")
        os.replace(folder, old)
    os.replace(staging, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def read_records(out: Path) -> list[dict[str, Any]]:
    folder = out / LEARNERS
    records = [read_record(p) for p in sorted(folder.iterdir()) if p.is_dir()] if folder.is_dir() else []
    return sorted((r for r in records if r), key=lambda r: r["learner"])
