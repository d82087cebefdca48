"""The rubric's task hints teach in three steps and do not repeat the chapter's own text."""

from __future__ import annotations

import re

import pytest

from grading.core.rubric import load
from tests.harness.target import REPO_ROOT

RUBRIC = load(REPO_ROOT)
TASKS = [(exercise, task) for exercise in RUBRIC.exercises for task in exercise.tasks]
POINTER = re.compile(r"https://\S+|airflow/[\w/]+\.py")
# The hints the chapter shows, generated from the rubric between these markers (`workbook dev hints`).
HINT_BLOCK = re.compile(r"<!-- hints: \S+ -->.*?<!-- /hints -->", re.DOTALL)
# A run of this many words found word for word in the chapter is a copy, not a hint.
COPIED_WORDS = 12


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


@pytest.mark.parametrize(("exercise", "task"), TASKS, ids=[t.id for _e, t in TASKS])
def test_a_nudge_a_concept_with_a_pointer_and_a_sketch(exercise, task):
    assert len(task.hints) == 3, f"{task.id}: expected 3 hint levels (nudge, concept, sketch), got {len(task.hints)}"
    nudge, concept, sketch = task.hints
    assert POINTER.search(concept), f"{task.id}: level 2 points into Airflow's docs or source: {concept!r}"
    assert len(nudge) < len(sketch), f"{task.id}: level 1 is a nudge, level 3 the longer sketch"


@pytest.mark.parametrize(("exercise", "task"), TASKS, ids=[t.id for _e, t in TASKS])
def test_no_hint_copies_the_chapter(exercise, task):
    own_text = HINT_BLOCK.sub("", (REPO_ROOT / exercise.chapter).read_text(encoding="utf-8"))
    chapter = " ".join(_words(own_text))
    for level, hint in enumerate(task.hints, start=1):
        words = _words(hint)
        copied = [" ".join(words[i:i + COPIED_WORDS]) for i in range(len(words) - COPIED_WORDS + 1)
                  if f" {' '.join(words[i:i + COPIED_WORDS])} " in f" {chapter} "]
        assert copied == [], f"{task.id} hint {level} repeats {exercise.chapter}: {copied[0]!r}"
