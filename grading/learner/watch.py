"""`watch [EXERCISE]`: re-runs the fast tests of the task you are on each time you save a starter or DAG file.

It shows a bar per task and the next criterion with its hint, and moves on to the next task once every fast
test of this one passes (its DAG runs are left to `make check EXERCISE=.. TASK=..`). A task without unit
tests has its DAG runs run instead.

The runs happen in a warm worker process (grading.learner.watch_worker) that imports Airflow once; the
progress model and the screen are grading.learner.watch_view.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from grading.core.rubric import Exercise, Rubric, Task, load
from grading.learner.ticker import RunState, Ticker
from grading.learner.watch_view import Progress, has_fast_tests, render, tests_count, with_done_before
from grading.learner.watch_worker import PER_TEST_TIMEOUT, RUN_TIMEOUT, Worker
from grading.scoring.run import Run, read_events

WATCHED_SUFFIXES = (".py",)


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("watch", help="re-run your task's fast tests on every save",
                                 description="Re-run the fast tests of the task you are on whenever a file in "
                                             "starters/ changes; Ctrl-C stops.")
    parser.add_argument("exercise", nargs="?", help="e.g. ex04 (default: every exercise, in order)")
    parser.add_argument("--target", choices=("starter", "solution"), default="starter")
    parser.add_argument("--once", action="store_true", help="run once and stop (no watching)")
    parser.add_argument("--stats", type=Path, default=None,
                        help="append one JSON line per run (wall and CPU seconds) to this file")
    parser.set_defaults(handler=run)


def changes_in(folder: Path) -> Iterator[set[Path]]:
    """Sets of changed Python files under `folder`, one set per save (an editor's burst of writes is one)."""
    from watchfiles import watch

    for batch in watch(folder, debounce=400, step=50,
                       watch_filter=lambda _change, path: path.endswith(WATCHED_SUFFIXES)):
        yield {Path(path) for _change, path in batch}


def watch_loop(root: Path, rubric: Rubric, exercises: list[Exercise], *, target: str,
               run_tests: Callable[[dict[str, Any]], dict[str, Any]], changes: Iterable[set[Path]],
               out: TextIO, clear: bool, stats: Path | None = None) -> None:
    progress = Progress(exercises)
    with tempfile.TemporaryDirectory(prefix="workbook-watch-") as scratch:
        def run_tasks(tasks: list[Task], *, fast: bool) -> str:
            record = Path(scratch) / "record.jsonl"
            record.unlink(missing_ok=True)
            folders = sorted({e.test_folder for e in exercises if any(t in e.tasks for t in tasks)})
            request = {"paths": [f for f in folders if (root / f).is_dir()], "tasks": [t.id for t in tasks],
                       "record": str(record), "log": str(Path(scratch) / "pytest-output.txt"), "fast": fast}
            with Ticker(out, lambda: RunState(read_events(record)), per_test_limit=PER_TEST_TIMEOUT):
                answer = run_tests(request)
            run = Run.from_record(record)
            if answer.get("cut"):
                run.notes.append(f"the run was cut after {RUN_TIMEOUT:g} s")
            elif not run.tests and not run.collection_errors:
                run.collection_errors.update(dict.fromkeys(request["paths"], _log_tail(Path(request["log"]))))
            progress.update(rubric, run, target, tasks)
            if stats is not None:
                with stats.open("a", encoding="utf-8") as file:
                    file.write(json.dumps({"tasks": request["tasks"], "fast": fast, "tests": len(run.tests),
                                           "wall_s": round(answer["wall_s"], 3),
                                           "cpu_s": round(answer["cpu_s"], 3), "at": time.time()}) + "\n")
            return f"{tests_count(len(run.tests))} in {answer['wall_s']:.1f} s"

        def show(summary: str, moved: list[str]) -> None:
            out.write(("\033[2J\033[H" if clear else "\n") + render(progress, target=target, summary=summary,
                                                                     moved=moved) + "\n")
            out.flush()

        def settle(summary: str, before: str | None) -> str | None:
            """Move on past every task whose fast tests now pass, running the next one's straight away."""
            moved = []
            current = progress.current()
            order = [t.id for _e, t in progress.tasks()]
            if current is not None and before in order and order.index(current[1].id) < order.index(before):
                moved.append(f"{current[1].id} broke: its fast tests fail again, so the watch is back on it")
                before = current[1].id
            while current is not None and before is not None and current[1].id != before:
                moved.append(f"{before} fast tests pass (its DAG runs: make check EXERCISE="
                             f"{before.split('.')[0]} TASK={before.rsplit('.', 1)[1]}); on to {current[1].id}")
                before = current[1].id
                summary = run_tasks([current[1]], fast=has_fast_tests(progress, current[1]))
                current = progress.current()
            show(summary, moved)
            return current[1].id if current else None

        out.write(f"Workbook watch: running the fast tests of {', '.join(e.id for e in exercises)} once...\n")
        out.flush()
        summary = run_tasks([t for _e, t in progress.tasks()], fast=True)
        on = progress.current()
        # A first task without unit tests: its DAG runs are what the watch runs for it.
        if on is not None and not has_fast_tests(progress, on[1]):
            summary = run_tasks([on[1]], fast=False)
        on_task = settle(summary, None)
        for _changed in changes:
            current = progress.current()
            if current is None:
                summary = run_tasks([t for _e, t in progress.tasks()], fast=True)
            elif has_fast_tests(progress, current[1]):
                # The tasks done before it share its module: a save that breaks one of them shows at once.
                summary = run_tasks(with_done_before(progress, *current), fast=True)
            else:
                summary = run_tasks([current[1]], fast=False)
            on_task = settle(summary, on_task)


def _log_tail(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    except OSError:
        return "the test run reported nothing"
    return lines[-1] if lines else "the test run reported nothing"


def run(args: argparse.Namespace) -> int:
    rubric = load(args.root)
    exercises = [rubric.exercise(args.exercise)] if args.exercise else list(rubric.exercises)
    worker = Worker(args.root, args.target)
    try:
        changes: Iterable[set[Path]] = () if args.once else changes_in(args.root / "starters")
        watch_loop(args.root, rubric, exercises, target=args.target, run_tests=worker.run, changes=changes,
                   out=sys.stdout, clear=sys.stdout.isatty() and not args.once, stats=args.stats)
    finally:
        worker.close()
    return 0
