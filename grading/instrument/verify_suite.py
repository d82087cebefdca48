"""`verify-suite`: the suite as an instrument. Graded against solutions/ every criterion earns its points
(100 %); graded against the shipped starters/ none does (0 %). Like rustlings' `dev check` and nbgrader's
`validate --invert`.

The solution side can reuse the record of a run that already happened (`.ci/run` records `make test`'s
pytest run), so CI does not run the whole suite twice. The starter side stops testing a criterion as soon
as one of its tests failed (`--grading-gate=criterion`): one failure is all it takes to earn nothing.

Then the isolation matrix (grading/instrument/isolation.py): for each task, the shipped starters with only that task's
code taken from solutions/ earn exactly that task's criteria (and those of the tasks it builds on).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from grading.instrument import isolation
from grading.learner.grade import grade_tree
from grading.scoring import reports
from grading.scoring.grade import Grade


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("verify-suite", help="solutions earn 100 %%, shipped starters 0 %% (CI)",
                                 description="Check the suite as an instrument: every criterion passes against "
                                             "solutions/ and none against the shipped starters/.")
    parser.add_argument("--solution-results", type=Path, default=None,
                        help="a record of the solution run (from `-p grading.judge.plugin --grading-record=FILE`)"
                             "; without it the suite is run against solutions/")
    parser.add_argument("--skip-solution", action="store_true", help="check only the starters (0 %%)")
    parser.add_argument("--skip-starter", action="store_true", help="check only the solutions (100 %%)")
    parser.add_argument("--skip-isolation", action="store_true",
                        help="skip the isolation matrix (each task done alone earns exactly its criteria)")
    parser.add_argument("--tasks", nargs="+", default=None, metavar="ID",
                        help="isolation matrix of these tasks or exercises only (e.g. ex04.t1 ex11_3)")
    parser.add_argument("--jobs", type=int, default=isolation.default_jobs(),
                        help="task trees graded at the same time (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=120.0, dest="per_test_timeout")
    parser.add_argument("--out", type=Path, default=Path("reports/instrument"))
    parser.set_defaults(handler=run)


def solution_problems(grade: Grade) -> list[str]:
    return [f"{c.id} earns nothing against solutions/ ({c.status}): {c.message}"
            for c in grade.criteria if not c.passed]


def starter_problems(grade: Grade) -> list[str]:
    return [f"{c.id} earns its {c.max_points} points against the shipped starters/: its tests pass without "
            "the learner's work" for c in grade.criteria if c.passed]


def run(args: argparse.Namespace) -> int:
    problems: list[str] = []
    if not args.skip_solution:
        solution = grade_tree(args.root, target="solution", per_test_timeout=args.per_test_timeout,
                              run_timeout=3600.0, out=args.out / "solution", reveal_hidden=True,
                              results_from=args.solution_results)
        reports.write_all(solution, args.out / "solution")
        problems += solution_problems(solution)
        print(f"solutions/: {solution.points}/{solution.max_points} points ({solution.percent:g} %), "
              f"{len(solution.criteria)} criteria")
    if not args.skip_starter:
        starter = grade_tree(args.root, target="starter", per_test_timeout=args.per_test_timeout,
                             run_timeout=3600.0, out=args.out / "starter", gate="criterion", reveal_hidden=True)
        reports.write_all(starter, args.out / "starter")
        problems += starter_problems(starter)
        print(f"starters/:  {starter.points}/{starter.max_points} points ({starter.percent:g} %), "
              f"{len(starter.criteria)} criteria")
    if not args.skip_isolation:
        print(f"isolation matrix ({args.jobs} at a time): each task done alone earns exactly its criteria")
        started = time.monotonic()
        matrix = isolation.run_matrix(args.root, tasks=args.tasks, jobs=args.jobs,
                                      per_test_timeout=args.per_test_timeout, out=args.out / "isolation",
                                      report=lambda line: print(line, flush=True))
        for result in matrix:
            problems += result.problems
        print(f"isolation matrix: {len(matrix)} tasks in {time.monotonic() - started:.0f} s")
    for problem in problems:
        print(f"  {problem}")
    print("the suite is a working instrument" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0
