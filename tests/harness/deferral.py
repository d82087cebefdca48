"""Drive a deferrable operator in-process: execute() -> TaskDeferred -> trigger rebuilt and run to its
event -> the callback on a *new* operator instance, as Airflow resumes a deferred task."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, BaseOperator, Context
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
from airflow.sdk.exceptions import TaskDeferred
from airflow.triggers.base import BaseTrigger

from tests.harness.context import HARNESS_DAG_ID, as_task_runner, make_context
from tests.harness.remote import in_subject
from tests.harness.triggers import first_event, roundtrip


@dataclass
class DeferralRun:
    deferred: bool
    result: Any = None
    trigger: BaseTrigger | None = None
    method_name: str | None = None
    timeout: timedelta | None = None
    event: Any = None


@in_subject
def fresh_instance(task: BaseOperator) -> BaseOperator:
    """A new operator built from the same constructor arguments (state set in execute() is gone)."""
    init_kwargs = dict(getattr(task, "_BaseOperator__init_kwargs", {}))
    init_kwargs.pop("dag", None)
    init_kwargs.pop("task_group", None)
    clone = type(task)(**init_kwargs)
    DAG(task.dag_id if task.has_dag() else HARNESS_DAG_ID, schedule=None).add_task(clone)
    return clone


@in_subject
def drive_deferral(task: BaseOperator, context: Context | None = None, *, max_wait: float = 30.0) -> DeferralRun:
    """Run `task` to completion through at most one deferral.

    The trigger is round-tripped through serialization first. If it has not fired by the deferral's own
    `timeout` (when that is shorter than `max_wait`), the task is resumed the way Airflow resumes a
    timed-out deferral, so sensors raise their timeout error. A trigger that outlives `max_wait` without a
    deferral timeout fails the test.
    """
    context = context if context is not None else make_context(task)
    try:
        with as_task_runner(task):
            return DeferralRun(deferred=False, result=task.execute(context))
    except TaskDeferred as deferral:
        deferred = deferral
    trigger = roundtrip(deferred.trigger)
    deadline = deferred.timeout.total_seconds() if deferred.timeout is not None else None
    wait = min(max_wait, deadline) if deadline is not None else max_wait
    resumed = fresh_instance(task)
    resumed_context = make_context(resumed)
    run = DeferralRun(True, trigger=trigger, method_name=deferred.method_name, timeout=deferred.timeout)
    try:
        event = asyncio.run(first_event(trigger, wait))
    except TimeoutError:
        if deadline is None or deadline > max_wait:
            raise AssertionError(
                f"{type(task).__name__} deferred to {type(trigger).__name__}, which yielded no event within "
                f"{max_wait} s" + ("" if deadline is not None else " (and defer() was given no timeout)")
            ) from None
        with as_task_runner(resumed):
            resumed.resume_execution(
                TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, resumed_context
            )
        raise AssertionError("resume_execution after a deferral timeout must raise") from None
    run.event = event.payload
    with as_task_runner(resumed):
        run.result = resumed.resume_execution(
            deferred.method_name, {**(deferred.kwargs or {}), "event": event.payload}, resumed_context
        )
    return run
