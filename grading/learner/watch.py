"""`watch [EXERCISE]`: re-runs the fast tests of the task you are on each time you save a starter or DAG file.

It shows a bar per task and the next criterion with its hint, and moves on to the next task once every fast
test of this one passes (its DAG runs are left to `make check EXERCISE=.. TASK=..`). A task without unit
tests has its DAG runs run instead.

Importing Airflow costs seconds of CPU, too much to pay on every save: a warm worker process imports
Airflow, pytest and their plugins once, then forks a child per run. The child imports only the tests and
your starters, so each run sees the files as saved. The worker never imports learner code itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TextIO

from grading.core.processes import kill_group
from grading.core.rubric import Exercise, Rubric, Task, load
from grading.learner.check import BAR_MARKS, next_step
from grading.learner.ticker import RunState, Ticker
from grading.scoring.results import CriterionResult, Run, grade, read_events
from grading.suite.runner import graded_env

RUN_TIMEOUT = 300.0
STOP_SECONDS = 10.0  # an idle worker removes its Airflow home on the way out
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PER_TEST_TIMEOUT = 60.0
WATCHED_SUFFIXES = (".py",)
# Imported once by the worker: what every test run needs and no learner code (starters/ is never here).
WARM_MODULES = (
    "airflow.sdk", "airflow.sdk.exceptions", "airflow.sdk.bases.sensor", "airflow.triggers.base",
    "airflow.exceptions", "airflow.models", "pendulum", "requests", "aiohttp", "structlog", "structlog.testing",
    "pytest", "_pytest.pytester", "fixtures", "fixtures.pytest_plugin", "grading.judge.plugin",
    "grading.learner.selection", "tests.harness.target",
)


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


# ---- the warm worker ------------------------------------------------------------------------------------
def worker_main(root: Path, target: str) -> NoReturn:
    """Import once, then per request line fork a child that runs pytest; answer with its exit code and CPU.

    Ctrl-C (or the front's SIGTERM) ends the worker and the run in progress with it, its process group
    included: a learner's busy loop must not outlive the watch."""
    signal.signal(signal.SIGINT, _stop_worker)
    signal.signal(signal.SIGTERM, _stop_worker)
    sys.path.insert(0, str(root))
    os.chdir(root)
    from tests.harness import airflow_env
    from tests.harness.target import Target

    home = airflow_env.configure(Target(target))  # before Airflow is imported, as the suite's conftest does
    stopped = None
    try:
        _warm_up()
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            request = json.loads(line)
            print(json.dumps(_run_forked(root, target, request)), flush=True)
    except SystemExit as stop:  # Ctrl-C or the front's SIGTERM; the run in progress has been ended
        stopped = stop.code if isinstance(stop.code, int) else 1
    finally:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    sys.stdout.flush()
    os._exit(stopped or 0)  # skips Airflow's exit hooks (seconds): the prompt waits for this process


def _warm_up() -> None:
    import importlib
    from importlib.metadata import entry_points

    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue  # a module this release does not have: the child imports what it needs
    for plugin in entry_points(group="pytest11"):
        try:
            plugin.load()
        except Exception:  # noqa: BLE001 - a plugin that does not load here fails in the child, with its message
            continue


def _stop_worker(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds _run_forked, which ends the run in progress


def _die_with_parent() -> None:
    """Linux: the child is killed when the worker dies, even by SIGKILL (its own children are in its group,
    which the worker or the front ends)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _run_forked(root: Path, target: str, request: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            os.setpgid(0, 0)
            _die_with_parent()
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(log, 1)
            os.dup2(log, 2)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            import pytest

            code = int(pytest.main(pytest_args(root, target, request)))
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.setpgid(pid, pid)  # also here: a Ctrl-C right after the fork must find the child's group
    deadline = started + float(request.get("timeout", RUN_TIMEOUT))
    try:
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                kill_group(pid)
                done, status, usage = os.wait4(pid, 0)
                return {"exit": None, "cut": True, "wall_s": time.monotonic() - started,
                        "cpu_s": usage.ru_utime + usage.ru_stime}
            time.sleep(0.02)
    except BaseException:
        kill_group(pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise
    return {"exit": os.waitstatus_to_exitcode(status), "cut": False, "wall_s": time.monotonic() - started,
            "cpu_s": usage.ru_utime + usage.ru_stime}


def pytest_args(root: Path, target: str, request: dict[str, Any]) -> list[str]:
    args = [*request["paths"], f"--target={target}", "-p", "grading.judge.plugin",
            f"--grading-record={request['record']}", "-p", "grading.learner.selection",
            f"--grading-tasks={','.join(request['tasks'])}",
            f"--timeout={PER_TEST_TIMEOUT:g}", "--timeout-method=signal", "--grading-stop-on-hang", f"--rootdir={root}",
            "-c", str(root / "pyproject.toml"), "-p", "no:cacheprovider", "-q", "--tb=short"]
    if request.get("fast", True):
        args.append("--grading-fast")
    return args


class Worker:
    """The front's handle on the warm worker process."""

    def __init__(self, root: Path, target: str) -> None:
        self.busy = False
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grading.learner.watch", "--worker", str(root), target],
            cwd=root, env=graded_env(root), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            ready = self._answer()
        except BaseException:  # Ctrl-C while Airflow is imported
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
            raise
        if not ready.get("ready"):
            raise RuntimeError("the watch's test worker did not start")

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.busy = True
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self._answer()
        self.busy = False
        return answer

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the watch's test worker stopped (exit code {self.process.poll()})")
        return json.loads(line)

    def close(self) -> None:
        """An idle worker ends when its input does; one still running tests (the front was interrupted) is
        told to stop, which ends that run's process group too."""
        if self.busy and self.process.poll() is None:
            self.process.terminate()
        if self.process.stdin:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# ---- the watch in front ---------------------------------------------------------------------------------
@dataclass
class Progress:
    """What the watch knows: the latest result of every criterion, and the task you are on."""
    exercises: list[Exercise]
    latest: dict[str, CriterionResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # the latest run's (a run cut short, a crash)

    def tasks(self) -> list[tuple[Exercise, Task]]:
        return [(e, t) for e in self.exercises for t in e.tasks]

    def task_done(self, task: Task) -> bool:
        """Done in the fast loop: no criterion failed, and every one was proved or waits only for DAG runs."""
        results = [self.latest.get(c.id) for c in task.criteria]
        return all(r is not None and r.status in ("passed", "not_run") for r in results) and any(
            r is not None and r.status == "passed" for r in results)

    def current(self) -> tuple[Exercise, Task] | None:
        return next(((e, t) for e, t in self.tasks() if not self.task_done(t)), None)

    def update(self, rubric: Rubric, run: Run, target: str, tasks: list[Task]) -> None:
        """The criteria of the tasks that ran take this run's result; the others keep theirs."""
        graded = grade(rubric, self.exercises, run, target=target)
        self.notes = list(graded.notes)
        asked = {c.id for t in tasks for c in t.criteria}
        for criterion in graded.criteria:
            if criterion.id in asked:
                self.latest[criterion.id] = criterion


def render(progress: Progress, *, target: str, summary: str, moved: list[str]) -> str:
    current = progress.current()
    lines = [f"Workbook watch ({target}s/) · {summary}"]
    for exercise in progress.exercises:
        lines.append(f"\n{exercise.id}  {exercise.title}")
        for task in exercise.tasks:
            results = [progress.latest.get(c.id) for c in task.criteria]
            bar = "".join(BAR_MARKS.get(r.status, ".") if r else "." for r in results)
            met = sum(bool(r and r.passed) for r in results)
            waiting = sum(bool(r and r.status == "not_run") for r in results)
            mark = "  <- you are here" if current and current[1].id == task.id else ""
            state = "  fast tests pass" if progress.task_done(task) else ""
            dag_runs = f", {waiting} with DAG runs" if waiting and progress.task_done(task) else ""
            after_hang = sum(bool(r and r.status == "not_run" and " hung before it " in r.message) for r in results)
            if after_hang:
                state = f"  ({after_hang} not run after a hang)"
            lines.append(f"  {task.number:<4} {task.title[:44]:<44} [{bar}] {met}/{len(task.criteria)}"
                         f"{state}{dag_runs}{mark}")
    lines.append(f"\n{LEGEND}")
    lines += [f"note: {note}" for note in progress.notes]
    lines += [f"\n{line}" for line in moved]
    if current is None:
        lines.append("\nEvery fast test passes. Run everything, DAG runs included: make check")
        return "\n".join(lines)
    exercise, task = current
    missed = [progress.latest[c.id] for c in task.criteria
              if c.id in progress.latest and progress.latest[c.id].status in ("failed", "not_collected")]
    if missed:
        lines += ["", *next_step(missed[0])]
    lines.append(f"\nSave a file in starters/ to run {exercise.id} {task.number} again; Ctrl-C stops.")
    return "\n".join(lines)


LEGEND = "[#] met  [x] failed  [.] not run yet (DAG runs: make check EXERCISE=.. TASK=..)"


def tests_count(count: int) -> str:
    return f"{count} test" if count == 1 else f"{count} tests"


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


def with_done_before(progress: Progress, exercise: Exercise, task: Task) -> list[Task]:
    """The exercise's tasks before `task` whose fast tests passed, then `task`."""
    before = exercise.tasks[:exercise.tasks.index(task)]
    return [t for t in before if progress.task_done(t)] + [task]


def has_fast_tests(progress: Progress, task: Task) -> bool:
    """False when every criterion of the task waits only for DAG runs: then those are what the watch runs."""
    results = [progress.latest.get(c.id) for c in task.criteria]
    return not all(r is not None and r.status == "not_run" for r in results)


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


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    worker_main(Path(sys.argv[2]), sys.argv[3])
