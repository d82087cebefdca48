"""`check [EXERCISE [TASK]]`: the learner's fast view, what `make check` prints.

One pytest process for the exercise asked for (or all; or one task of it): unit tests first; an exercise's
DAG runs (integration) only once its unit tests pass, its e2e tests only once those pass too. Then progress
per exercise and task, and for the first criterion not met: its title, the one-line reason and its hint.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from grading.core.rubric import Rubric, Task, load
from grading.learner.grade import graded_exercises, test_paths
from grading.learner.ticker import EventLines, Ticker
from grading.scoring.grade import CriterionResult, ExerciseResult, Grade, TaskResult, grade
from grading.scoring.run import Run
from grading.suite.options import RunOptions
from grading.suite.runner import run_suite

LEARNER_PER_TEST_TIMEOUT = 120.0
# How a bar shows each criterion: met, failed, not run yet.
BAR_MARKS = {"passed": "#", "failed": "x"}


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("check", help="your progress (what `make check` prints)",
                                 description="Your progress: the exercise's unit tests first, its DAG runs once "
                                             "they pass; then the first criterion to work on, with a hint.")
    parser.add_argument("exercise", nargs="?", help="e.g. ex04 (default: every exercise)")
    parser.add_argument("task", nargs="?", help="e.g. t1: only that task's tests")
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
    # A task's code that hangs in one test would hang in each: its first timeout stops that task.
    extra: tuple[str, ...] = ("--grading-stop-on-hang",)
    if args.task:
        task = rubric.task(exercises[0], args.task)
        exercises = [replace(exercises[0], tasks=(task,))]
        extra += ("-p", "grading.learner.selection", f"--grading-tasks={task.id}")
    paths = test_paths(args.root, exercises)
    run_ = Run()
    if paths:
        progress = EventLines()
        with Ticker(sys.stderr, progress, per_test_limit=args.per_test_timeout, enabled=not args.echo):
            run_ = run_suite(RunOptions(root=args.root, target=args.target, paths=paths, gate="exercise",
                                        per_test_timeout=args.per_test_timeout, run_timeout=3600.0,
                                        echo=args.echo, extra_args=extra, on_record=progress.feed))
    result = grade(rubric, exercises, run_, target=args.target)
    print(render(result))
    if all(c.passed for c in result.criteria):
        following = next_task(rubric, [t.id for e in exercises for t in e.tasks])
        if following is not None:
            print(f"Next task: {following.id} {following.title}: "
                  f"make check EXERCISE={following.id.split('.')[0]} TASK={following.number} (or make watch)")
    return 0


def next_task(rubric: Rubric, done: list[str]) -> Task | None:
    """The first task of the rubric after the last one checked here."""
    tasks = [t for e in rubric.exercises for t in e.tasks]
    ids = [t.id for t in tasks]
    last = max((ids.index(t) for t in done if t in ids), default=None)
    return tasks[last + 1] if last is not None and last + 1 < len(tasks) else None


def task_bar(task: TaskResult) -> str:
    """`t1   OrderStatusSensor   [###x....] 3/8` and why the rest is not counted yet."""
    done = sum(c.passed for c in task.criteria)
    bar = "".join(BAR_MARKS.get(c.status, ".") for c in task.criteria)
    not_run = [c for c in task.criteria if c.status in ("not_run", "not_collected")]
    hung = any(" hung before it " in c.message for c in not_run)
    if done == len(task.criteria):
        suffix = "  done"
    elif hung:
        suffix = f"  ({len(not_run)} not run after a hang)"
    elif not_run and not any(c.status == "failed" for c in task.criteria):
        suffix = f"  ({len(not_run)} not run yet)"
    else:
        suffix = ""
    return f"  {task.id.rsplit('.', 1)[1]:<4} {_cut(task.title, 44):<44} [{bar}] {done}/{len(task.criteria)}{suffix}"


def exercise_lines(exercise: ExerciseResult) -> list[str]:
    met = sum(c.passed for c in exercise.criteria)
    lines = [f"{exercise.id}  {exercise.title}: {met}/{len(exercise.criteria)} criteria, "
             f"{exercise.points}/{exercise.max_points} points"]
    return lines + [task_bar(task) for task in exercise.tasks]


def next_step(criterion: CriterionResult) -> list[str]:
    """The criterion to work on, why, its hint and the commands that say more (runnable as printed)."""
    exercise_id, task_number = criterion.id.split(".")[:2]
    return [
        f"Next: {criterion.id}: {criterion.title}",
        f"  why:  {criterion.message}",
        f"  hint: {criterion.hint}",
        f"  more: make hint EXERCISE={exercise_id} TASK={task_number}",
        f"  this task only: make check EXERCISE={exercise_id} TASK={task_number}",
    ]


def render(result: Grade) -> str:
    lines = [f"Workbook check ({result.target}s/): {result.points}/{result.max_points} points"]
    for exercise in result.exercises:
        lines += ["", *exercise_lines(exercise)]
    lines += [f"note: {note}" for note in result.notes]
    first = first_to_work_on(result.criteria)
    if first is None:
        lines.append("\nEvery criterion checked here is met.")
        return "\n".join(lines)
    return "\n".join([*lines, "", *next_step(first)])


def first_to_work_on(criteria: list[CriterionResult]) -> CriterionResult | None:
    """The first criterion, in rubric order, that failed; else the first that did not run."""
    missed = [c for c in criteria if not c.passed]
    for status in ("failed", "not_collected", "not_run"):
        for criterion in missed:
            if criterion.status == status:
                return criterion
    return None


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
