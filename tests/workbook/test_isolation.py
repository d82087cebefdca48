"""The isolation matrix's ground: the rubric names every task's code, the splice takes exactly that code
from a solution into a starter, and the fast loop's gate holds back only the task whose tests fail."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grading.core.rubric import load
from grading.instrument.isolation import expected_criteria
from grading.instrument.splice import SpliceError, solution_dag, splice
from tests.harness.target import REPO_ROOT

RUBRIC = load(REPO_ROOT)
TASKS = [(e, t) for e in RUBRIC.exercises for t in e.tasks]
HAS_SOLUTIONS = (REPO_ROOT / "solutions").is_dir()


def _top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _raises_todo(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call) and getattr(n.exc.func, "id", "") == "todo"
               for n in ast.walk(node))


@pytest.mark.skipif(not HAS_SOLUTIONS, reason="needs solutions/ (the instructor repo)")
@pytest.mark.parametrize(("exercise", "task"), TASKS, ids=[t.id for _, t in TASKS])
def test_a_tasks_code_exists_on_both_sides(exercise, task):
    assert task.symbols or task.dags, f"{task.id}: names no symbols or dags (its code, for grading it on its own)"
    for side in ("starters", "solutions"):
        names = _top_level_names(REPO_ROOT / side / f"{exercise.module}.py")
        missing = [s for s in task.symbols if s not in names]
        assert not missing, f"{task.id}: symbols {missing} are not top-level definitions of {side}/{exercise.module}.py"
        absent = [d for d in task.dags if not (REPO_ROOT / side / "dags" / d).is_file()]
        assert not absent, f"{task.id}: dags {absent} are not files of {side}/dags/"


@pytest.mark.parametrize("exercise", RUBRIC.exercises, ids=[e.id for e in RUBRIC.exercises])
def test_every_todo_and_every_dag_belongs_to_a_task(exercise):
    """A starter definition with a todo that no task names would stay unstarted in every task's tree."""
    module = REPO_ROOT / "starters" / f"{exercise.module}.py"
    owned = {s for t in exercise.tasks for s in t.symbols}
    tree = ast.parse(module.read_text(encoding="utf-8"))
    unowned = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
               and _raises_todo(n) and n.name not in owned and not n.name.startswith("_not_started")]
    assert not unowned, f"starters/{exercise.module}.py: {unowned} raise todo(...) but no task of {exercise.id} names them"
    prefix = exercise.id + "_"
    dags = {p.name for p in (REPO_ROOT / "starters" / "dags").glob(f"{prefix}*.py")}
    claimed = {d for t in exercise.tasks for d in t.dags}
    assert dags <= claimed, f"starters/dags/{sorted(dags - claimed)}: no task of {exercise.id} names them in dags"


