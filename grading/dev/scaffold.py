"""`workbook dev new <slug>`: an exercise's files, scaffolded from its [[exercise]] entry in the rubric.

Everything starts honest: the starter and the solution raise `todo()` for every task, and each criterion has
a placeholder test that fails until it is written. Existing files are never overwritten.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from grading.core.errors import GradingError
from grading.core.rubric import Exercise, Rubric, Task
from grading.dev.hint_blocks import marker

HIDDEN_TESTS = "test_hidden.py"
LINE_LENGTH = 110


def exercise_of(rubric: Rubric, name: str) -> Exercise:
    for exercise in rubric.exercises:
        if name in (exercise.slug, exercise.id):
            return exercise
    known = ", ".join(e.slug for e in rubric.exercises) or "none"
    raise GradingError(f"no [[exercise]] with the slug {name!r} in the rubric (known: {known}): declare it first "
                       "(id, title, module, points, its [[task]] and [[criterion]] entries)")


def number_of(exercise: Exercise) -> str:
    """`4` for ex04, `11.3` for ex11_3: how a chapter and todo() name the exercise."""
    return ".".join(str(int(part)) for part in re.findall(r"\d+", exercise.id)) or exercise.id


def snake(title: str) -> str:
    words = re.findall(r"[a-z0-9]+", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", title).lower())
    return "_".join(words[:4]) or "task"


def task_file(task: Task) -> str:
    return f"test_{task.number}_{snake(task.title)}.py"


def stubs(task: Task) -> list[str]:
    """The names a task's code defines: its declared symbols, or one function named after its title."""
    return list(task.symbols) or [snake(task.title)]


def files(exercise: Exercise) -> dict[str, str]:
    """Every scaffolded file, relative to the workbook, with its text."""
    module = exercise.module
    out = {
        exercise.chapter: chapter(exercise),
        f"starters/{module}.py": exercise_module(exercise, "Read {chapter} first. Every stub that raises todo() is yours."),
        f"solutions/{module}.py": exercise_module(exercise, "The reference solution of {chapter}."),
        f"{exercise.test_folder}/__init__.py": "",
        f"{exercise.test_folder}/conftest.py": conftest(exercise),
        exercise.notebook: notebook(exercise),
    }
    for task in exercise.tasks:
        out[f"{exercise.test_folder}/{task_file(task)}"] = tests(exercise, [c for c in task.criteria if not c.hidden],
                                                               f"Task {task.number[1:]}: {task.title}.")
    hidden = [c for c in exercise.criteria if c.hidden]
    if hidden:
        out[f"{exercise.test_folder}/{HIDDEN_TESTS}"] = tests(exercise, hidden, "The hidden criteria (instructors only).")
    return out


def scaffold(root: Path, exercise: Exercise) -> list[str]:
    """Write the files; refuse (writing nothing) when any of them exists."""
    planned = files(exercise)
    existing = [name for name in planned if (root / name).exists()]
    if existing:
        raise GradingError(f"{exercise.slug}: not overwriting {', '.join(existing)} (move them away or finish "
                           "the exercise by hand; `workbook dev check` lists what it lacks)")
    for name, text in planned.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(planned)


def chapter(exercise: Exercise) -> str:
    lines = [f"# Exercise {number_of(exercise)}: {exercise.title}", "", "## Objective", "",
             "TODO: what the learner builds and why.", "",
             f"You fill in `starters/{exercise.module}.py`.", ""]
    for task in exercise.tasks:
        number = task.number[1:]
        lines += [f'<a id="task-{number}"></a>', "", f"## Task {number}: {task.title}", "",
                  "TODO: the scenario and what to build.", "", "Success criteria:", ""]
        lines += [f"{i}. `{c.id}`: {c.title}." for i, c in enumerate(task.criteria, start=1)]
        lines += ["", f"Run: `.venv/bin/pytest --target=starter {exercise.test_folder}/{task_file(task)}`", "",
                  marker(task), ""]
    return "\n".join(lines)


def exercise_module(exercise: Exercise, purpose: str) -> str:
    lines = [f'"""Exercise {number_of(exercise)}, {exercise.title}.', "",
             purpose.format(chapter=exercise.chapter), "", "You build:", ""]
    lines += [f"- {', '.join(f'`{name}`' for name in stubs(task))} (Task {task.number[1:]}): {task.title};"
              for task in exercise.tasks]
    lines += ['"""', "", "from __future__ import annotations", "", "from starters._todo import todo"]
    sections = []
    for task in exercise.tasks:
        number = task.number[1:]
        heading = f"# ---- Task {number}: {task.title} "
        definitions = []
        for name in stubs(task):
            todo = (f'todo("{number_of(exercise)}", {number}, "implement {name}", '
                    f'"{exercise.slug}.md#task-{number}")')
            if name[:1].isupper():
                definitions.append(f'class {name}:\n    """{task.title}."""\n\n'
                                   f"    def __init__(self, *args, **kwargs) -> None:\n        raise {todo}\n")
            else:
                definitions.append(f'def {name}(*args, **kwargs):\n    """{task.title}."""\n    raise {todo}\n')
        sections.append(heading + "-" * max(4, LINE_LENGTH - len(heading)) + "\n" + "\n\n".join(definitions))
    return "\n".join(lines) + "\n\n\n" + "\n\n".join(sections)


def conftest(exercise: Exercise) -> str:
    module = exercise.module
    return (f'"""Fixtures of Exercise {number_of(exercise)}: the module under test."""\n\n'
            "from __future__ import annotations\n\nfrom types import ModuleType\n\nimport pytest\n\n\n"
            '@pytest.fixture(scope="session")\n'
            f"def {module}(target) -> ModuleType:\n"
            f'    """The exercise module of the side under test (`starters.{module}` or `solutions.{module}`)."""\n'
            f'    return target.module("{module}")\n')


def tests(exercise: Exercise, criteria: list, doc: str) -> str:
    lines = [f'"""{doc}"""', "", "from __future__ import annotations", "", "import pytest", ""]
    for criterion in criteria:
        name = criterion.id.rsplit(".", 1)[1]
        lines += ["", f'@pytest.mark.criterion("{criterion.id}")', f"def test_{name}({exercise.module}):",
                  f"    pytest.fail({json.dumps(f'not written yet: {criterion.title}')})", ""]
    return "\n".join(lines).rstrip() + "\n"


def notebook(exercise: Exercise) -> str:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": [
            f"# Exercise {number_of(exercise)} walkthrough: {exercise.title}\n", "\n",
            f"Runs the code of [Exercise {number_of(exercise)}](../{exercise.chapter}) step by step."]},
        {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": [
            "import walkthrough as wb\n", "\n", f'{exercise.module} = wb.module("{exercise.module}")']},
    ]
    metadata = {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python"}}
    return json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5}, indent=1) + "\n"
