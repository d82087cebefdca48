"""The isolation matrix of `verify-suite`: every task graded on its own.

For each task of the rubric, a copy of the workbook whose starters/ are the shipped ones with only that
task's code taken from solutions/: its top-level functions and classes (the rubric's `symbols`) spliced into
the starter module, and its DAG files (`dags`) copied in. Graded with the exercise's tests, that copy must
earn exactly the task's criteria and those of the tasks it `builds_on`: not fewer (the task's tests need
another task's code) and not more (another task's tests pass without its code).
"""

from __future__ import annotations

import ast
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from grading.core.rubric import Exercise, Rubric, Task, load
from grading.core.speed import E2E as SPEED_E2E
from grading.scoring import reports
from grading.scoring.results import grade
from grading.suite.runner import RunOptions, run_suite

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class SpliceError(ValueError):
    """A task's symbols cannot be taken from the solution into the starter."""


# ---- the splice ------------------------------------------------------------------------------------------
def _top_level(tree: ast.Module) -> dict[str, ast.stmt]:
    """Names bound by top-level definitions and assignments (not imports), to the statement binding them."""
    bound: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, DEFINITIONS):
            bound[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        bound[name.id] = node
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            bound[node.target.id] = node
    return bound


def _imports(tree: ast.Module) -> dict[str, ast.stmt]:
    """Names bound by top-level imports, to a one-name import statement binding just that name."""
    bound: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound[(alias.asname or alias.name).split(".")[0]] = ast.Import(names=[alias])
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            for alias in node.names:
                bound[alias.asname or alias.name] = ast.ImportFrom(module=node.module, names=[alias],
                                                                   level=node.level)
    return bound


def _names_used(node: ast.AST) -> set[str]:
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    # String annotations (`from __future__ import annotations` keeps them unevaluated) name types too.
    for constant in ast.walk(node):
        if isinstance(constant, ast.Constant) and isinstance(constant.value, str) and constant.value.isidentifier():
            used.add(constant.value)
    return used


def _span(node: ast.stmt) -> tuple[int, int]:
    """The statement's lines (1-based, inclusive), decorators included."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return first, node.end_lineno or node.lineno


def _source(lines: list[str], node: ast.stmt) -> str:
    first, last = _span(node)
    return "".join(lines[first - 1:last])


def splice(starter: str, solution: str, symbols: list[str], *, filename: str = "<starter>") -> str:
    """The starter's source with the top-level `symbols` replaced by the solution's definitions.

    What those definitions need and the starter lacks comes along: the solution's private helpers and
    constants (inserted before the first spliced definition) and its imports (after the starter's).
    """
    try:
        starter_tree, solution_tree = ast.parse(starter, filename), ast.parse(solution)
    except SyntaxError as error:
        raise SpliceError(f"{filename}: {error.msg} (line {error.lineno})") from None
    starter_defs, solution_defs = _top_level(starter_tree), _top_level(solution_tree)
    missing = [s for s in symbols if s not in starter_defs or s not in solution_defs]
    if missing:
        raise SpliceError(f"{filename}: {', '.join(missing)} not defined at the top level of both the starter "
                          "and the solution")
    starter_names = set(starter_defs) | set(_imports(starter_tree))
    solution_imports = _imports(solution_tree)

    # What the spliced definitions need, transitively, that the starter does not define itself.
    helpers: list[ast.stmt] = []
    imports: dict[str, ast.stmt] = {}
    pending = [solution_defs[s] for s in symbols]
    visited: set[int] = set()
    while pending:
        node = pending.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        for name in _names_used(node):
            if name in starter_names or name in symbols:
                continue
            if name in solution_defs:
                helper = solution_defs[name]
                if helper not in helpers:
                    helpers.append(helper)
                pending.append(helper)
            elif name in solution_imports:
                imports[name] = solution_imports[name]
    solution_lines = solution.splitlines(keepends=True)
    helpers.sort(key=lambda node: node.lineno)  # the solution's order satisfies its own dependencies

    lines = starter.splitlines(keepends=True)
    replacements = {_span(starter_defs[s]): _source(solution_lines, solution_defs[s]) for s in symbols}
    first_spliced = min(first for first, _ in replacements)
    last_import = max((n.end_lineno for n in starter_tree.body if isinstance(n, (ast.Import, ast.ImportFrom))),
                      default=0)
    insertions = {}
    if imports:
        insertions[last_import] = "".join(ast.unparse(i) + "\n" for i in sorted(imports.values(), key=ast.unparse))
    if helpers:
        block = "".join(_source(solution_lines, h) + "\n\n" for h in helpers)
        insertions[first_spliced - 1] = insertions.get(first_spliced - 1, "") + "\n" + block

    out: list[str] = []
    skip_until = 0
    for number, line in enumerate(lines, start=1):
        if number <= skip_until:
            continue
        span = next((s for s in replacements if s[0] == number), None)
        if span is not None:
            out.append(replacements[span])
            skip_until = span[1]
        else:
            out.append(line)
        if number in insertions:
            out.append(insertions[number])
    if 0 in insertions:
        out.insert(0, insertions[0])
    return "".join(out)


def solution_dag(source: str) -> str:
    """A solution DAG file as a starter DAG file: it imports the starter's module, not the solution's."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "solutions":
            for number in range(node.lineno - 1, node.end_lineno):
                lines[number] = lines[number].replace("solutions.", "starters.")
    return "".join(lines)


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


def e2e_criteria(root: Path) -> set[str]:
    """Criteria proved by e2e tests (real Airflow processes), from collecting the suite once."""
    rubric = load(root)
    paths = [e.test_folder for e in rubric.exercises if (root / e.test_folder).is_dir()]
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
