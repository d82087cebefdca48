"""What a learner never sees of a hidden test: its id, its file, its message, its criterion's hint; and what a
submission may not carry out in its own messages (the text of a hidden test or of a solution)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from grading.core.rubric import Rubric
from grading.scoring.run import Run

if TYPE_CHECKING:
    from grading.scoring.grade import Grade

HIDDEN_MESSAGE = "a hidden test failed (its details are for instructors)"
HIDDEN_NOT_RUN = "a hidden test could not run (its details are for instructors)"
HIDDEN_TEST = "a hidden test"
# A hidden criterion's hint would say what its hidden test checks: the learner gets this instead.
HIDDEN_HINT = "hidden criteria have no hint: reread the task's requirements in its chapter"
HIDDEN_FILE_MESSAGE = "could not be imported (its details are for instructors)"

QUOTED_SECRET = "(withheld: the message quoted a hidden test or a solution)"


def scrub(grade_: Grade, quotes_a_secret) -> int:
    """Replace every message, note and import error for which `quotes_a_secret(text)` holds; returns how many.

    A submission can read the hidden tests (they must be readable to run) and put their text into its own
    public failure messages: those never reach a learner-visible file.
    """
    count = 0
    for exercise in grade_.exercises:
        for c in exercise.criteria:
            if c.message and quotes_a_secret(c.message):
                c.message, count = QUOTED_SECRET, count + 1
        for path, message in list(exercise.collection_errors.items()):
            if quotes_a_secret(message):
                exercise.collection_errors[path], count = QUOTED_SECRET, count + 1
    for number, note in enumerate(grade_.notes):
        if quotes_a_secret(note):
            grade_.notes[number], count = QUOTED_SECRET, count + 1
    return count


def hidden_tests(rubric: Rubric, run: Run) -> tuple[set[str], set[str]]:
    """The node ids of tests that prove a hidden criterion, and the files they (or hidden tests) live in."""
    hidden = {c.id for c in rubric.criteria.values() if c.hidden}
    ids = {t.nodeid for t in run.tests.values() if hidden & set(t.criteria) or t.hidden}
    paths = {t.path for t in run.tests.values() if t.nodeid in ids}
    paths |= {p for p in run.collection_errors if Path(p).name.startswith("test_hidden")}
    return ids, paths


def redact(text: str, hidden_ids: set[str], hidden_paths: set[str]) -> str:
    """`text` with every hidden test id and hidden test file named only as a hidden test."""
    for name in sorted(hidden_ids | hidden_paths, key=len, reverse=True):
        text = text.replace(name, HIDDEN_TEST)
    return text
