"""The isolation matrix of `verify-suite`: every task graded on its own.

For each task of the rubric, a copy of the workbook whose starters/ are the shipped ones with only that
task's code taken from solutions/: its top-level functions and classes (the rubric's `symbols`) spliced into
the starter module (grading.instrument.splice), and its DAG files (`dags`) copied in. Graded with the
exercise's tests, that copy must earn exactly the task's criteria and those of the tasks it `builds_on`: not
fewer (the task's tests need another task's code) and not more (another task's tests pass without its code).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from grading.core.rubric import Exercise, Rubric, Task, load
from grading.core.speed import E2E as SPEED_E2E
from grading.instrument.splice import SpliceError, solution_dag, splice
from grading.scoring import reports
from grading.scoring.grade import grade
from grading.suite.options import RunOptions
from grading.suite.runner import run_suite

# Never part of a task's tree: environments, caches, VCS data, earlier reports.
SKIP_NAMES = {".venv", ".venv-lab", ".git", ".cache", "__pycache__", ".pytest_cache", ".ruff_cache", "build", "reports",
              ".ipynb_checkpoints", "node_modules", ".mypy_cache", "mutants"}


def copy_workbook(root: Path, into: Path) -> None:
    """The instructor's workbook (not its venv, caches or VCS data), sharing the migrated DB template: these
    trees hold the reference's own code, so nothing in them is a learner's."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP_NAMES or n.endswith((".pyc", ".egg-info"))}

    shutil.copytree(root, into, ignore=ignore, symlinks=True, dirs_exist_ok=True)
    if (root / ".cache").is_dir():
        os.symlink(root / ".cache", into / ".cache")


def build_task_tree(root: Path, exercise: Exercise, task: Task, into: Path) -> None:
    """A pristine copy of the workbook at `into` whose starters have only `task` done (and what it builds on)."""
    copy_workbook(root, into)
    rubric = load(root)
    tasks = [task, *(_task(rubric, t) for t in task.builds_on)]
    module = f"{exercise.module}.py"
    starter_path = into / "starters" / module
    symbols = [s for t in tasks for s in t.symbols]
    if symbols:
        solution = (root / "solutions" / module).read_text(encoding="utf-8")
        starter_path.write_text(splice(starter_path.read_text(encoding="utf-8"), solution, symbols,
                                       filename=f"starters/{module}"), encoding="utf-8")
    for dag in (d for t in tasks for d in t.dags):
        source = (root / "solutions" / "dags" / dag).read_text(encoding="utf-8")
        (into / "starters" / "dags" / dag).write_text(solution_dag(source), encoding="utf-8")


def _task(rubric: Rubric, task_id: str) -> Task:
    for exercise in rubric.exercises:
        for task in exercise.tasks:
            if task.id == task_id:
                return task
    raise KeyError(f"no task {task_id!r} in the rubric")


def expected_criteria(rubric: Rubric, task: Task) -> set[str]:
    """What a tree with only `task` done must earn: its criteria and those of the tasks it builds on."""
    earned = {c.id for c in task.criteria}
    for other in task.builds_on:
        earned |= {c.id for c in _task(rubric, other).criteria}
    return earned


# ---- the matrix --------------------------------------------------------------------------------------------
@dataclass
class TaskIsolation:
    task: str
    expected: set[str]
    earned: set[str] = field(default_factory=set)
    messages: dict[str, str] = field(default_factory=dict)  # criterion -> why it was not earned
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    error: str | None = None

    @property
    def problems(self) -> list[str]:
        if self.error:
            return [f"{self.task} alone: {self.error}"]
        found = [f"{self.task} alone: {c} earns nothing: {self.messages.get(c, '')}"
                 for c in sorted(self.expected - self.earned)]
        found += [f"{self.task} alone: {c} earns its points without its own task's code"
                  for c in sorted(self.earned - self.expected)]
        return found + [f"{self.task} alone: {note}" for note in self.notes]


def e2e_criteria(root: Path, exercises: set[str] | None = None) -> set[str]:
    """Criteria proved by e2e tests (real Airflow processes), from collecting the suite (or the tests of
    `exercises`) once."""
    rubric = load(root)
    paths = [e.test_folder for e in rubric.exercises
             if (root / e.test_folder).is_dir() and (exercises is None or e.id in exercises)]
    if not paths:
        return set()
    run = run_suite(RunOptions(root=root, target="solution", paths=paths, extra_args=("--collect-only",)))
    return {c for test in run.tests.values() if test.speed >= SPEED_E2E for c in test.criteria}


