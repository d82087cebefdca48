"""Subclasses of the learner's triggers that the tests build: a team's watcher, a condition that plays a script,
one that counts its polls. They live beside the learner's classes (in a graded run, in the subject), so the
tests reach them with `subject_module(__name__)`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from tests.harness.target import current_target

_event_driven = current_target().module("event_driven")


class TeamNewObjectTrigger(_event_driven.NewObjectTrigger):
    """A team's subclass of NewObjectTrigger, importable from here as the triggerer would import it."""


class ScriptedTrigger(_event_driven.ConditionTrigger):
    """Plays a script: each poll returns the next item ("skip", "error", "hang", or a context dict to fire)."""

    steps: Iterable = iter(())

    async def poll(self):
        step = next(self.steps, "skip")
        if step == "error":
            raise ConnectionError("condition source unreachable")
        if step == "hang":
            await asyncio.sleep(30)
        if step == "skip":
            return _event_driven.PollResult.skip()
        return _event_driven.PollResult.fire_with(step)


def scripted_trigger(steps: list, **options: Any) -> ScriptedTrigger:
    """A ScriptedTrigger built with `options` that plays `steps` (the script is set after __init__, which the
    learner's signature does not know)."""
    trigger = ScriptedTrigger(**options)
    trigger.steps = iter(steps)
    return trigger


class CountingTrigger(_event_driven.ConditionTrigger):
    """Skips every poll and counts them."""

    polls = 0

    async def poll(self):
        type(self).polls += 1
        return _event_driven.PollResult.skip()
