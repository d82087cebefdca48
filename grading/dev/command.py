"""`workbook dev new|check|hints`: adding an exercise, declared once in exercises/rubric.toml."""

from __future__ import annotations

import argparse
import sys

from grading.core.errors import GradingError
from grading.core.rubric import load
from grading.dev import checks, hint_blocks, scaffold


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("dev", help="instructors: scaffold and check exercises declared in the rubric",
                                 description="An exercise is declared once, in exercises/rubric.toml; these "
                                             "commands make and check the files named after it.")
    actions = parser.add_subparsers(dest="dev_command", required=True, metavar="ACTION")
    new = actions.add_parser("new", help="scaffold an exercise's files from its [[exercise]] entry",
                             description="Write the chapter, starter, solution, tests and notebook of an exercise "
                                         "the rubric declares (never overwriting a file).")
    new.add_argument("slug", help="the exercise's <id>_<module>, e.g. ex12_queue_sensor (or its id)")
    new.set_defaults(handler=run_new)
    check = actions.add_parser("check", help="list what a declared exercise lacks or has stale (exit 1 if any)")
    check.add_argument("exercises", nargs="*", help="only these exercises (default: all)")
    check.set_defaults(handler=run_check)
    hints = actions.add_parser("hints", help="rewrite the chapters' hint blocks from the rubric's task hints")
    hints.add_argument("exercises", nargs="*", help="only these exercises (default: all)")
    hints.set_defaults(handler=run_hints)


def _chosen(rubric, names: list[str]):
    try:
        return [rubric.exercise(name) for name in names] if names else list(rubric.exercises)
    except KeyError as error:
        raise GradingError(error.args[0]) from None


def run_new(args: argparse.Namespace) -> int:
    rubric = load(args.root)
    exercise = scaffold.exercise_of(rubric, args.slug)
    for name in scaffold.scaffold(args.root, exercise):
        print(f"wrote {name}")
    print(f"Next: write the chapter, the reference solution and the tests (each fails until written); "
          f"`workbook dev check {exercise.id}` lists what is left.")
    return 0


def run_check(args: argparse.Namespace) -> int:
    rubric = load(args.root)
    found = checks.problems(args.root, rubric, _chosen(rubric, args.exercises))
    for line in found:
        print(line)
    if found:
        print(f"{len(found)} problem(s)", file=sys.stderr)
        return 1
    print("every exercise has its files, hint blocks and tests")
    return 0


def run_hints(args: argparse.Namespace) -> int:
    rubric = load(args.root)
    missing = []
    for exercise in _chosen(rubric, args.exercises):
        path = args.root / exercise.chapter
        if not path.is_file():
            missing.append(f"{exercise.chapter}: missing")
            continue
        text = path.read_text(encoding="utf-8")
        fresh = hint_blocks.refreshed(text, exercise)
        if fresh != text:
            path.write_text(fresh, encoding="utf-8")
            print(f"rewrote the hint blocks of {exercise.chapter}")
        missing += [p for p in hint_blocks.problems(fresh, exercise) if "stale" not in p]
    for line in missing:
        print(line, file=sys.stderr)
    return 1 if missing else 0
