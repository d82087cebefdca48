"""A team's subclasses of the learner's triggers: their serialize() must name the subclass, so the classpath
comes from the class. They live beside the learner's classes (in a graded run, in the subject), so the tests
reach them with `subject_module(__name__)`."""

from __future__ import annotations

from typing import Any

from tests.harness.target import current_target

_custom_trigger = current_target().module("custom_trigger")


class TeamHttpPollingTrigger(_custom_trigger.HttpPollingTrigger):
    """A team's subclass of HttpPollingTrigger."""


class TeamFilePatternTrigger(_custom_trigger.FilePatternTrigger):
    """A team's subclass of FilePatternTrigger."""


def class_of(value: Any) -> type:
    """`type(value)` where the value lives (in a graded run the class comes back as the judge's one reference
    to it, so `is` compares it with the class the test built the value from)."""
    return type(value)
