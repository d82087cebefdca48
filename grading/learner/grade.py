"""`grade`: the whole graded suite in one pytest process, mapped to the rubric's criteria, written out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grading.core.git_head import checked_out_commit
from grading.core.rubric import Exercise, Rubric, load
from grading.learner.ticker import EventLines, Ticker
from grading.scoring import reports
from grading.scoring.grade import Grade, grade
from grading.scoring.run import Run
from grading.suite.options import RunOptions
from grading.suite.runner import run_suite

DEFAULT_PER_TEST_TIMEOUT = 120.0  # the suite's own budget (pyproject); e2e tests start real Airflow processes


def graded_exercises(root: Path, rubric: Rubric, names: list[str] | None = None) -> list[Exercise]:
    return [rubric.exercise(n) for n in names] if names else list(rubric.exercises)


def test_paths(root: Path, exercises: list[Exercise]) -> list[str]:
    return [e.test_folder for e in exercises if (root / e.test_folder).is_dir()]


def grade_tree(root: Path, *, target: str, names: list[str] | None = None, per_test_timeout: float,
               run_timeout: float, out: Path | None, echo: bool = False, gate: str = "none",
               reveal_hidden: bool = False, submission: str | None = None, results_from: Path | None = None,
               ) -> Grade:
    """Grade the workbook at `root` (run its suite, or read a recorded run) and return the grade."""
    rubric = load(root)
    exercises = graded_exercises(root, rubric, names)
    if results_from is not None:
        run = Run.from_record(results_from)
    else:
        paths = test_paths(root, exercises)
        if paths:
            log = None
            if out is not None:
                out.mkdir(parents=True, exist_ok=True)
                log = out / "pytest-output.txt"
                log.write_text("", encoding="utf-8")
            progress = EventLines()
            with Ticker(sys.stderr, progress, per_test_limit=per_test_timeout, enabled=not echo):
                run = run_suite(RunOptions(root=root, target=target, paths=paths, per_test_timeout=per_test_timeout,
                                           run_timeout=run_timeout, gate=gate, log=log, echo=echo,
                                           on_record=progress.feed))
        else:
            run = Run(notes=["no exercise has a test folder yet"])
    # The learner's own repository on their own machine: a worktree's `gitdir:` may point anywhere, as
    # `git worktree add` makes it.
    commit = checked_out_commit(Path(submission) if submission else root, confined=False)
    return grade(rubric, exercises, run, target=target, reveal_hidden=reveal_hidden, submission=submission,
                 commit=commit)


def add_grading_options(parser: argparse.ArgumentParser, *, default_out: str) -> None:
    parser.add_argument("--format", choices=sorted(reports.FORMATS), default="table",
                        help="what to print (all four files are always written to --out)")
    parser.add_argument("--out", type=Path, default=Path(default_out),
                        help=f"folder for report.md, results.json, junit.xml (default: {default_out})")
    parser.add_argument("--timeout", type=float, default=DEFAULT_PER_TEST_TIMEOUT, dest="per_test_timeout",
                        help="seconds one test may take before it counts as failed (default: %(default)g)")
    parser.add_argument("--run-timeout", type=float, default=3600.0,
                        help="seconds the whole run may take (default: %(default)g)")
    parser.add_argument("--min-score", type=float, default=None, metavar="PERCENT",
                        help="exit 1 when the score is below this percentage (a CI gate)")
    parser.add_argument("--reveal-hidden", action="store_true",
                        help="show hidden criteria's failure details and test ids (instructors only)")
    parser.add_argument("--echo", action="store_true", help="show pytest's output while it runs")


def publish(grade_: Grade, args: argparse.Namespace) -> int:
    """Write every file, print the chosen format, and apply --min-score."""
    written = reports.write_all(grade_, args.out)
    print(reports.FORMATS[args.format](grade_).rstrip("\n"))
    if args.format == "table":
        print(f"\nwritten: {', '.join(str(p) for p in written.values())}")
    unknown = [c.id for c in grade_.criteria if c.status == "infrastructure"]
    if unknown:
        print(f"could not grade (infrastructure): {', '.join(unknown)}: Airflow or the machine failed twice, "
              "not the submission", file=sys.stderr)
        return 2
    if args.min_score is not None and grade_.percent < args.min_score:
        print(f"score {grade_.percent:g} % is below the minimum {args.min_score:g} %", file=sys.stderr)
        return 1
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("grade", help="run the graded suite and write the grade",
                                 description="Run the graded suite (one pytest process) and write report.md, "
                                             "results.json and junit.xml.")
    parser.add_argument("exercises", nargs="*", help="only these exercises (default: all)")
    parser.add_argument("--target", choices=("starter", "solution"), default="starter")
    parser.add_argument("--results-from", type=Path, default=None,
                        help="grade a run recorded earlier with `-p grading.judge.plugin --grading-record=FILE` "
                             "instead of running the suite")
    add_grading_options(parser, default_out="reports")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    grade_ = grade_tree(args.root, target=args.target, names=args.exercises or None,
                        per_test_timeout=args.per_test_timeout, run_timeout=args.run_timeout,
                        out=args.out, echo=args.echo, reveal_hidden=args.reveal_hidden,
                        results_from=args.results_from)
    return publish(grade_, args)
