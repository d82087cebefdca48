"""Check a trigger the way Airflow handles it: serialized by the worker, stored, rebuilt by the triggerer
from its classpath and kwargs, run in an event loop until its first event."""

from __future__ import annotations

import asyncio
import inspect
import json
import subprocess
import sys
import tempfile
import textwrap
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from tests.harness.remote import in_subject
from tests.harness.target import REPO_ROOT


def _encode(kwargs: dict[str, Any]) -> str:
    """What the worker sends and the DB stores (`serde`, as the Task Runner does)."""
    from airflow.sdk.serde import serialize

    return json.dumps(serialize(kwargs))


def _decode(encoded: str) -> dict[str, Any]:
    """What the triggerer gets back before it calls `cls(**kwargs)`."""
    from airflow.models.trigger import Trigger
    from airflow.serialization.decoders import smart_decode_trigger_kwargs

    return {k: smart_decode_trigger_kwargs(v) for k, v in Trigger._decrypt_kwargs(encoded).items()}


def _serialize(trigger: BaseTrigger) -> tuple[str, dict[str, Any]]:
    name = type(trigger).__name__
    serialized = trigger.serialize()
    if not (isinstance(serialized, tuple) and len(serialized) == 2):
        raise AssertionError(f"{name}.serialize() must return (classpath, kwargs), returned {serialized!r}")
    classpath, kwargs = serialized
    if not isinstance(classpath, str) or not isinstance(kwargs, dict):
        raise AssertionError(f"{name}.serialize() must return (str, dict), returned {serialized!r}")
    return classpath, kwargs


@in_subject
def roundtrip(trigger: BaseTrigger) -> BaseTrigger:
    """Serialize, store and rebuild `trigger` in this process; returns the rebuilt trigger.

    Fails when the classpath does not import to the trigger's own class, when the kwargs do not survive
    Airflow's serialization, or when the rebuilt trigger serializes differently.
    """
    from airflow.sdk.module_loading import import_string

    name = type(trigger).__name__
    classpath, kwargs = _serialize(trigger)
    try:
        cls = import_string(classpath)
    except ImportError as exc:
        raise AssertionError(f"{name}.serialize() classpath {classpath!r} does not import: {exc}") from None
    if cls is not type(trigger):
        raise AssertionError(
            f"{name}.serialize() classpath {classpath!r} imports {cls.__module__}.{cls.__qualname__}, "
            f"not {type(trigger).__module__}.{type(trigger).__qualname__}"
        )
    missing = _constructor_arguments(cls) - kwargs.keys()
    if missing:
        raise AssertionError(
            f"{name}.serialize() leaves out constructor arguments {sorted(missing)}: the triggerer would "
            f"rebuild the trigger with their defaults"
        )
    try:
        rebuilt = cls(**_decode(_encode(kwargs)))
    except TypeError as exc:
        raise AssertionError(f"{name}(**kwargs from serialize()) failed: {exc}") from None
    again = _serialize(rebuilt)
    if again != (classpath, kwargs):
        raise AssertionError(
            f"{name} does not round-trip: serialize() gave {(classpath, kwargs)!r}, "
            f"the rebuilt trigger gives {again!r}"
        )
    return rebuilt


def _constructor_arguments(cls: type) -> set[str]:
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {
        p.name for p in parameters
        if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


@in_subject
async def first_event(trigger: BaseTrigger, within: float) -> TriggerEvent:
    """Run `trigger.run()` until its first event, then close the generator as the triggerer does."""
    name = type(trigger).__name__
    agen = trigger.run()
    if not inspect.isasyncgen(agen):
        if inspect.iscoroutine(agen):
            agen.close()
        raise AssertionError(f"{name}.run() must be an async generator that yields TriggerEvent(...)")
    try:
        async with asyncio.timeout(within):
            event = await anext(agen)
    except StopAsyncIteration:
        raise AssertionError(f"{name}.run() ended without yielding an event") from None
    except TimeoutError:
        raise TimeoutError(f"{name}.run() yielded no event within {within} s") from None
    finally:
        await agen.aclose()
        await trigger.cleanup()
    if not isinstance(event, TriggerEvent):
        raise AssertionError(f"{name}.run() must yield TriggerEvent objects, yielded {event!r}")
    return event


@in_subject
async def collect_events(trigger: BaseTrigger, within: float) -> list[TriggerEvent]:
    """Run `trigger.run()` to its end and return every event it yielded."""
    events: list[TriggerEvent] = []
    async with asyncio.timeout(within):
        async for event in trigger.run():
            events.append(event)
    return events


_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from airflow.sdk.module_loading import import_string
    from tests.harness.triggers import _decode, first_event

    classpath, encoded, timeout = json.loads(sys.stdin.read())
    trigger = import_string(classpath)(**_decode(encoded))
    event = asyncio.run(first_event(trigger, timeout))
    print("WORKBOOK_EVENT " + json.dumps(event.payload, default=str), flush=True)
    """
)


@in_subject
def run_in_fresh_process(trigger: BaseTrigger, timeout: float = 30.0) -> Any:
    """Rebuild `trigger` from its serialized form in a new Python process that has only the repo root on
    its path (as the triggerer has, never the DAG folder), run it to its first event, return the payload."""
    classpath, kwargs = _serialize(trigger)
    with tempfile.TemporaryDirectory(prefix="workbook-triggerer-") as cwd:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD],
            input=json.dumps([classpath, _encode(kwargs), timeout]),
            cwd=cwd,
            env={**_child_env(), "PYTHONPATH": str(REPO_ROOT)},
            capture_output=True,
            text=True,
            timeout=timeout + 60,
            check=False,
        )
    for line in done.stdout.splitlines():
        if line.startswith("WORKBOOK_EVENT "):
            return json.loads(line.removeprefix("WORKBOOK_EVENT "))
    tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
    raise AssertionError(
        f"{classpath} rebuilt in a fresh process produced no event (exit {done.returncode}):\n{tail}"
    )


def _child_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
