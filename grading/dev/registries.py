"""What a new exercise needs outside its own files: the mistake catalogue and the playground's entries.

Both are checked here, not derived: a catalogue entry is written by hand, and so is what the playground
starts for an exercise and tells the learner to try.
"""

from __future__ import annotations

from pathlib import Path

import grading
from grading.core.rubric import Exercise, Rubric
from grading.instrument import catalogue as mistakes
from grading.learner import playground


def problems(root: Path, rubric: Rubric, exercises: list[Exercise]) -> list[str]:
    out = catalogue_problems(root, exercises) if (root / mistakes.CATALOGUE).is_dir() else []
    if Path(grading.__file__).resolve().parent == (root / "grading").resolve():
        out += playground_problems(rubric, exercises)
    return out


def catalogue_problems(root: Path, exercises: list[Exercise]) -> list[str]:
    try:
        entries = mistakes.catalogue(root)
    except (mistakes.MistakeError, OSError) as error:
        return [str(error)]
    out = []
    for exercise in exercises:
        for task in exercise.tasks:
            if not any(e.kind == "alternative" and e.criterion == task.id for e in entries):
                out.append(f"{mistakes.ALTERNATIVES}/{task.id}.alternative: missing (a correct alternative of "
                           f"{task.id}, graded by `workbook mistakes`)")
            for criterion in task.criteria:
                found = sum(e.kind == "mistake" and e.criterion == criterion.id for e in entries)
                if found < 2:
                    out.append(f"{mistakes.CATALOGUE}/{exercise.id}/: {found} mistake(s) for {criterion.id}, "
                               "expected at least two")
    return out


def playground_problems(rubric: Rubric, exercises: list[Exercise]) -> list[str]:
    """An exercise with DAGs runs in `workbook airflow`: the playground must know what it waits on and what to
    try; an entry of an exercise the rubric does not declare is left over."""
    where = "grading/learner/playground.py"
    out = []
    for exercise in exercises:
        if not any(task.dags for task in exercise.tasks):
            continue
        for table in ("EXERCISE_SIMULATORS", "THINGS_TO_TRY"):
            if exercise.id not in getattr(playground, table):
                out.append(f"{where}: {table} has no entry for {exercise.id} (its DAGs run in `workbook airflow`)")
    declared = {e.id for e in rubric.exercises}
    for table in ("EXERCISE_SIMULATORS", "THINGS_TO_TRY"):
        out += [f"{where}: {table} names {name}, which the rubric does not declare"
                for name in sorted(set(getattr(playground, table)) - declared)]
    return out
