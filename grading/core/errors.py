"""What can go wrong with grading itself, as opposed to a submission failing its tests.

Every command prints one of these as one line and exits with "could not run" (grading.cli). A submission's own
failures are never one of these: they are test results.
"""

from __future__ import annotations


class GradingError(RuntimeError):
    """Grading itself could not run (not: the submission failed)."""


class RubricError(ValueError):
    """The rubric cannot be read at all (missing file, invalid TOML, wrong schema)."""


class UnknownExercise(GradingError):
    """An exercise or task named on the command line that the rubric does not have."""

    def __init__(self, name: str, known: list[str] | tuple[str, ...], *, exercise: str | None = None) -> None:
        if exercise is None:
            message = f"no exercise {name!r} in the rubric (known: {', '.join(known) or 'none yet'})"
        else:
            message = f"{exercise} has no task {name!r} (tasks: {', '.join(known) or 'none'})"
        super().__init__(message)
        self.name = name
        self.known = tuple(known)
        self.exercise = exercise


class RosterError(GradingError):
    """A class roster that cannot be read (bad line, unknown learner name, duplicate)."""


class StarterImportError(ImportError):
    """A learner's module (or DAG file) does not import; its message is the one line that says where and why
    (`starters/custom_sensors.py:80: SyntaxError: '(' was never closed`): the learner's failure, not broken tests."""
