"""Task 3: MultiSourceReadinessSensor and the three seed conditions against the ML data sources."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

from tests.harness import make_context
from tests.harness.reschedule import RescheduledTask
from tests.harness.time_travel import travel


class Switch:
    """A condition the test turns on and off; counts its calls."""

    def __init__(self, ready: bool = False) -> None:
        self.ready = ready
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.ready


def broken() -> bool:
    raise ConnectionError("catalog database unreachable")


def make_sensor(custom_sensors, conditions, **kwargs):
    return custom_sensors.MultiSourceReadinessSensor(conditions=conditions, task_id="wait_for_sources", **kwargs)


def poke(sensor):
    return sensor.poke(make_context(sensor))


def is_done(result) -> bool:
    return bool(result.is_done if isinstance(result, PokeReturnValue) else result)


@pytest.mark.criterion("ex04.t3.all_mode")
def test_all_mode_waits_for_every_condition(custom_sensors):
    a, b, c = Switch(), Switch(), Switch()
    sensor = make_sensor(custom_sensors, {"a": a, "b": b, "c": c}, require_all=True)
    seen = []
    for switch in (a, b, c):
        switch.ready = True
        seen.append(is_done(poke(sensor)))
    assert seen == [False, False, True], (
        f"poke() in all-mode as conditions became ready one by one: expected [False, False, True], got {seen}"
    )
    a.ready = False
    assert not is_done(poke(sensor)), "poke() in all-mode after condition 'a' went back to not ready: expected False"


@pytest.mark.criterion("ex04.t3.all_mode")
def test_all_mode_is_not_done_while_a_condition_errors(custom_sensors):
    sensor = make_sensor(custom_sensors, {"ready": Switch(True), "broken": broken}, require_all=True)
    result = poke(sensor)
    assert not is_done(result), (
        f"poke() in all-mode with one ready and one raising condition: expected not done (an error is not "
        f"ready), got {result!r}")


@pytest.mark.criterion("ex04.t3.all_mode")
def test_all_mode_checks_every_condition_on_every_poke(custom_sensors):
    a, b, c = Switch(), Switch(True), Switch()
    sensor = make_sensor(custom_sensors, {"a": a, "b": b, "c": c}, require_all=True)
    for _ in range(2):
        poke(sensor)
    calls = {"a": a.calls, "b": b.calls, "c": c.calls}
    assert calls == {"a": 2, "b": 2, "c": 2}, (
        f"two pokes in all-mode with 'a' not ready: expected every condition checked on every poke (2 calls "
        f"each), got {calls}")


@pytest.mark.criterion("ex04.t3.any_mode")
def test_any_mode_is_done_when_one_is_ready_while_another_errors(custom_sensors):
    sensor = make_sensor(custom_sensors, {"broken": broken, "ready": Switch(True)}, require_all=False)
    result = poke(sensor)
    assert is_done(result), (
        f"poke() in any-mode with one raising and one ready condition: expected done (one is ready), got {result!r}")


@pytest.mark.criterion("ex04.t3.any_mode")
def test_any_mode_needs_one(custom_sensors):
    a, b = Switch(), Switch()
    sensor = make_sensor(custom_sensors, {"a": a, "b": b}, require_all=False)
    assert not is_done(poke(sensor)), "poke() in any-mode with no condition ready: expected False"
    b.ready = True
    assert is_done(poke(sensor)), "poke() in any-mode with condition 'b' ready: expected True"


@pytest.mark.criterion("ex04.t3.any_mode")
def test_any_mode_is_not_fooled_by_an_error(custom_sensors):
    sensor = make_sensor(custom_sensors, {"broken": broken, "off": Switch()}, require_all=False)
    assert not is_done(poke(sensor)), "poke() in any-mode with one raising and one unready condition: expected False"


@pytest.mark.criterion("ex04.t3.condition_status")
def test_status_per_condition_is_returned_as_xcom(custom_sensors):
    a, b = Switch(True), Switch()
    sensor = make_sensor(custom_sensors, {"a": a, "b": b})
    poke(sensor)
    a_first_seen = (sensor.condition_status.get("a") or {}).get("first_ready_at")
    b.ready = True
    result = poke(sensor)
    assert isinstance(result, PokeReturnValue) and result.is_done, (
        f"poke() in all-mode with both conditions ready: expected PokeReturnValue(is_done=True, ...), got {result!r}"
    )
    status = result.xcom_value
    assert set(status) == {"a", "b"} and all(s["status"] == "ready" for s in status.values()), (
        f"poke(): expected XCom {{condition: {{'status': 'ready', ...}}}} for a and b, got {status!r}"
    )
    first_a = datetime.fromisoformat(status["a"]["first_ready_at"])
    first_b = datetime.fromisoformat(status["b"]["first_ready_at"])
    assert first_a <= first_b, f"'a' was ready a poke before 'b': expected first_ready_at a <= b, got {status!r}"
    assert status["a"]["checks"] == 2, f"'a' was checked on 2 pokes: expected checks == 2, got {status['a']!r}"
    assert status["a"]["first_ready_at"] == a_first_seen, (
        f"'a' was ready on both pokes: expected first_ready_at to stay the first poke's {a_first_seen!r}, got "
        f"{status['a']['first_ready_at']!r}")


@pytest.mark.criterion("ex04.t3.condition_status")
def test_each_poke_logs_every_condition(custom_sensors, sensor_log):
    sensor = make_sensor(custom_sensors, {"behavior_logs": Switch(True), "catalog": Switch(), "inventory": broken})
    poke(sensor)
    text = sensor_log.text
    for name, status in (("behavior_logs", "ready"), ("catalog", "waiting"), ("inventory", "error")):
        assert any(name in line and status in line for line in sensor_log.messages), (
            f"poke(): expected a log line for condition {name!r} with status {status!r}, got {text!r}"
        )


@pytest.mark.criterion("ex04.t3.raising_condition")
def test_a_raising_condition_counts_as_not_ready(custom_sensors, sensor_log):
    ok = Switch(True)
    sensor = make_sensor(custom_sensors, {"ok": ok, "broken": broken})
    try:
        result = poke(sensor)
    except Exception as exc:
        pytest.fail(f"poke() with a condition that raises ConnectionError raised {type(exc).__name__}: {exc}; "
                    f"expected not ready")
    assert not is_done(result), f"poke() in all-mode with a raising condition: expected not done, got {result!r}"
    status = sensor.condition_status["broken"]
    assert status["status"] == "error" and "catalog database unreachable" in (status["last_error"] or ""), (
        f"condition_status['broken'] after it raised: expected status 'error' and the last error, got {status!r}"
    )
    assert any("catalog database unreachable" in m for m in sensor_log.at_least("warning")), (
        f"poke(): expected the condition's error logged as a warning, got {sensor_log.messages}"
    )


@pytest.mark.criterion("ex04.t3.condition_timeouts")
def test_a_timeout_for_an_unknown_condition_is_refused(custom_sensors):
    with pytest.raises(ValueError) as raised:
        make_sensor(custom_sensors, {"catalog": Switch()}, condition_timeouts={"catalgo": 60})
    assert "catalgo" in str(raised.value), (
        f"condition_timeouts={{'catalgo': 60}} for conditions {{'catalog'}}: expected a ValueError naming 'catalgo' "
        f"(a typo would otherwise never time out), got {raised.value!r}"
    )
    with pytest.raises(ValueError):
        make_sensor(custom_sensors, {})


@pytest.mark.criterion("ex04.t3.condition_timeouts")
def test_all_mode_fails_naming_the_late_condition(custom_sensors, monkeypatch):
    sensor = make_sensor(custom_sensors, {"fast": Switch(True), "late_feed": Switch()},
                         condition_timeouts={"late_feed": 60})
    assert not is_done(poke(sensor)), "first poke(), 'late_feed' within its timeout: expected not done"
    _travel(custom_sensors, monkeypatch, seconds=61)
    with pytest.raises(AirflowException) as raised:
        poke(sensor)
    assert isinstance(raised.value, AirflowSensorTimeout) and "late_feed" in str(raised.value), (
        f"poke() 61 s in, 'late_feed' has a 60 s timeout: expected AirflowSensorTimeout naming it (so soft_fail "
        f"applies), got {type(raised.value).__name__}: {raised.value}"
    )


@pytest.mark.criterion("ex04.t3.condition_timeouts")
def test_a_condition_ready_past_its_deadline_is_ready_not_timed_out(custom_sensors, monkeypatch):
    late_feed = Switch()
    sensor = make_sensor(custom_sensors, {"fast": Switch(True), "late_feed": late_feed},
                         condition_timeouts={"late_feed": 60})
    assert not is_done(poke(sensor)), "first poke(), 'late_feed' not ready within its timeout: expected not done"
    _travel(custom_sensors, monkeypatch, seconds=61)
    late_feed.ready = True
    try:
        result = poke(sensor)
    except AirflowException as exc:
        pytest.fail(f"poke() 61 s in, 'late_feed' (60 s timeout) ready now: expected done (a condition times out "
                    f"only when it is not ready this poke), got {type(exc).__name__}: {exc}")
    assert is_done(result), f"poke() 61 s in with both conditions ready: expected done, got {result!r}"


@pytest.mark.criterion("ex04.t3.condition_timeouts")
def test_any_mode_drops_a_late_condition_and_fails_when_all_are_out(custom_sensors, monkeypatch):
    slow, slower = Switch(), Switch()
    sensor = make_sensor(custom_sensors, {"slow": slow, "slower": slower}, require_all=False,
                         condition_timeouts={"slow": 60, "slower": 120})
    poke(sensor)
    _travel(custom_sensors, monkeypatch, seconds=61)
    assert not is_done(poke(sensor)), "poke() in any-mode, 'slow' timed out, 'slower' still in time: expected False"
    assert sensor.condition_status["slow"]["status"] == "timed_out", (
        f"condition_status['slow'] past its 60 s: expected 'timed_out', got {sensor.condition_status['slow']!r}"
    )
    calls = slow.calls
    slow.ready = True
    poke(sensor)
    assert slow.calls == calls, "poke() in any-mode: a timed-out condition must not be checked any more"
    _travel(custom_sensors, monkeypatch, seconds=121)
    with pytest.raises(AirflowException) as raised:
        poke(sensor)
    assert "slower" in str(raised.value), f"every condition timed out: expected a failure, got {raised.value!r}"


@pytest.mark.criterion("ex04.t3.condition_timeouts")
def test_in_reschedule_mode_a_condition_timeout_counts_from_the_first_poke(custom_sensors, monkeypatch):
    late_feed = Switch()
    task = RescheduledTask(lambda: make_sensor(custom_sensors, {"fast": Switch(True), "late_feed": late_feed},
                                               condition_timeouts={"late_feed": 60}, mode="reschedule"))
    assert not is_done(task.poke()), "first poke(), 'late_feed' within its timeout: expected not done"
    _travel(custom_sensors, monkeypatch, seconds=30)
    assert not is_done(task.poke()), "poke() on a new instance 30 s after the first poke: expected not done"
    _travel(custom_sensors, monkeypatch, seconds=31)  # 61 s after the first poke
    with pytest.raises(AirflowException) as raised:
        task.poke()
    assert "late_feed" in str(raised.value), (
        f"reschedule mode: poke() on a third instance 61 s after the first poke ('late_feed' has 60 s): expected "
        f"a failure naming it (the deadline counts from the first reschedule's date, not from this instance), "
        f"got {raised.value!r}"
    )


@pytest.mark.criterion("ex04.t3.seed_conditions")
def test_behavior_logs_fresh(custom_sensors, ml_data):
    check = custom_sensors.behavior_logs_fresh(ml_data.behavior_dir, max_age_minutes=60)
    assert check() is False, "behavior_logs_fresh() on an empty folder: expected False"
    ml_data.add_behavior_log(age_minutes=90)
    assert check() is False, "behavior_logs_fresh(max_age_minutes=60) with only a 90-minute-old log: expected False"
    ml_data.advance(20)  # the simulator drops a fresh log
    assert check() is True, "behavior_logs_fresh() after a fresh log appeared: expected True"
    missing = custom_sensors.behavior_logs_fresh(ml_data.root / "nowhere")
    assert missing() is False, "behavior_logs_fresh() on a folder that does not exist yet: expected False"


@pytest.mark.criterion("ex04.t3.seed_conditions")
def test_catalog_version_above(custom_sensors, ml_data):
    check = custom_sensors.catalog_version_above(ml_data.catalog_url, min_version=100)
    results = []
    for at in (0, 20, 30):  # versions 98, 100, 101
        ml_data.advance(at - ml_data.elapsed())
        results.append((ml_data.catalog_version, check()))
    assert results == [(98, False), (100, False), (101, True)], (
        f"catalog_version_above(min_version=100) as the version climbed: expected "
        f"[(98, False), (100, False), (101, True)], got {results}"
    )
    ml_data.catalog_failing = True
    with pytest.raises(Exception):  # noqa: B017 - the sensor turns any error into status "error"
        check()


@pytest.mark.criterion("ex04.t3.seed_conditions")
def test_seed_defaults_and_the_freshness_edge(custom_sensors, ml_data):
    fresh = custom_sensors.behavior_logs_fresh(ml_data.behavior_dir)  # max_age_minutes=60 by default
    ml_data.add_behavior_log(age_minutes=60.5)
    assert fresh() is False, "behavior_logs_fresh() (60 minutes by default) with a 60.5-minute-old log: expected False"
    ml_data.add_behavior_log(age_minutes=59.5)
    assert fresh() is True, "behavior_logs_fresh() (60 minutes by default) with a 59.5-minute-old log: expected True"
    above = custom_sensors.catalog_version_above(ml_data.catalog_url)  # min_version=100 by default
    results = []
    for at in (20, 30):  # versions 100, 101
        ml_data.advance(at - ml_data.elapsed())
        results.append((ml_data.catalog_version, above()))
    assert results == [(100, False), (101, True)], (
        f"catalog_version_above() (min_version=100 by default, ready above it): expected [(100, False), (101, True)], "
        f"got {results}"
    )


@pytest.mark.criterion("ex04.t3.seed_conditions")
def test_inventory_snapshot_today(custom_sensors, ml_data):
    check = custom_sensors.inventory_snapshot_today(ml_data.inventory_path)
    assert check() is False, "inventory_snapshot_today() before the snapshot exists: expected False"
    ml_data.write_inventory(datetime.now(UTC).date() - timedelta(days=1))
    assert check() is False, "inventory_snapshot_today() on yesterday's snapshot: expected False"
    ml_data.advance(40)
    assert check() is True, "inventory_snapshot_today() after today's snapshot appeared: expected True"


@pytest.mark.criterion("ex04.t3.seed_conditions")
def test_the_three_together(custom_sensors, ml_data):
    sensor = make_sensor(custom_sensors, {
        "behavior_logs": custom_sensors.behavior_logs_fresh(ml_data.behavior_dir),
        "catalog": custom_sensors.catalog_version_above(ml_data.catalog_url),
        "inventory": custom_sensors.inventory_snapshot_today(ml_data.inventory_path),
    })
    seen = []
    for at in (0, 20, 30, 40):
        ml_data.advance(at - ml_data.elapsed())
        result = poke(sensor)
        seen.append(is_done(result))
    assert seen == [False, False, False, True], (
        f"poke() at 0, 20, 30, 40 s as the feeds arrive (logs 20 s, catalog > 100 at 30 s, inventory 40 s): "
        f"expected [False, False, False, True], got {seen}"
    )


@pytest.mark.criterion("ex04.t3.condition_status")
def test_a_condition_not_ready_yet_is_waiting(custom_sensors):
    sensor = make_sensor(custom_sensors, {"ready": Switch(True), "not_yet": Switch()})
    poke(sensor)
    status = sensor.condition_status
    assert status["not_yet"]["status"] == "waiting" and status["not_yet"]["checks"] == 1, (
        f"condition_status after one poke of a condition that answered False: expected status 'waiting' "
        f"with checks 1, got {status['not_yet']!r}"
    )
    assert status["not_yet"]["first_ready_at"] is None, (
        f"condition_status of a condition never ready: expected first_ready_at None, got {status['not_yet']!r}"
    )


@pytest.mark.criterion("ex04.t3.raising_condition")
def test_a_raising_condition_is_never_ready(custom_sensors, sensor_log, monkeypatch):
    sensor = make_sensor(custom_sensors, {"ok": Switch(True), "broken": broken}, require_all=False)
    result = poke(sensor)
    assert isinstance(result, PokeReturnValue) and result.is_done, f"any-mode with one ready: got {result!r}"
    broken_status = result.xcom_value["broken"]
    assert broken_status["status"] == "error" and broken_status["first_ready_at"] is None, (
        f"the XCom's status of a condition that raised: expected status 'error' and first_ready_at None "
        f"(it was never ready), got {broken_status!r}"
    )
    assert any("broken" in m for m in sensor_log.at_least("warning")), (
        f"poke() whose condition 'broken' raised: expected a warning naming it, got {sensor_log.messages}"
    )
    sensor = make_sensor(custom_sensors, {"ok": Switch(True), "broken": broken}, condition_timeouts={"broken": 60})
    poke(sensor)
    _travel(custom_sensors, monkeypatch, seconds=61)
    with pytest.raises(AirflowException) as raised:
        poke(sensor)
    assert "broken" in str(raised.value), (
        f"all-mode, 'broken' raising for 61 s with a 60 s timeout: expected the sensor to fail naming it (an "
        f"error is not ready), got {raised.value!r}"
    )


@pytest.mark.criterion("ex04.t3.condition_timeouts")
def test_no_conditions_is_refused_saying_so(custom_sensors):
    with pytest.raises(ValueError, match="condition"):
        make_sensor(custom_sensors, {})


def _travel(custom_sensors, monkeypatch, seconds: float) -> None:
    """Move the sensor's notion of now forward (it reads airflow.sdk.timezone.utcnow or time)."""
    travel(monkeypatch, seconds)
