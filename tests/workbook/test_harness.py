"""The harness helpers catch what the real Airflow would catch."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from airflow.sdk import BaseSensorOperator, timezone
from airflow.sdk.exceptions import AirflowRescheduleException, AirflowSensorTimeout, TaskDeferralTimeout

from tests.harness import drive_deferral, first_event, make_context, roundtrip, run_in_fresh_process
from tests.harness.context import call_execute
from tests.harness.reschedule import RescheduledTask, mapped
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


class RecordingSensor(BaseSensorOperator):
    """Never done; remembers what each poke's context said, as a sensor in reschedule mode sees it."""

    seen: list = []

    def poke(self, context):
        ti = context["ti"]
        RecordingSensor.seen.append((id(self), context["task_reschedule_count"], ti.try_number, ti.map_index,
                                     ti.get_first_reschedule_date(context)))
        return False


def test_reschedule_pokes_run_on_new_instances_with_the_count_and_first_date_airflow_gives():
    RecordingSensor.seen = []
    task = RescheduledTask(lambda: RecordingSensor(task_id="recording", mode="reschedule", poke_interval=5,
                                                   timeout=3600, retries=1))
    before = timezone.utcnow()
    first = task.execute()
    assert isinstance(first, AirflowRescheduleException), f"execute() in reschedule mode: got {first!r}"
    assert timedelta(seconds=4) < first.reschedule_date - before < timedelta(seconds=60)
    task.poke()
    task.execute()
    instances, counts, tries, _, firsts = zip(*RecordingSensor.seen, strict=True)
    assert len(set(instances)) == 3, "every reschedule poke must run on a new operator instance"
    assert counts == (0, 1, 2) and tries == (1, 1, 1), f"reschedule counts {counts}, try numbers {tries}"
    assert firsts[0] is None and firsts[1] == firsts[2] and before <= firsts[1] <= timezone.utcnow(), (
        f"first reschedule dates: expected None on the first poke, then the first poke's start, got {firsts}"
    )
    task.retry()
    RecordingSensor.seen = []
    task.poke()
    assert RecordingSensor.seen[0][1:3] == (0, 2) and RecordingSensor.seen[0][4] is None, (
        f"the first poke of a retry: expected count 0, try 2, no first reschedule date, got {RecordingSensor.seen}"
    )
    RecordingSensor.seen = []
    for instance in mapped(lambda: RecordingSensor(task_id="recording", mode="reschedule"), 3):
        instance.poke()
    assert [entry[3] for entry in RecordingSensor.seen] == [0, 1, 2], f"map indexes: {RecordingSensor.seen}"

    # Airflow's own sensor timeout counts from the first reschedule date the harness gives.
    timed = RescheduledTask(lambda: RecordingSensor(task_id="timed", mode="reschedule", poke_interval=1, timeout=1))
    timed.execute()
    timed.records.rows[0] = dataclasses.replace(timed.records.rows[0], start_date=timezone.utcnow() - timedelta(seconds=5))
    with pytest.raises(AirflowSensorTimeout):
        timed.execute()
