"""`check [EXERCISE]`: the learner's fast view, what `make check` prints.

One pytest process for the exercise asked for (or all): unit tests first; an exercise's DAG runs
(integration) only once its unit tests pass, its e2e tests only once those pass too. Then progress per
exercise and task, and for the first criterion not met: its title, the one-line reason and its hint.
"""

from __future__ import annotations

import argparse

from grading.grade import graded_exercises, test_paths
from grading.results import CriterionResult, Grade, Run, grade
from grading.rubric import load
from grading.runner import RunOptions, run_suite

LEARNER_PER_TEST_TIMEOUT = 120.0


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("check", help="your progress (what `make check` prints)",
                                 description="Your progress: the exercise's unit tests first, its DAG runs once "
                                             "they pass; then the first criterion to work on, with a hint.")
    parser.add_argument("exercise", nargs="?", help="e.g. ex04 (default: every exercise)")
    parser.add_argument("--target", choices=("starter", "solution"), default="starter")
    parser.add_argument("--timeout", type=float, default=LEARNER_PER_TEST_TIMEOUT, dest="per_test_timeout",
                        help="seconds one test may take (default: %(default)g)")
    parser.add_argument("--echo", action="store_true", help="show pytest's output while it runs")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rubric = load(args.root)
    exercises = graded_exercises(args.root, rubric, [args.exercise] if args.exercise else None)
    if not exercises:
        print("No exercises yet: exercises/rubric.toml lists none.")
        return 0
    paths = test_paths(args.root, exercises)
    run_ = Run()
    if paths:
        run_ = run_suite(RunOptions(root=args.root, target=args.target, paths=paths, gate="exercise",
                                    per_test_timeout=args.per_test_timeout, run_timeout=3600.0,
                                    echo=args.echo))
    print(render(grade(rubric, exercises, run_, target=args.target)))
    return 0


def render(result: Grade) -> str:
    lines = [f"Workbook check ({result.target}s/): {result.points}/{result.max_points} points"]
    for exercise in result.exercises:
        met = sum(c.passed for c in exercise.criteria)
        lines.append(f"\n{exercise.id}  {exercise.title}: {met}/{len(exercise.criteria)} criteria, "
                     f"{exercise.points}/{exercise.max_points} points")
        for task in exercise.tasks:
            done = sum(c.passed for c in task.criteria)
            bar = "#" * done + "." * (len(task.criteria) - done)
            waiting = all(c.status == "not_run" for c in task.criteria if not c.passed) and done < len(task.criteria)
            suffix = "  done" if done == len(task.criteria) else ("  (waits for earlier tests)" if waiting else "")
            lines.append(f"  {task.id.rsplit('.', 1)[1]:<4} {task.title:<44} [{bar}] {done}/{len(task.criteria)}"
                         f"{suffix}")
    lines += [f"note: {note}" for note in result.notes]
    first = _first_to_work_on(result)
    if first is None:
        lines.append("\nEvery criterion checked here is met.")
        return "\n".join(lines)
    exercise_id, task_number = first.id.split(".")[:2]
    lines += [
        "",
        f"Next: {first.id}: {first.title}",
        f"  why:  {first.message}",
        f"  hint: {first.hint}",
        f"  more: workbook hint {exercise_id} {task_number}",
    ]
    return "\n".join(lines)


def _first_to_work_on(result: Grade) -> CriterionResult | None:
    """The first criterion, in rubric order, that failed; else the first that did not run."""
    missed = [c for c in result.criteria if not c.passed]
    for status in ("failed", "not_collected", "not_run"):
        for criterion in missed:
            if criterion.status == status:
                return criterion
    return None
