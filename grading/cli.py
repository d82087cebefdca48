"""The workbook's grading tool: check your progress, get hints, grade (and, for instructors, grade
submissions, build the learner release and verify the suite).

`python -m grading COMMAND` or `workbook COMMAND`. Learner releases ship check, watch, hint and grade only.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from pathlib import Path

from grading.core.environment import wrong_environment
from grading.core.errors import GradingError
from grading.core.rubric import RubricError, find_root

# Learner commands first; the instructor-only modules are left out of the learner release.
COMMAND_MODULES = ("learner.check", "learner.watch", "learner.hint", "learner.grade", "learner.playground",
                   "learner.steer", "submission.submission", "classroom.grade_class", "classroom.gradebook",
                   "classroom.status", "release.build",
                   "instrument.verify_suite", "instrument.mistakes", "submission.sandbox_check", "dev.command")
EXIT_COULD_NOT_RUN = 2
# Commands that run the graded suite with this interpreter: they need the workbook's environment.
SUITE_COMMANDS = {"check", "watch", "grade", "airflow"}


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(prog="workbook", description=__doc__,
                                          formatter_class=argparse.RawDescriptionHelpFormatter)
    main_parser.add_argument("--root", type=Path, default=None,
                             help="the workbook folder (default: the one around the current folder)")
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"grading.{name}")
        except ModuleNotFoundError as error:
            wanted = f"grading.{name}"
            if error.name is None or not (wanted == error.name or wanted.startswith(f"{error.name}.")):
                raise
            continue  # an instructor command, not in this (learner) release
        module.register(commands)
    return main_parser


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C stops every command (grade-class then grades only what is missing next time), even one started
    # from a shell that ignores SIGINT for its background jobs: their children inherit SIG_IGN.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
    args = parser().parse_args(argv)
    if args.command in SUITE_COMMANDS:
        problem = wrong_environment(" ".join([".venv/bin/workbook", *(sys.argv[1:] if argv is None else argv)]))
        if problem:
            print(f"workbook {args.command}: {problem}", file=sys.stderr)
            return EXIT_COULD_NOT_RUN
    try:
        args.root = (args.root or find_root()).resolve()
        return args.handler(args)
    except (RubricError, GradingError) as error:
        print(f"workbook {args.command}: {error.args[0] if error.args else error}", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    except KeyboardInterrupt:
        return 130
