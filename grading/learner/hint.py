"""`hint EXERCISE TASK`: a task's hints, one level at a time (the level reached is remembered)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from grading.core.atomic import write_json
from grading.core.rubric import load

STATE_FILE = Path(".cache") / "hints-seen.json"
# What each level is, when a task has the usual three.
LEVEL_NAMES = ("a nudge", "the concept, and where to read about it", "a sketch of a solution")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("hint", help="a task's hints, one level at a time",
                                 description="Show the next hint level of a task; run again for the next one.")
    parser.add_argument("exercise", help="e.g. ex04")
    parser.add_argument("task", help="e.g. t1 or 1")
    parser.add_argument("--level", type=int, default=None, help="show the hints up to this level")
    parser.add_argument("--reset", action="store_true", help="start again from the first hint")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rubric = load(args.root)
    exercise = rubric.exercise(args.exercise)
    task = rubric.task(exercise, args.task)
    if not task.hints:
        print(f"{task.id} ({task.title}) has no hints. Read {exercise.chapter}.")
        return 0
    state_path = args.root / STATE_FILE
    seen = _read(state_path)
    if args.reset:
        seen.pop(task.id, None)
    level = args.level if args.level is not None else seen.get(task.id, 0) + 1
    level = max(1, min(level, len(task.hints)))
    seen[task.id] = max(level, seen.get(task.id, 0))
    _write(state_path, seen)
    print(f"{task.id} · {task.title}")
    named = len(task.hints) == len(LEVEL_NAMES)
    for number, hint in enumerate(task.hints[:level], start=1):
        label = f" ({LEVEL_NAMES[number - 1]})" if named else ""
        print(f"  hint {number}/{len(task.hints)}{label}: {hint}")
    if level < len(task.hints):
        print(f"Run `make hint EXERCISE={exercise.id} TASK={task.number}` again for hint {level + 1}.")
    else:
        print(f"That was the last hint. The chapter: {exercise.chapter}#task-{task.number[1:]}")
    return 0


def _read(path: Path) -> dict[str, int]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): int(v) for k, v in data.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _write(path: Path, seen: dict[str, int]) -> None:
    write_json(path, seen, indent=1)