def check_task(root: Path, rubric: Rubric, exercise: Exercise, task: Task, *, per_test_timeout: float,
               out: Path | None, with_e2e: bool = True) -> TaskIsolation:
    result = TaskIsolation(task=task.id, expected=expected_criteria(rubric, task))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"workbook-isolation-{task.id}-") as scratch:
        tree = Path(scratch) / "repo"
        try:
            build_task_tree(root, exercise, task, tree)
        except (SpliceError, OSError, KeyError) as error:
            result.error = f"could not build the tree: {error}"
            return result
        log = None
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            log = out / "pytest-output.txt"
            log.write_text("", encoding="utf-8")
        # The criterion gate: a criterion's tests stop at its first failure (one is enough to earn nothing);
        # the task's own criteria, which must pass, run every test.
        run = run_suite(RunOptions(root=tree, target="starter", paths=[exercise.test_folder], gate="criterion",
                                   per_test_timeout=per_test_timeout, run_timeout=3600.0, log=log,
                                   markers=None if with_e2e else "not e2e"))
        graded = grade(load(tree), [exercise], run, target="starter", reveal_hidden=True)
    if out is not None:
        reports.write_all(graded, out)
    result.seconds = time.monotonic() - started
    result.earned = {c.id for c in graded.criteria if c.passed}
    result.messages = {c.id: f"{c.status}: {c.message}" for c in graded.criteria if not c.passed}
    result.notes = list(graded.notes)
    return result


def run_matrix(root: Path, *, tasks: list[str] | None = None, jobs: int = 2, per_test_timeout: float = 120.0,
               out: Path | None = None, report=print) -> list[TaskIsolation]:
    """Check every task (or those named), `jobs` trees at a time; `report` gets one line per task.

    Only the trees expected to earn an e2e criterion run e2e tests, one such tree at a time (each starts a
    real deployment of four Airflow processes). Elsewhere another task's e2e test could only pass with that
    task's code, which is a todo in the tree."""
    rubric = load(root)
    chosen = [(e, t) for e in rubric.exercises for t in e.tasks
              if not tasks or t.id in tasks or e.id in tasks]
    e2e = e2e_criteria(root)

    def one(pair: tuple[Exercise, Task]) -> TaskIsolation:
        exercise, task = pair
        with_e2e = bool(expected_criteria(rubric, task) & e2e)
        result = check_task(root, rubric, exercise, task, per_test_timeout=per_test_timeout,
                            out=(out / task.id) if out else None, with_e2e=with_e2e)
        verdict = "ok" if not result.problems else f"{len(result.problems)} problem(s)"
        report(f"  {task.id:<10} {len(result.earned & result.expected)}/{len(result.expected)} own criteria, "
               f"{len(result.earned - result.expected)} others, {result.seconds:.0f} s"
               f"{'' if with_e2e else ' (no e2e)'}: {verdict}")
        return result

    # Each tree runs its own pytest process with its own AIRFLOW_HOME and free ports: trees do not share state.
    # The trees with e2e tests take one lane (one deployment at a time), the others the remaining lanes.
    with_e2e = [p for p in chosen if expected_criteria(rubric, p[1]) & e2e]
    others = [p for p in chosen if p not in with_e2e]
    lanes = max(1, jobs)
    with ThreadPoolExecutor(max_workers=1) as e2e_lane, \
            ThreadPoolExecutor(max_workers=max(1, lanes - 1) if with_e2e else lanes) as other_lanes:
        futures = {id(p): e2e_lane.submit(one, p) for p in with_e2e}
        futures |= {id(p): other_lanes.submit(one, p) for p in others}
        return [futures[id(p)].result() for p in chosen]


def default_jobs() -> int:
    """Three lanes on two cores or more: one for the trees with e2e tests, two for the others (a tree's
    time is mostly waiting for simulated time and DAG runs, a third of it CPU)."""
    return 3 if (os.cpu_count() or 1) >= 2 else 1
