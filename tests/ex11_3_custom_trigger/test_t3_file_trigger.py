"""Task 3: FilePatternTrigger and the deferrable FilePatternSensor."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    TaskDeferralTimeout,
    TaskDeferred,
)

from tests.ex11_3_custom_trigger.probes import events_in_debug_loop
from tests.harness import call_execute, collect_events, drive_deferral, first_event, make_context, roundtrip
from tests.harness.dagrun import load_dag
from tests.harness.remote import subject_module
from tests.harness.reschedule import RescheduledTask

# A team's subclass (TeamFilePatternTrigger): its serialize() must name the subclass, so the classpath comes
# from the class. It is defined beside the learner's class, where the trigger runs.
team = subject_module("tests.ex11_3_custom_trigger.team_triggers")
patches = subject_module("tests.harness.patches")


@pytest.mark.criterion("ex11_3.t3.serialize_roundtrip")
def test_serialize_keeps_every_argument(custom_trigger, target, landing_zone):
    trigger = custom_trigger.FilePatternTrigger(pattern=landing_zone.pattern(), min_files=3, poll_interval=2.5, timeout=60.0)
    classpath, kwargs = trigger.serialize()
    assert classpath == f"{target.package}.custom_trigger.FilePatternTrigger", (
        f"serialize() classpath: expected {target.package}.custom_trigger.FilePatternTrigger, got {classpath!r}"
    )
    expected = {"pattern": landing_zone.pattern(), "min_files": 3, "poll_interval": 2.5, "timeout": 60.0}
    assert kwargs == expected, f"serialize() kwargs: expected {expected!r}, got {kwargs!r}"
    roundtrip(trigger)
    roundtrip(custom_trigger.FilePatternTrigger(pattern=landing_zone.pattern()))
    rebuilt = roundtrip(team.TeamFilePatternTrigger(pattern=landing_zone.pattern()))
    assert team.class_of(rebuilt) is team.TeamFilePatternTrigger, (
        f"serialize() of a subclass: expected it to rebuild TeamFilePatternTrigger, got "
        f"{team.class_of(rebuilt).__qualname__}"
    )


@pytest.mark.criterion("ex11_3.t3.serialize_roundtrip")
def test_a_relative_pattern_is_refused(custom_trigger):
    with pytest.raises(ValueError) as raised:
        custom_trigger.FilePatternTrigger(pattern="landing/*.csv")
    assert "landing/*.csv" in str(raised.value), (
        f"FilePatternTrigger(pattern='landing/*.csv'): expected a ValueError naming the pattern (the triggerer "
        f"runs in another working directory), got {str(raised.value)!r}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_3.t3.fires_with_sorted_files")
async def test_both_events_carry_the_pattern_the_files_and_the_elapsed_time(custom_trigger, landing_zone):
    landing_zone.drop("a.csv")
    for min_files, status in ((1, "success"), (2, "timeout")):
        trigger = custom_trigger.FilePatternTrigger(pattern=landing_zone.pattern(), min_files=min_files, poll_interval=0.02,
                                                    timeout=0.2)
        payload = (await first_event(trigger, within=10)).payload
        shape = {"status": payload.get("status"), "pattern": payload.get("pattern"), "files": payload.get("files")}
        expected = {"status": status, "pattern": landing_zone.pattern(), "files": [str(landing_zone.root / "a.csv")]}
        assert shape == expected and isinstance(payload.get("elapsed"), float | int) and payload["elapsed"] >= 0, (
            f"one file, min_files={min_files}: expected {expected} and elapsed seconds, got {payload!r}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_3.t3.fires_with_sorted_files")
async def test_fires_with_the_sorted_files_once_enough_match(custom_trigger, landing_zone):
    for name in ("c.csv", "a.csv", "notes.txt"):
        landing_zone.drop(name)
    trigger = custom_trigger.FilePatternTrigger(pattern=landing_zone.pattern(), min_files=3, poll_interval=0.02, timeout=10)
    task = asyncio.create_task(first_event(trigger, within=10))
    await asyncio.wait([task], timeout=0.15)  # several polls with 2 of 3 files
    if task.done():
        raise AssertionError(f"with 2 of min_files=3 files: expected no event yet, got {task.result().payload!r}")
    landing_zone.drop("b.csv")
    payload = (await task).payload
    expected = [str(landing_zone.root / n) for n in ("a.csv", "b.csv", "c.csv")]
    assert payload.get("status") == "success", f"3 of 3 files: expected status 'success', got {payload!r}"
    assert payload.get("files") == expected, f"event files: expected the sorted list {expected!r}, got {payload.get('files')!r}"
    # Directory order is the file system's (hash order here): with 30 files it is never sorted by chance.
    names = [f"part-{(i * 7919) % 1000:03d}.csv" for i in range(30)]
    for name in names:
        landing_zone.drop(name, rows=1)
    trigger = custom_trigger.FilePatternTrigger(pattern=landing_zone.pattern("part-*.csv"), min_files=30, poll_interval=0.02,
                                                timeout=10)
    files = (await first_event(trigger, within=10)).payload.get("files")
    expected = sorted(str(landing_zone.root / n) for n in names)
    assert files == expected, f"30 part-*.csv files: expected them sorted by path, got {files!r}"


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_3.t3.fires_with_sorted_files")
async def test_without_a_timeout_it_waits_until_the_files_come(custom_trigger, landing_zone):
    trigger = custom_trigger.FilePatternTrigger(pattern=landing_zone.pattern(), min_files=1, poll_interval=0.02)
    task = asyncio.create_task(first_event(trigger, within=10))
    await asyncio.wait([task], timeout=0.15)  # several polls with no file
    if task.done():
        outcome = task.exception() or task.result().payload
        raise AssertionError(f"no timeout and no file yet: expected no event, got {outcome!r}")
    landing_zone.drop("late.csv")
    payload = (await task).payload
    expected = [str(landing_zone.root / "late.csv")]
    assert payload.get("status") == "success" and payload.get("files") == expected, (
        f"no timeout, then late.csv lands: expected success with {expected!r}, got {payload!r}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_3.t3.times_out")
async def test_the_timeout_is_kept_when_the_poll_interval_is_longer(custom_trigger, landing_zone):
    trigger = custom_trigger.FilePatternTrigger(pattern=landing_zone.pattern(), min_files=1, poll_interval=60, timeout=0.3)
    # Within 20 s even on a loaded machine; sleeping a whole poll interval first would take 60 s.
    events = await collect_events(trigger, within=20)
    assert [e.payload.get("status") for e in events] == ["timeout"], (
        f"run() with timeout=0.3 and poll_interval=60: expected one timeout event within 20 s (the wait before "
        f"the next check is cut to the deadline), got {events!r}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_3.t3.times_out")
async def test_times_out_and_yields_once(custom_trigger, landing_zone):
    landing_zone.drop("only.csv")
    trigger = custom_trigger.FilePatternTrigger(pattern=landing_zone.pattern(), min_files=2, poll_interval=0.05, timeout=0.3)
    events = await collect_events(trigger, within=5)
    assert len(events) == 1, f"run() with timeout=0.3 and too few files: expected one event, got {events!r}"
    payload = events[0].payload
    assert payload.get("status") == "timeout", f"expected status 'timeout', got {payload!r}"


@pytest.mark.criterion("ex11_3.t3.non_blocking")
def test_globbing_does_not_block_the_event_loop(custom_trigger, landing_zone, monkeypatch):
    landing_zone.drop("a.csv")
    trigger_os = subject_module("os")  # the one the trigger lists directories with
    # Storage where a directory listing takes 0.25 s.
    monkeypatch.setattr(trigger_os, "scandir", patches.slowed(trigger_os.scandir, 0.25))
    monkeypatch.setattr(trigger_os, "listdir", patches.slowed(trigger_os.listdir, 0.25))
    trigger = custom_trigger.FilePatternTrigger(pattern=landing_zone.pattern(), min_files=2, poll_interval=0.05, timeout=0.8)
    # A listing on the loop holds it for the whole 0.25 s; 0.2 s leaves a loaded machine its pauses.
    events, slow = events_in_debug_loop(trigger, within=10, slow_callback=0.2)
    assert not slow, f"run() listed the directory on the event loop (slow storage, asyncio debug): {slow[:3]}"
    assert len(events) == 1 and events[0].payload.get("status") == "timeout", f"expected one timeout event, got {events!r}"


@pytest.mark.criterion("ex11_3.t3.non_blocking")
def test_waiting_between_looks_does_not_block_the_event_loop(custom_trigger, landing_zone):
    trigger = custom_trigger.FilePatternTrigger(pattern=landing_zone.pattern(), min_files=1, poll_interval=1.0, timeout=2.5)
    # A time.sleep(1.0) on the loop shows as one callback of 1 s; 0.5 s leaves a loaded machine its pauses.
    events, slow = events_in_debug_loop(trigger, within=10, slow_callback=0.5)
    assert not slow, f"run() waited between looks on the event loop (asyncio debug): {slow[:3]}"
    assert len(events) == 1 and events[0].payload.get("status") == "timeout", f"expected one timeout event, got {events!r}"


@pytest.mark.criterion("ex11_3.t3.sensor_defers")
def test_sensor_returns_at_once_when_the_files_are_there(custom_trigger, landing_zone):
    landing_zone.drop("a.csv")
    landing_zone.drop("b.csv")
    sensor = custom_trigger.FilePatternSensor(task_id="wait_for_files", pattern=landing_zone.pattern(), min_files=2,
                                              poke_interval=0.05, timeout=10)
    run = drive_deferral(sensor)
    expected = [str(landing_zone.root / n) for n in ("a.csv", "b.csv")]
    assert (run.deferred, run.result) == (False, expected), (
        f"files already there: expected no deferral and {expected!r}, got deferred={run.deferred}, {run.result!r}"
    )


@pytest.mark.criterion("ex11_3.t3.sensor_defers")
def test_sensor_defers_to_the_trigger_and_returns_the_files(custom_trigger, landing_zone, run_started):
    landing_zone.drop("a.csv")
    sensor = custom_trigger.FilePatternSensor(task_id="wait_for_files", pattern=landing_zone.pattern(), min_files=3,
                                              poke_interval=0.05, timeout=30)
    with pytest.raises(TaskDeferred) as deferral:
        call_execute(sensor)
    deferred = deferral.value
    assert isinstance(deferred.trigger, custom_trigger.FilePatternTrigger), (
        f"expected a FilePatternTrigger, got {deferred.trigger!r}")
    _, kwargs = deferred.trigger.serialize()
    assert (kwargs["pattern"], kwargs["min_files"], kwargs["poll_interval"]) == (landing_zone.pattern(), 3, 0.05), (
        f"the trigger must carry pattern, min_files and poke_interval as poll_interval, got {kwargs!r}"
    )
    assert deferred.timeout is not None and deferred.timeout >= timedelta(seconds=30), (
        f"defer(timeout=...) must bound the deferral by the sensor's timeout (30 s), got {deferred.timeout}"
    )
    started = run_started(custom_trigger.FilePatternTrigger)
    landing_zone.drop_when(started, ["c.csv", "b.csv"])
    run = drive_deferral(sensor)
    expected = [str(landing_zone.root / n) for n in ("a.csv", "b.csv", "c.csv")]
    assert run.deferred and run.result == expected, (
        f"files landing while deferred: expected the resumed sensor to return {expected!r}, got {run.result!r}"
    )


@pytest.mark.criterion("ex11_3.t3.sensor_defers")
def test_the_resumed_sensor_returns_the_files_of_the_event(custom_trigger, landing_zone):
    sensor = custom_trigger.FilePatternSensor(task_id="wait_for_files", pattern=landing_zone.pattern(), min_files=2,
                                              poke_interval=0.05, timeout=10)
    seen = [str(landing_zone.root / n) for n in ("a.csv", "b.csv")]  # what the trigger saw; since moved on
    landing_zone.drop("c.csv")
    event = {"status": "success", "pattern": sensor.pattern, "files": seen, "elapsed": 1.0}
    result = sensor.execute_complete(make_context(sensor), event=event)
    assert result == seen, (
        f"execute_complete(event={event!r}) on a folder that now holds only c.csv: expected the event's files "
        f"{seen!r} (what fired the trigger), got {result!r}")


@pytest.mark.criterion("ex11_3.t3.times_out")
def test_sensor_times_out_with_a_sensor_timeout(custom_trigger, landing_zone):
    sensor = custom_trigger.FilePatternSensor(task_id="wait_for_files", pattern=landing_zone.pattern(), min_files=1,
                                              poke_interval=0.05, timeout=0.3)
    with pytest.raises((AirflowSensorTimeout, TaskDeferralTimeout)):
        drive_deferral(sensor, max_wait=10)


@pytest.mark.criterion("ex11_3.t3.times_out")
def test_the_sensors_errors_name_the_pattern_and_unknown_events_fail(custom_trigger, landing_zone):
    landing_zone.drop("only.csv")
    sensor = custom_trigger.FilePatternSensor(task_id="wait_for_files", pattern=landing_zone.pattern(), min_files=2,
                                              poke_interval=0.05, timeout=0.3)
    context = make_context(sensor)
    event = {"status": "timeout", "pattern": sensor.pattern, "files": [str(landing_zone.root / "only.csv")],
             "elapsed": 0.3}
    with pytest.raises(AirflowSensorTimeout) as raised:
        sensor.execute_complete(context, event=event)
    assert sensor.pattern in str(raised.value), (
        f"execute_complete(event={event!r}): expected an AirflowSensorTimeout naming the pattern, got "
        f"{str(raised.value)!r}")
    for event in ({"status": "surprise"}, "not a dict"):
        with pytest.raises(AirflowException) as raised:
            sensor.execute_complete(context, event=event)
        assert not isinstance(raised.value, AirflowSensorTimeout), (
            f"execute_complete(event={event!r}), an event it does not know: expected AirflowException, got "
            f"{type(raised.value).__name__}")
        shown = "surprise" if isinstance(event, dict) else event
        assert shown in str(raised.value), (
            f"execute_complete(event={event!r}), an event it does not know: expected the error to show the "
            f"event, got {str(raised.value)!r}")


@pytest.mark.criterion("ex11_3.t3.sensor_defers")
def test_sensor_in_poke_mode_without_deferral(custom_trigger, landing_zone):
    landing_zone.drop("a.csv")
    sensor = custom_trigger.FilePatternSensor(task_id="wait_for_files", pattern=landing_zone.pattern(), min_files=1,
                                              poke_interval=0.05, timeout=5, deferrable=False)
    try:
        result = call_execute(sensor)
    except TaskDeferred:
        pytest.fail("deferrable=False: the sensor deferred; it must poke in the worker")
    assert result == [str(landing_zone.root / "a.csv")], f"deferrable=False with a.csv there: got {result!r}"


@pytest.mark.integration
@pytest.mark.criterion("ex11_3.t3.dag_runs")
def test_file_pattern_dag_succeeds(custom_trigger, run_dag, landing_zone, monkeypatch, run_started):
    landing_zone.drop("2025-01-01.csv")
    started = run_started(custom_trigger.FilePatternTrigger)  # dag.test() runs the trigger where the learner's code runs
    env = {"WORKBOOK_LANDING_DIR": str(landing_zone.root), "WORKBOOK_MIN_FILES": "3", "WORKBOOK_POLL_INTERVAL": "0.05"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sensor = load_dag("ex11_3_file_pattern").get_task("wait_for_files")
    # Checked before the run: a sensor looking elsewhere would wait out its timeout under dag.test().
    assert str(getattr(sensor, "pattern", "")).startswith(str(landing_zone.root)), (
        f"ex11_3_file_pattern with WORKBOOK_LANDING_DIR={landing_zone.root}: expected its sensor to wait for files "
        f"there, its pattern is {getattr(sensor, 'pattern', None)!r}")
    # A sensor that never defers still gets its files after 20 s, and fails on `started` below, not on a timeout.
    landing_zone.drop_when(started, ["2025-01-02.csv", "2025-01-03.csv"], or_after=20)
    result = run_dag("ex11_3_file_pattern", env=env)
    result.assert_success()
    assert started.is_set(), "the sensor never deferred to FilePatternTrigger (2 of 3 files were missing)"
    rows = result.xcoms.get("count_rows")
    expected = {"2025-01-01.csv": 3, "2025-01-02.csv": 3, "2025-01-03.csv": 3}
    assert rows == expected, f"count_rows XCom: expected {expected!r}, got {rows!r}"


@pytest.mark.criterion("ex11_3.t3.sensor_defers")
def test_sensor_without_deferral_also_works_in_reschedule_mode(custom_trigger, landing_zone):
    task = RescheduledTask(lambda: custom_trigger.FilePatternSensor(
        task_id="wait_for_files", pattern=landing_zone.pattern(), min_files=1, poke_interval=30, timeout=600,
        deferrable=False, mode="reschedule"))
    first = task.execute()
    assert isinstance(first, AirflowRescheduleException), (
        f"deferrable=False, mode='reschedule', no file yet: expected execute() to ask for a reschedule "
        f"(AirflowRescheduleException, as a classic sensor does), got {first!r}"
    )
    landing_zone.drop("a.csv")
    result = task.execute()
    assert result == [str(landing_zone.root / "a.csv")], (
        f"the rescheduled poke (a new instance) with a.csv there: expected the files, got {result!r}"
    )
