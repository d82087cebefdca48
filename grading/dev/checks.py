"""`workbook dev check`: everything a declared exercise lacks or has stale, one line each.

The rubric declares an exercise (id, title, module, points, tasks, criteria); every other file is named after
its slug. What is checked here is what `workbook dev new` scaffolds, plus what grows from it later (DAG files,
the mistake catalogue, the playground's entries).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from grading.core.rubric import Exercise, Rubric
from grading.dev import hint_blocks, registries

# Test files that hold tests of more than one task; every other test file is named test_t<N>_<what>.py.
SHARED_TEST_FILES = ("test_hidden.py", "test_e2e.py", "test_dags.py")
TASK_TEST_FILE = re.compile(r"^test_t(?P<number>\d+)_[a-z0-9_]+\.py$")


def problems(root: Path, rubric: Rubric, exercises: list[Exercise]) -> list[str]:
    out = [f"exercises/rubric.toml: {p}" for p in rubric.problems_found]
    for exercise in exercises:
        out += chapter_problems(root, exercise)
        out += module_problems(root, exercise)
        out += test_problems(root, exercise)
        out += dag_problems(root, exercise)
        if not (root / exercise.notebook).is_file():
            out.append(f"{exercise.notebook}: missing (the walkthrough of {exercise.id})")
    out += registries.problems(root, rubric, exercises)
    return out


def chapter_problems(root: Path, exercise: Exercise) -> list[str]:
    path = root / exercise.chapter
    if not path.is_file():
        return [f"{exercise.chapter}: missing (the chapter of {exercise.id})"]
    text = path.read_text(encoding="utf-8")
    out = hint_blocks.problems(text, exercise)
    for task in exercise.tasks:
        anchor = f"task-{task.number[1:]}"
        if f'id="{anchor}"' not in text:
            out.append(f'{exercise.chapter}: no <a id="{anchor}"></a> before {task.id} (`workbook hint` links to it)')
    return out


def top_level_names(path: Path) -> set[str]:
    """The functions and classes a module defines at its top level."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return {node.name for node in tree.body if isinstance(node, kinds)}


def module_problems(root: Path, exercise: Exercise) -> list[str]:
    sides = ["starters"] + (["solutions"] if (root / "solutions").is_dir() else [])
    names: dict[str, set[str]] = {}
    out = []
    for side in sides:
        relative = f"{side}/{exercise.module}.py"
        if not (root / relative).is_file():
            out.append(f"{relative}: missing (the module of {exercise.id})")
            continue
        try:
            names[side] = top_level_names(root / relative)
        except SyntaxError as error:
            out.append(f"{relative}:{error.lineno}: does not parse: {error.msg}")
            continue
        for task in exercise.tasks:
            out += [f"{relative}: no {symbol} (a symbol of {task.id})" for symbol in task.symbols
                    if symbol not in names[side]]
    # The reference may add helpers of its own; every name the learner is given has a reference.
    if "starters" in names and "solutions" in names:
        for name in sorted(n for n in names["starters"] - names["solutions"] if not n.startswith("_")):
            out.append(f"starters/{exercise.module}.py: defines {name}, which solutions/{exercise.module}.py does not")
    return out


def test_problems(root: Path, exercise: Exercise) -> list[str]:
    folder = root / exercise.test_folder
    if not folder.is_dir():
        return [f"{exercise.test_folder}/: missing (the tests of {exercise.id})"]
    out = [f"{exercise.test_folder}/{name}: missing" for name in ("__init__.py", "conftest.py")
           if not (folder / name).is_file()]
    if (folder / "conftest.py").is_file() and exercise.module not in _fixtures(folder / "conftest.py"):
        out.append(f"{exercise.test_folder}/conftest.py: no fixture named {exercise.module} "
                   f"(the exercise module: `return target.module(\"{exercise.module}\")`)")
    numbers = {task.number[1:] for task in exercise.tasks}
    files = sorted(folder.glob("test_*.py"))
    for path in files:
        match = TASK_TEST_FILE.match(path.name)
        if path.name in SHARED_TEST_FILES:
            continue
        if not match:
            out.append(f"{exercise.test_folder}/{path.name}: not named after a task (test_t<N>_<what>.py, or one "
                       f"of {', '.join(SHARED_TEST_FILES)})")
        elif match["number"] not in numbers:
            out.append(f"{exercise.test_folder}/{path.name}: {exercise.id} has no task t{match['number']}")
    for task in exercise.tasks:
        if not any(p.name.startswith(f"test_{task.number}_") for p in files):
            out.append(f"{exercise.test_folder}/: no test_{task.number}_<what>.py for {task.id}")
    marked = "\n".join(p.read_text(encoding="utf-8") for p in sorted(folder.rglob("test_*.py")))
    for criterion in exercise.criteria:
        if not re.search(rf"""criterion\(\s*["']{re.escape(criterion.id)}["']""", marked):
            out.append(f"{exercise.test_folder}/: no test marked @pytest.mark.criterion(\"{criterion.id}\")")
    return out


def _fixtures(conftest: Path) -> set[str]:
    try:
        tree = ast.parse(conftest.read_text(encoding="utf-8"))
    except SyntaxError:
        return set()
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)
            and any("fixture" in ast.unparse(d) for d in node.decorator_list)}


def dag_problems(root: Path, exercise: Exercise) -> list[str]:
    declared = {dag for task in exercise.tasks for dag in task.dags}
    out = []
    for side in ("starters", "solutions"):
        if not (root / side).is_dir():
            continue
        for dag in sorted(declared):
            if not (root / side / "dags" / dag).is_file():
                out.append(f"{side}/dags/{dag}: missing (named in the dags of {exercise.id}'s tasks)")
        for path in sorted((root / side / "dags").glob(f"{exercise.id}_*.py")):
            if path.name not in declared:
                out.append(f"{side}/dags/{path.name}: no task of {exercise.id} names it in its dags")
    return out
