"""Observations of Exercise 11.5 made where the learner's code runs (in a graded run, the subject): which file
operations it made and on which thread, the asyncio tasks its app starts and leaves, the run times the scheduler
computes from its timetables, and its webhook app served on loopback. Each returns what it saw as data; the
tests decide ("measured in the subject")."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from tests.harness.remote import in_subject, note_measured, subject_module


def _on_an_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def call_recorder() -> CallRecorder:
    """A `CallRecorder` where the learner's code runs: its `wrap()`ed functions go in with `monkeypatch.setattr(
    subject_module("os"), ...)`."""
    note_measured("the learner's file operations")
    return _call_recorder()


@in_subject(always=True)
def _call_recorder() -> CallRecorder:
    return CallRecorder()


class CallRecorder:
    """Wraps functions (`os.scandir`, `builtins.open` ...) so every call is recorded: its name, its first two
    arguments as text, whether it ran on an event loop's thread, and when (monotonic seconds)."""

    def __init__(self) -> None:
        self._calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def wrap(self, function: Callable[..., Any], name: str) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self._calls.append({"name": name, "args": [str(a) for a in args[:2]],
                                    "on_loop": _on_an_event_loop(), "at": time.monotonic()})
            return function(*args, **kwargs)

        return recorded

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(call) for call in self._calls]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


@in_subject
def class_of(value: Any) -> type:
    """`type(value)` where the value lives (in a graded run the class comes back as the judge's one reference
    to it, so `is` compares it with the class the test expects)."""
    return type(value)


@in_subject
def start_server(app_factory: Callable[[], Any]) -> Any:
    """The learner's aiohttp app served on a free loopback port, beside the learner's code (a `BackgroundServer`:
    `.url`, `.stop()`)."""
    from fixtures.http import BackgroundServer

    return BackgroundServer(app_factory).start()


async def app_lifecycle(receiver: Any) -> dict[str, list[str]]:
    """`receiver.make_app()` run with aiohttp's AppRunner on the learner's event loop, then cleaned up: the
    tasks that appeared when it started and those still running after its cleanup."""
    note_measured("the asyncio tasks of the learner's app")
    return await _app_lifecycle(receiver)


@in_subject
async def _app_lifecycle(receiver: Any) -> dict[str, list[str]]:
    from aiohttp import web

    before = asyncio.all_tasks()
    runner = web.AppRunner(receiver.make_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    started = asyncio.all_tasks() - before
    await runner.cleanup()
    await asyncio.sleep(0.05)
    left = [t for t in asyncio.all_tasks() - before if not t.done()]
    return {"started": [repr(t) for t in started], "left": [repr(t) for t in left]}


def next_runs(timetable: Any, after: datetime, count: int = 2) -> list[datetime]:
    """The next `count` run times the scheduler would compute (the core timetable of the SDK one), computed
    beside the learner's timetable."""
    note_measured("the run times of the learner's timetable")
    return _next_runs(timetable, after, count)


@in_subject
def _next_runs(timetable: Any, after: datetime, count: int) -> list[datetime]:
    import pendulum
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction

    core = coerce_to_core_timetable(timetable)
    start = pendulum.instance(after)
    runs, last = [], DataInterval(start, start)
    for _ in range(count):
        info: DagRunInfo = core.next_dagrun_info(last_automated_data_interval=last,
                                                 restriction=TimeRestriction(earliest=None, latest=None, catchup=True))
        runs.append(info.run_after.in_timezone("UTC"))
        last = info.data_interval
    return runs


def counting_trigger_class() -> Any:
    """`CountingTrigger` (tests.ex11_5_event_driven.team_triggers): its class attribute `polls` counts the polls
    made where it runs."""
    note_measured("the polls of a condition trigger")
    return subject_module("tests.ex11_5_event_driven.team_triggers").CountingTrigger