def test_starter_dag_files_parse_with_every_task_unstarted():
    """A DAG file calls its task's code at parse time (factories, schedules): unstarted, it must still parse,
    or it breaks other tasks' DAG runs."""
    script = textwrap.dedent("""
        import importlib.util, json, pathlib, sys
        failed = {}
        for path in sorted(pathlib.Path("starters/dags").glob("*.py")):
            spec = importlib.util.spec_from_file_location("dag_" + path.stem, path)
            try:
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            except BaseException as error:
                failed[path.name] = f"{type(error).__name__}: {error}"
        print(json.dumps(failed))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300, check=False, env={**_env(), "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    failed = json.loads(done.stdout.strip().splitlines()[-1])
    assert failed == {}, f"starter DAG files that do not parse as shipped: {failed}"


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


# ---- the splice ----------------------------------------------------------------------------------------
STARTER = '''\
"""starter"""
from __future__ import annotations

import os

from starters._todo import todo

LIMIT = 3


def given() -> int:
    return LIMIT


def first() -> int:
    raise todo("9", 1, "implement first", "x.md#task-1")


class Second:
    def run(self) -> int:
        raise todo("9", 2, "implement Second.run", "x.md#task-2")
'''

SOLUTION = '''\
"""solution"""
from __future__ import annotations

import json
import os
from pathlib import Path

LIMIT = 3
_SCALE = 10


def given() -> int:
    return LIMIT


def _helper(value: int) -> int:
    return value * _SCALE + len(json.dumps(str(Path("."))))


def first() -> int:
    return _helper(given())


class Second:
    def run(self) -> int:
        return 2
'''


def _load(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "<spliced>", "exec"), namespace)  # noqa: S102 - the test's own fixture code
    return namespace


def test_splice_takes_the_task_and_what_it_needs_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO_ROOT))
    spliced = splice(STARTER, SOLUTION, ["first"])
    namespace = _load(spliced)
    assert namespace["first"]() == 3 * 10 + len(json.dumps(".")), spliced
    with pytest.raises(NotImplementedError, match="Task 2"):
        namespace["Second"]().run()
    assert "import json" in spliced and "_SCALE = 10" in spliced and "def _helper" in spliced, spliced
    assert spliced.count("LIMIT = 3") == 1 and spliced.count("def given") == 1, (
        f"what the starter already has must not be taken twice:\n{spliced}")


def test_splice_of_every_task_is_valid_python_and_keeps_the_other_tasks_todo():
    if not HAS_SOLUTIONS:
        pytest.skip("needs solutions/ (the instructor repo)")
    for exercise in RUBRIC.exercises:
        starter = (REPO_ROOT / "starters" / f"{exercise.module}.py").read_text(encoding="utf-8")
        solution = (REPO_ROOT / "solutions" / f"{exercise.module}.py").read_text(encoding="utf-8")
        for task in exercise.tasks:
            if not task.symbols:
                continue
            tree = ast.parse(splice(starter, solution, list(task.symbols)))
            by_name = {n.name: n for n in tree.body if hasattr(n, "name")}
            still_todo = [s for s in task.symbols if _raises_todo(by_name[s])]
            assert not still_todo, f"{task.id}: spliced {still_todo} still raise todo()"
            others = [s for t in exercise.tasks if t is not task for s in t.symbols]
            taken = [s for s in others if s in by_name and not _raises_todo(by_name[s])
                     and _raises_todo(next(n for n in ast.parse(starter).body if getattr(n, "name", "") == s))]
            assert not taken, f"{task.id}: the splice also filled in other tasks' {taken}"


def test_splice_refuses_a_symbol_that_is_not_on_both_sides():
    with pytest.raises(SpliceError, match="nowhere"):
        splice(STARTER, SOLUTION, ["nowhere"])
    with pytest.raises(SpliceError, match="line"):
        splice("def broken(:\n", SOLUTION, ["first"])


def test_a_solution_dag_imports_the_starter_module():
    source = "from solutions.custom_sensors import OrderStatusSensor\nx = 'solutions.custom_sensors'\n"
    assert solution_dag(source) == "from starters.custom_sensors import OrderStatusSensor\nx = 'solutions.custom_sensors'\n"


def test_a_task_that_builds_on_another_expects_both_tasks_criteria():
    for exercise in RUBRIC.exercises:
        for task in exercise.tasks:
            expected = expected_criteria(RUBRIC, task)
            own = {c.id for c in task.criteria}
            assert own <= expected
            for other in task.builds_on:
                other_task = RUBRIC.task(exercise, other.rsplit(".", 1)[1])
                assert {c.id for c in other_task.criteria} <= expected, f"{task.id} builds on {other}"


# ---- the rubric keys -------------------------------------------------------------------------------------
RUBRIC_HEAD = '''schema = 1
[[exercise]]
id = "ex09"
title = "T"
module = "t"
points = 2
'''


def _problems(tmp_path: Path, tasks: str) -> list[str]:
    (tmp_path / "exercises").mkdir(exist_ok=True)
    criteria = "".join(f'[[criterion]]\nid = "ex09.t{n}.c"\ntitle = "c"\npoints = 1\nhint = "h"\n' for n in (1, 2))
    (tmp_path / "exercises" / "rubric.toml").write_text(RUBRIC_HEAD + tasks + criteria, encoding="utf-8")
    return load(tmp_path).problems_found


def test_the_rubric_checks_each_tasks_code(tmp_path):
    good = ('[[task]]\nid = "ex09.t1"\ntitle = "a"\nsymbols = ["A"]\n'
            '[[task]]\nid = "ex09.t2"\ntitle = "b"\ndags = ["ex09_b.py"]\nbuilds_on = ["ex09.t1"]\n')
    assert _problems(tmp_path, good) == []
    cases = {
        "claimed by ex09.t1 and ex09.t2": '[[task]]\nid = "ex09.t1"\ntitle = "a"\nsymbols = ["A"]\n'
                                          '[[task]]\nid = "ex09.t2"\ntitle = "b"\nsymbols = ["A"]\n',
        "does not come before it": '[[task]]\nid = "ex09.t1"\ntitle = "a"\nsymbols = ["A"]\nbuilds_on = ["ex09.t2"]\n'
                                   '[[task]]\nid = "ex09.t2"\ntitle = "b"\nsymbols = ["B"]\n',
        "not a task of ex09": '[[task]]\nid = "ex09.t1"\ntitle = "a"\nsymbols = ["A"]\nbuilds_on = ["ex04.t1"]\n'
                              '[[task]]\nid = "ex09.t2"\ntitle = "b"\nsymbols = ["B"]\n',
        "must be a list of non-empty strings": '[[task]]\nid = "ex09.t1"\ntitle = "a"\nsymbols = "A"\n'
                                               '[[task]]\nid = "ex09.t2"\ntitle = "b"\nsymbols = ["B"]\n',
        "expected a file name of dags/": '[[task]]\nid = "ex09.t1"\ntitle = "a"\ndags = ["dags/a.py"]\n'
                                         '[[task]]\nid = "ex09.t2"\ntitle = "b"\nsymbols = ["B"]\n',
    }
    for expected, tasks in cases.items():
        problems = _problems(tmp_path, tasks)
        assert any(expected in p for p in problems), f"expected a problem saying {expected!r}, got {problems}"


# ---- the fast loop's gate, per task ----------------------------------------------------------------------
def test_a_tasks_dag_runs_wait_only_for_its_own_unit_tests_and_what_it_builds_on(tmp_path):
    from grading.suite.options import RunOptions
    from grading.suite.runner import run_suite
    from tests.workbook.grading_fixtures.builder import make_workbook

    workbook = make_workbook(tmp_path / "workbook")
    starter = workbook / "starters" / "mini.py"
    solution = (workbook / "solutions" / "mini.py").read_text(encoding="utf-8")
    starter.write_text(splice(starter.read_text(encoding="utf-8"), solution, ["parse_status", "Countdown"]),
                       encoding="utf-8")  # Task 2 done, Task 1 (add) not started
    countdown = "tests/ex01_mini/test_mini.py::test_countdown"

    def outcome():
        run = run_suite(RunOptions(root=workbook, target="starter", paths=["tests/ex01_mini"], gate="exercise",
                                   per_test_timeout=20))
        assert run.tests["tests/ex01_mini/test_mini.py::test_add"].outcome == "failed", run.tests
        return run.tests[countdown]

    alone = outcome()
    assert alone.outcome == "passed", f"Task 2 done, Task 1 not: Task 2's integration test must run, got {alone}"
    rubric = workbook / "exercises" / "rubric.toml"
    rubric.write_text(rubric.read_text(encoding="utf-8").replace(
        'title = "parse and count"\n', 'title = "parse and count"\nbuilds_on = ["ex01.t1"]\n'), encoding="utf-8")
    waits = outcome()
    assert waits.outcome == "not_run" and "ex01.t1's unit tests fail first" in waits.message, (
        f"Task 2 builds on Task 1, which fails: its integration test must wait, got {waits}")


def test_a_starter_that_does_not_import_is_one_line_for_every_criterion_of_its_exercise(tmp_path):
    from grading.scoring.grade import grade
    from grading.suite.options import RunOptions
    from grading.suite.runner import run_suite
    from tests.workbook.grading_fixtures.builder import make_workbook

    workbook = make_workbook(tmp_path / "workbook")
    starter = workbook / "starters" / "mini.py"
    lines = starter.read_text(encoding="utf-8").splitlines()
    number = next(i for i, line in enumerate(lines, start=1) if line.startswith("def add("))
    lines[number - 1] = "def add(a: int, b: int -> int:"
    starter.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = run_suite(RunOptions(root=workbook, target="starter", paths=["tests/ex01_mini", "tests/ex02_greeting"],
                               per_test_timeout=20))
    expected = f"starters/mini.py:{number}: SyntaxError: "
    broken = [t for t in run.tests.values() if t.path.startswith("tests/ex01_mini")]
    assert len(broken) == 1 and broken[0].message.startswith(expected), (
        f"a starter with a syntax error: expected one test saying {expected!r}..., got {broken}")
    result = grade(load(workbook), list(load(workbook).exercises), run, target="starter", reveal_hidden=True)
    messages = {c.id: c.message for c in result.criteria if c.id.startswith("ex01.")}
    assert all(m.startswith(expected) for m in messages.values()), messages
    assert not run.collection_errors, f"no test file is to blame: {run.collection_errors}"
    others = [t for t in run.tests.values() if t.path.startswith("tests/ex02_greeting")]
    assert others and all(t.message.startswith("NotImplementedError: Exercise 2") for t in others), (
        f"the other exercise is graded as usual: {others}")
