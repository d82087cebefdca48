"""Task 4: AdaptiveFileSensor: the seed's adaptive rule, a history that outlives the run, the real wait."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from airflow.sdk import PokeReturnValue, timezone
from airflow.sdk.exceptions import AirflowRescheduleException

from tests.harness import make_context
from tests.harness.context import call_execute
from tests.harness.remote import subject_module


@pytest.fixture
def drop(tmp_path):
    folder = tmp_path / "partner-drop"
    folder.mkdir()
    return folder / "daily_export.csv"


@pytest.fixture
def history(tmp_path):
    return tmp_path / "state" / "adaptive_history.json"


def make_sensor(custom_sensors, filepath, history_path, **kwargs):
    kwargs.setdefault("initial_interval", 60)
    kwargs.setdefault("min_interval", 30)
    kwargs.setdefault("max_interval", 300)
    return custom_sensors.AdaptiveFileSensor(filepath=str(filepath), history_path=str(history_path),
                                             task_id="wait_for_export", **kwargs)


def record(sensor, successes: int, failures: int) -> None:
    for _ in range(failures):
        sensor.record_attempt(False, 0.01)
    for _ in range(successes):
        sensor.record_attempt(True, 0.01)


def is_done(result) -> bool:
    return bool(result.is_done if isinstance(result, PokeReturnValue) else result)


@pytest.mark.criterion("ex04.t4.adaptive_rule")
@pytest.mark.parametrize(
    ("successes", "failures", "expected", "why"),
    [
        (9, 1, 90, "90 % success: 60 s + 50 %"),
        (2, 8, 42, "20 % success: 60 s - 30 %"),
        (5, 5, 60, "50 % success: unchanged"),
        (8, 2, 60, "exactly 80 % is not above 80 %: unchanged"),
        (3, 7, 60, "exactly 30 % is not below 30 %: unchanged"),
    ],
)
def test_the_seed_rule(custom_sensors, drop, history, successes, failures, expected, why):
    sensor = make_sensor(custom_sensors, drop, history)
    record(sensor, successes, failures)
    got = sensor.calculate_adaptive_interval()
    assert got == pytest.approx(expected, abs=1), (
        f"calculate_adaptive_interval() after {successes} successes and {failures} failures ({why}): "
        f"expected {expected}, got {got}"
    )


@pytest.mark.criterion("ex04.t4.adaptive_rule")
def test_clamped_to_min_and_max(custom_sensors, drop, history):
    fast = make_sensor(custom_sensors, drop, history, initial_interval=250)
    record(fast, 10, 0)
    assert fast.calculate_adaptive_interval() == 300, "250 s + 50 % with max_interval=300: expected 300"
    slow = make_sensor(custom_sensors, drop.with_name("other.csv"), history, initial_interval=35)
    record(slow, 0, 10)
    assert slow.calculate_adaptive_interval() == 30, "35 s - 30 % with min_interval=30: expected 30"


@pytest.mark.criterion("ex04.t4.adaptive_rule")
@pytest.mark.parametrize(("successes", "expected"), [(10, 67.5), (0, 31.5)])
def test_the_rule_is_exact_not_rounded_to_seconds(custom_sensors, drop, history, successes, expected):
    sensor = make_sensor(custom_sensors, drop, history, initial_interval=45)
    record(sensor, successes, 10 - successes)
    got = sensor.calculate_adaptive_interval()
    assert got == pytest.approx(expected, abs=1e-6), (
        f"calculate_adaptive_interval() from 45 s after {successes} of 10 attempts found: expected {expected} s "
        f"(the rule's +50 % or -30 %, seconds as a float), got {got}"
    )


@pytest.mark.criterion("ex04.t4.adaptive_rule")
@pytest.mark.parametrize(("kwargs", "named"), [
    ({"min_interval": 0, "max_interval": 300}, "min_interval"),
    ({"initial_interval": 10, "min_interval": 10, "max_interval": 5}, "max_interval"),
    ({"history_size": 0}, "history_size"),
])
def test_impossible_settings_are_refused(custom_sensors, drop, history, kwargs, named):
    with pytest.raises(ValueError, match=named):
        custom_sensors.AdaptiveFileSensor(filepath=str(drop), history_path=str(history), task_id="wait_for_export",
                                          **kwargs)


@pytest.mark.criterion("ex04.t4.adaptive_rule")
def test_settings_at_their_limits_are_accepted(custom_sensors, drop, history):
    try:
        custom_sensors.AdaptiveFileSensor(filepath=str(drop), history_path=str(history), task_id="wait_for_export",
                                          initial_interval=1, min_interval=1, max_interval=1, history_size=1)
    except ValueError as exc:
        pytest.fail(f"AdaptiveFileSensor(min_interval=1, max_interval=1, history_size=1) raised "
                    f"ValueError({exc}); expected it accepted")


@pytest.mark.criterion("ex04.t4.adaptive_rule")
def test_the_rule_starts_from_the_current_interval(custom_sensors, drop, history):
    sensor = make_sensor(custom_sensors, drop, history, max_interval=1000, history_size=20)
    record(sensor, successes=20, failures=0)
    got = []
    for _ in range(3):  # each poke misses the file: 95 %, 90 %, 85 % success, all above 80 %
        sensor.poke(make_context(sensor))
        got.append(sensor.metrics().get("current_interval"))
    assert got == [pytest.approx(90), pytest.approx(135), pytest.approx(202.5)], (
        f"three pokes of a missing file, initial 60 s, success rate above 80 % each time: expected metrics()'s "
        f"current_interval 90, 135, 202.5 (each result becomes the current interval the next starts from), got {got}")


@pytest.mark.criterion("ex04.t4.adaptive_rule")
def test_a_sensor_with_a_smaller_history_size_reads_only_its_last_attempts(custom_sensors, drop, history):
    writer = make_sensor(custom_sensors, drop, history, history_size=20)
    record(writer, successes=5, failures=15)  # 25 % over 20 attempts, 100 % over the last 5
    reader = make_sensor(custom_sensors, drop, history, history_size=5)
    got = reader.calculate_adaptive_interval()
    assert got == pytest.approx(90, abs=1), (
        f"history_size=5 on a history of 15 failures then 5 successes written with history_size=20: expected 90 "
        f"(the rule over the last 5 attempts only), got {got}")


@pytest.mark.criterion("ex04.t4.adaptive_rule")
def test_only_the_last_history_size_attempts_count(custom_sensors, drop, history):
    sensor = make_sensor(custom_sensors, drop, history, history_size=5)
    record(sensor, successes=5, failures=20)  # 20 old failures, then 5 successes
    got = sensor.calculate_adaptive_interval()
    assert got == pytest.approx(90, abs=1), (
        f"history_size=5, last 5 attempts all successes after 20 failures: expected 90 (+50 %), got {got}"
    )


@pytest.mark.criterion("ex04.t4.history_persists")
def test_history_survives_a_new_instance_keyed_by_path(custom_sensors, drop, history):
    first = make_sensor(custom_sensors, drop, history, history_size=5)
    record(first, successes=5, failures=2)
    again = make_sensor(custom_sensors, drop, history, history_size=5)  # the next DAG run
    other = make_sensor(custom_sensors, drop.with_name("other.csv"), history, history_size=5)
    assert again.calculate_adaptive_interval() == pytest.approx(90, abs=1), (
        "a new instance watching the same path, whose last 5 attempts were successes: expected 90"
    )
    assert other.calculate_adaptive_interval() == 60, "an instance watching another path: expected its own (empty) history"
    data = json.loads(history.read_text())
    assert isinstance(data, dict) and str(drop) in data, (
        f"the history file must be keyed by the watched path {str(drop)!r}; got {type(data).__name__} "
        f"{list(data) if isinstance(data, dict) else data!r:.200}")
    kept = make_sensor(custom_sensors, drop, history, history_size=5).history()
    assert isinstance(kept, list) and len(kept) == 5, (
        f"history() of a new instance, history_size=5 after 7 attempts: expected the last 5 attempts, got "
        f"{type(kept).__name__} {kept!r:.300}")


@pytest.mark.criterion("ex04.t4.history_persists")
def test_poke_records_each_attempt(custom_sensors, drop, history):
    sensor = make_sensor(custom_sensors, drop, history)
    sensor.poke(make_context(sensor))
    drop.write_text("id,value\n")
    result = sensor.poke(make_context(sensor))
    assert is_done(result), f"poke() after the file arrived: expected done, got {result!r}"
    attempts = make_sensor(custom_sensors, drop, history).history()
    assert [a.get("success") if isinstance(a, dict) else a for a in attempts] == [False, True], (
        f"history() of a new instance after two pokes (missing, then present): expected attempts with success "
        f"False, then True, got {attempts!r:.300}"
    )
    # Each duration is that poke's own check of a local file: far less than a minute, never negative.
    assert all(isinstance(a.get("duration"), float | int) and 0 <= a["duration"] < 60 for a in attempts), (
        f"two pokes of a local file: expected each attempt's duration (seconds the check took) between 0 and "
        f"60, got {attempts}")


@pytest.mark.criterion("ex04.t4.interval_is_waited")
@pytest.mark.parametrize("exponential_backoff", [False, True])
def test_poke_mode_sleeps_the_adaptive_interval(custom_sensors, drop, history, monkeypatch, exponential_backoff):
    sensor_module = subject_module("airflow.sdk.bases.sensor")

    # With exponential_backoff Airflow computes its own wait from poke_interval unless the sensor answers
    # _get_next_poke_interval itself (the chapter's hint 2): the adaptive interval must still be the one waited.
    sensor = make_sensor(custom_sensors, drop, history, timeout=3600, exponential_backoff=exponential_backoff)
    record(sensor, successes=0, failures=10)  # 60 s - 30 % = 42 s
    slept: list[float] = []

    def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        drop.write_text("arrived\n")

    monkeypatch.setattr(sensor_module.time, "sleep", fake_sleep)
    call_execute(sensor)
    assert slept == [pytest.approx(42, abs=1)], (
        f"execute() in poke mode (exponential_backoff={exponential_backoff}), history 0 % success, initial 60 s: "
        f"expected Airflow to sleep 42 s once, slept {slept}"
    )


@pytest.mark.criterion("ex04.t4.interval_is_waited")
def test_reschedule_mode_reschedules_at_the_adaptive_interval(custom_sensors, drop, history):
    sensor = make_sensor(custom_sensors, drop, history, mode="reschedule", timeout=3600)
    record(sensor, successes=10, failures=0)  # 60 s + 50 % = 90 s
    before = timezone.utcnow()
    with pytest.raises(AirflowRescheduleException) as raised:
        call_execute(sensor)
    waited = raised.value.reschedule_date - before
    assert timedelta(seconds=88) <= waited <= timedelta(seconds=92), (
        f"execute() in reschedule mode, history mostly successes: expected a reschedule ~90 s later "
        f"(the adaptive interval), got {waited.total_seconds():.1f} s"
    )


@pytest.mark.criterion("ex04.t4.manual_override")
def test_override_interval_wins(custom_sensors, drop, history, monkeypatch):
    sensor_module = subject_module("airflow.sdk.bases.sensor")

    sensor = make_sensor(custom_sensors, drop, history, override_interval=5, timeout=3600)
    record(sensor, successes=10, failures=0)
    slept: list[float] = []
    monkeypatch.setattr(sensor_module.time, "sleep", lambda s: (slept.append(s), drop.write_text("x")))
    call_execute(sensor)
    assert slept == [5], f"execute() with override_interval=5: expected one sleep of 5 s, got {slept}"


@pytest.mark.criterion("ex04.t4.manual_override")
def test_override_from_the_run_conf(custom_sensors, drop, history):
    sensor = make_sensor(custom_sensors, drop, history, mode="reschedule", timeout=3600)
    record(sensor, successes=10, failures=0)
    context = make_context(sensor, conf={"poll_interval_override": 10})
    before = timezone.utcnow()
    with pytest.raises(AirflowRescheduleException) as raised:
        call_execute(sensor, context)
    waited = (raised.value.reschedule_date - before).total_seconds()
    assert 9 <= waited <= 12, (
        f"execute() with dag_run.conf poll_interval_override=10: expected a reschedule ~10 s later, got {waited:.1f} s"
    )


@pytest.mark.criterion("ex04.t4.manual_override")
@pytest.mark.parametrize(("override", "expected", "why"), [
    (0.5, 0.5, "a positive override wins, however short"),
    (0, 90, "an override of 0 is not a positive number: ignored, the adaptive interval applies"),
    (-5, 90, "a negative override is ignored"),
    ("soon", 90, "an override that is not a number is ignored"),
])
def test_only_a_positive_number_overrides(custom_sensors, drop, history, sensor_log, override, expected, why):
    sensor = make_sensor(custom_sensors, drop, history, mode="reschedule", timeout=3600)
    record(sensor, successes=10, failures=0)  # the next poke learns 60 s -> 90 s
    context = make_context(sensor, conf={"poll_interval_override": override})
    before = timezone.utcnow()
    with pytest.raises(AirflowRescheduleException) as raised:
        call_execute(sensor, context)
    waited = (raised.value.reschedule_date - before).total_seconds()
    assert expected - 0.2 <= waited <= expected + 2, (
        f"execute() with dag_run.conf poll_interval_override={override!r} ({why}): expected a reschedule "
        f"~{expected} s later, got {waited:.1f} s")
    if expected != override:
        assert any(str(override) in m for m in sensor_log.at_least("warning")), (
            f"execute() with dag_run.conf poll_interval_override={override!r}: expected a warning naming the "
            f"ignored value, got {sensor_log.messages}"
        )


@pytest.mark.criterion("ex04.t4.history_persists")
def test_the_learned_interval_carries_over_to_the_next_poke_on_a_new_instance(custom_sensors, drop, history):
    first = make_sensor(custom_sensors, drop, history)
    for _ in range(10):
        first.record_attempt(True, 0.1)
    first.poke(make_context(first))  # 10 of 11 found: above 80 %, 60 s -> 90 s
    second = make_sensor(custom_sensors, drop, history)  # reschedule mode: the next poke is a new instance
    assert second.metrics()["current_interval"] == pytest.approx(90), (
        f"a new instance after a poke that learned 90 s (60 s, success rate above 80 %): expected metrics() "
        f"current_interval 90 (the result becomes the current interval), got {second.metrics()}"
    )
    second.poke(make_context(second))  # 10 of 12: still above 80 %, 90 s -> 135 s
    assert second.metrics()["current_interval"] == pytest.approx(135), (
        f"the next poke starts from the current 90 s: expected 135 s, got {second.metrics()}"
    )


@pytest.mark.criterion("ex04.t4.metrics")
def test_metrics_before_the_first_attempt(custom_sensors, drop, history):
    metrics = make_sensor(custom_sensors, drop, history).metrics()
    expected = {"attempts": 0, "success_rate": 0.0, "mean_duration": 0.0, "current_interval": 60.0}
    assert metrics == expected, f"metrics() with an empty history: expected {expected}, got {metrics}"


@pytest.mark.criterion("ex04.t4.metrics")
def test_metrics_report_the_learned_interval(custom_sensors, drop, history):
    sensor = make_sensor(custom_sensors, drop, history)
    record(sensor, successes=10, failures=0)
    sensor.poke(make_context(sensor))  # the file is missing: 10 of 11 found, above 80 %: 60 s + 50 %
    got = sensor.metrics().get("current_interval")
    assert got == pytest.approx(90), (
        f"metrics() after a poke that learned 90 s (initial 60 s): expected current_interval 90, got {got!r}")


@pytest.mark.criterion("ex04.t4.metrics")
def test_metrics(custom_sensors, drop, history):
    sensor = make_sensor(custom_sensors, drop, history)
    sensor.record_attempt(False, 0.2)
    sensor.record_attempt(False, 0.4)
    sensor.record_attempt(True, 0.6)
    metrics = sensor.metrics()
    assert metrics["attempts"] == 3 and metrics["success_rate"] == pytest.approx(1 / 3), (
        f"metrics() after 2 failures and 1 success: expected attempts 3, success_rate 1/3, got {metrics}"
    )
    assert metrics["mean_duration"] == pytest.approx(0.4), f"metrics(): expected mean_duration 0.4, got {metrics}"
    assert metrics["current_interval"] == 60, f"metrics(): expected current_interval 60, got {metrics}"
    drop.write_text("x")
    result = sensor.poke(make_context(sensor))
    assert isinstance(result, PokeReturnValue) and result.xcom_value["attempts"] == 4, (
        f"poke() when the file is there: expected PokeReturnValue with the metrics as XCom, got {result!r}"
    )
