"""What the workbook's test harness may use of grading: the one module of grading/ that tests/harness,
tests/conftest.py and the exercises' tests import.

The graded run and the suite share a few things: the names of the environment variables the grader sets
(grading.core.channel), the error a starter's broken import raises, the judge plugin's failure-message
helpers and the notes it attaches to a failure, the check that the suite runs in the workbook's venv, the
speed classes tests run in, the rubric, and where the sandbox finds bubblewrap. Anything else of grading is the tool's own.

Names are imported lazily: a harness module imported in the learner's subject process pulls in only the
module of grading that owns the name it uses.
"""

from __future__ import annotations

import importlib

_EXPORTS = {  # name -> (module of grading, its name there)
    "SUBJECT_MODE_VAR": ("core.channel", "SUBJECT_MODE_VAR"),
    "SUBJECT_BWRAP_VAR": ("core.channel", "SUBJECT_BWRAP_VAR"),
    "StarterImportError": ("core.errors", "StarterImportError"),
    "RubricError": ("core.errors", "RubricError"),
    "load_rubric": ("core.rubric", "load"),
    "wrong_environment": ("core.environment", "wrong_environment"),
    "speed_of": ("core.speed", "speed_of"),
    "find_bwrap": ("suite.sandbox", "find_bwrap"),
    "learner_notes": ("judge.messages", "learner_notes"),
    "measured_in_subject": ("judge.messages", "measured_in_subject"),
    "is_timeout": ("judge.messages", "is_timeout"),
    "learner_frame": ("judge.messages", "learner_frame"),
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    return getattr(importlib.import_module(f"grading.{module}"), attribute)


def __dir__() -> list[str]:
    return sorted(_EXPORTS)
