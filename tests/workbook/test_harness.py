"""The harness helpers catch what the real Airflow would catch."""

from __future__ import annotations

import asyncio

import pytest
from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import TaskDeferralTimeout

from tests.harness import drive_deferral, first_event, make_context, roundtrip, run_in_fresh_process
from tests.harness.context import call_execute
from tests.workbook.sample_operator import (
    DropsArgumentTrigger,
    NoTimeoutOperator,
    ReturnsInsteadOfYieldingTrigger,
    WaitOperator,
    WaitTrigger,
)


class CountingSensor(BaseSensorOperator):
    def __init__(self, ready_after: int, **kwargs):
        super().__init__(**kwargs)
        self.ready_after = ready_after
        self.pokes = 0

    def poke(self, context):
        self.pokes += 1
        return self.pokes >= self.ready_after


def test_context_is_a_real_task_context():
    sensor = CountingSensor(ready_after=1, task_id="counting")
    context = make_context(sensor, try_number=2)
    assert context["ti"].task_id == "counting"
    assert context["ti"].try_number == 2
    assert context["task"] is sensor
    assert context["ds"] == context["logical_date"].strftime("%Y-%m-%d")


def test_execute_runs_the_poke_loop():
    sensor = CountingSensor(ready_after=3, task_id="counting", poke_interval=0.01, timeout=5)
    call_execute(sensor)
    assert sensor.pokes == 3


def test_deferral_resumes_on_a_new_instance():
    run = drive_deferral(WaitOperator(task_id="wait", seconds=0.05))
    assert run.deferred
    assert run.event == {"status": "success", "label": "wait", "waited": 0.05}
    assert run.result["had_marker"] is False


def test_operator_that_returns_at_once_does_not_defer():
    run = drive_deferral(WaitOperator(task_id="wait", seconds=0))
    assert (run.deferred, run.result) == (False, {"status": "immediate"})


def test_deferral_timeout_resumes_like_airflow():
    with pytest.raises(TaskDeferralTimeout):
        drive_deferral(WaitOperator(task_id="wait", seconds=10, defer_timeout=0.1))


def test_deferral_without_timeout_that_never_fires_fails_the_test():
    with pytest.raises(AssertionError, match="defer\\(\\) was given no timeout"):
        drive_deferral(NoTimeoutOperator(task_id="wait", seconds=10), max_wait=0.2)


def test_roundtrip_catches_a_dropped_argument():
    assert roundtrip(WaitTrigger(1.5, label="x")).label == "x"
    with pytest.raises(AssertionError, match=r"leaves out constructor arguments \['label'\]"):
        roundtrip(DropsArgumentTrigger(1.5, label="x"))


def test_first_event_rejects_a_run_that_returns():
    with pytest.raises(AssertionError, match="must be an async generator"):
        asyncio.run(first_event(ReturnsInsteadOfYieldingTrigger(0), within=1))


def test_trigger_rebuilt_in_a_fresh_process_fires():
    assert run_in_fresh_process(WaitTrigger(0.01, label="fresh")) == {
        "status": "success", "label": "fresh", "waited": 0.01,
    }
