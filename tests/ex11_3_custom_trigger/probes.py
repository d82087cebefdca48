"""Observations of Exercise 11.3 made where the learner's trigger runs (in a graded run, the subject): the
slow callbacks asyncio's debug mode reports, and the moment a trigger's run() starts. Each returns what it saw
as data; the tests decide ("measured in the subject")."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any

from tests.harness.remote import in_subject, note_measured
from tests.harness.triggers import collect_events


class SlowCallbacks(logging.Handler):
    """Collects asyncio debug mode's "Executing <...> took 0.250 seconds" warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "took" in message and "seconds" in message:
            self.messages.append(message)


def run_in_debug_loop(make: Callable[[], Awaitable[Any]], slow_callback: float) -> tuple[Any, list[str]]:
    """Run `make()` in a fresh event loop in asyncio debug mode; returns (its result, the slow callbacks)."""
    handler = SlowCallbacks()
    logger = logging.getLogger("asyncio")
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    loop = asyncio.new_event_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = slow_callback
    try:
        result = loop.run_until_complete(make())
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
    return result, handler.messages


def events_in_debug_loop(trigger: Any, within: float, slow_callback: float) -> tuple[list[Any], list[str]]:
    """`collect_events(trigger, within)` in a fresh debug-mode loop beside the trigger: (its events, the slow
    callbacks)."""
    note_measured("event-loop slow callbacks")
    return _events_in_debug_loop(trigger, within, slow_callback)


@in_subject(always=True)
def _events_in_debug_loop(trigger: Any, within: float, slow_callback: float) -> tuple[list[Any], list[str]]:
    return run_in_debug_loop(lambda: collect_events(trigger, within), slow_callback)


class RunStarted:
    """Patches `trigger_class.run` so that `wait()` / `is_set()` tell when a run has started; `undo()`
    restores the class."""

    def __init__(self, trigger_class: type) -> None:
        self.event = threading.Event()
        self.trigger_class = trigger_class
        self.had_own = "run" in trigger_class.__dict__
        self.own = trigger_class.__dict__.get("run")
        original_run, started = trigger_class.run, self.event

        async def observed_run(self):
            started.set()
            async for event in original_run(self):
                yield event

        trigger_class.run = observed_run

    def wait(self, timeout: float | None = None) -> bool:
        return self.event.wait(timeout)

    def is_set(self) -> bool:
        return self.event.is_set()

    def undo(self) -> None:
        if self.had_own:
            self.trigger_class.run = self.own
        else:
            del self.trigger_class.run


def signal_run_start(trigger_class: type) -> RunStarted:
    note_measured("the start of a trigger's run()")
    return _signal_run_start(trigger_class)


@in_subject(always=True)
def _signal_run_start(trigger_class: type) -> RunStarted:
    return RunStarted(trigger_class)
