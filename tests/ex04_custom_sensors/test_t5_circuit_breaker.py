"""Task 5: CircuitBreakerSensor: open, skip, half-open, close, and a state that survives reschedule mode.

In reschedule mode every poke runs on a new operator instance, so most tests here build a fresh sensor
for every poke, with the same dag, task and run (the same logical date).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
import requests
from airflow.sdk import PokeReturnValue

from tests.ex04_custom_sensors.helpers import json_files
from tests.harness import make_context
from tests.harness.reschedule import RescheduledTask

RUN_DATE = datetime(2024, 1, 1, tzinfo=UTC)


class FlakyCheck:
    """Raises while `failing`, otherwise answers `ready`; counts calls."""

    def __init__(self) -> None:
        self.failing = True
        self.ready = False
        self.calls = 0

    def __call__(self) -> bool:
        self.calls += 1
        if self.failing:
            raise ConnectionError("upstream refused the connection")
        return self.ready


class Breaker:
    """Pokes through a new sensor instance each time (reschedule mode), all in the same task run."""

    def __init__(self, custom_sensors, sim_clock, state_dir, check, **kwargs) -> None:
        self.make = lambda: custom_sensors.CircuitBreakerSensor(
            task_id="guarded_check", condition=check, state_dir=str(state_dir), clock=sim_clock.now,
            mode="reschedule", **kwargs,
        )

    def poke(self):
        sensor = self.make()
        return sensor.poke(make_context(sensor, logical_date=RUN_DATE))


def is_done(result) -> bool:
    return bool(result.is_done if isinstance(result, PokeReturnValue) else result)


def poke_safely(breaker: Breaker, what: str):
    try:
        return breaker.poke()
    except Exception as exc:
        pytest.fail(f"poke() {what} raised {type(exc).__name__}: {exc}; expected False (errors are logged, "
                    f"the breaker counts them)")


@pytest.mark.criterion("ex04.t5.opens_after_threshold")
def test_opens_after_threshold_consecutive_errors(custom_sensors, sim_clock, state_dir, sensor_log):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=3, recovery_timeout=60)
    for n in range(3):
        assert not is_done(poke_safely(breaker, f"with the check failing (error {n + 1})"))
    assert check.calls == 3, f"3 pokes below the threshold: expected 3 checks, got {check.calls}"
    calls = check.calls
    breaker.poke()
    assert check.calls == calls, (
        f"poke() after failure_threshold=3 consecutive errors: expected the circuit open and the check "
        f"skipped, but the check ran ({check.calls - calls} more call)"
    )
    assert any("open" in m.lower() for m in sensor_log.messages), (
        f"expected the log to say the circuit is open, got {sensor_log.messages}"
    )


@pytest.mark.criterion("ex04.t5.opens_after_threshold")
def test_the_threshold_error_opens_the_circuit_then_and_there(custom_sensors, sim_clock, state_dir):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=3, recovery_timeout=60)
    for _ in range(3):
        poke_safely(breaker, "with the check failing")  # the third error opens the circuit, at t = 0
    sim_clock.advance(30)
    poke_safely(breaker, "30 s after the circuit opened")
    calls = check.calls
    sim_clock.advance(31)  # 61 s after the third error, 31 s after the next poke
    poke_safely(breaker, "61 s after the third error")
    assert check.calls == calls + 1, (
        f"failure_threshold=3, recovery_timeout=60: the third consecutive error opens the circuit, so 61 s after "
        f"it the trial check runs; got {check.calls - calls} checks (did the circuit open only at the next poke?)")


@pytest.mark.criterion("ex04.t5.opens_after_threshold")
def test_an_answer_resets_the_count(custom_sensors, sim_clock, state_dir):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=3, recovery_timeout=60)
    for failing in (True, True, False, True, True):  # never 3 errors in a row
        check.failing = failing
        poke_safely(breaker, "while errors alternate with answers")
    calls = check.calls
    breaker.poke()
    assert check.calls == calls + 1, (
        "errors, errors, an answer, errors, errors with failure_threshold=3: expected the circuit still "
        "closed (errors must be consecutive), but the check was skipped"
    )


@pytest.mark.criterion("ex04.t5.skips_while_open")
def test_a_skipped_check_is_logged(custom_sensors, sim_clock, state_dir, sensor_log):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=2, recovery_timeout=300)
    breaker.poke()
    breaker.poke()  # open
    sensor_log.clear()
    sim_clock.advance(60)
    poke_safely(breaker, "while the circuit is open")
    assert sensor_log.messages, (
        "poke() while the circuit is open: expected the skipped check logged (the chapter: 'skip the check (log "
        "it)'), the poke logged nothing")


@pytest.mark.criterion("ex04.t5.skips_while_open")
def test_skips_checks_until_recovery_timeout(custom_sensors, sim_clock, state_dir):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=2, recovery_timeout=300)
    breaker.poke()
    breaker.poke()
    calls = check.calls
    check.failing, check.ready = False, True  # the upstream is back, but the breaker does not know yet
    for _ in range(3):
        sim_clock.advance(60)
        result = poke_safely(breaker, "while the circuit is open")
        assert not is_done(result), f"poke() while the circuit is open: expected False, got {result!r}"
    assert check.calls == calls, (
        f"3 pokes within recovery_timeout=300 s of opening: expected no check, got {check.calls - calls}"
    )


@pytest.mark.criterion("ex04.t5.half_open_recovery")
def test_skipped_pokes_do_not_restart_the_recovery_clock(custom_sensors, sim_clock, state_dir):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=2, recovery_timeout=100)
    breaker.poke()
    breaker.poke()  # open at t = 0
    sim_clock.advance(60)
    poke_safely(breaker, "60 s after the circuit opened")  # skipped
    calls = check.calls
    sim_clock.advance(60)
    poke_safely(breaker, "120 s after the circuit opened")
    assert check.calls == calls + 1, (
        f"recovery_timeout=100, pokes 60 s apart while open: expected the trial at the poke 120 s after the "
        f"circuit opened (seconds since it opened, not since the last skipped poke), got {check.calls - calls} checks")


@pytest.mark.criterion("ex04.t5.half_open_recovery")
def test_trial_after_recovery_timeout_closes_on_success(custom_sensors, sim_clock, state_dir):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=2, recovery_timeout=300)
    breaker.poke()
    breaker.poke()
    check.failing, check.ready = False, True
    sim_clock.advance(301)
    result = breaker.poke()
    assert is_done(result), f"poke() after recovery_timeout with the upstream back: expected done, got {result!r}"


@pytest.mark.criterion("ex04.t5.half_open_recovery")
def test_failed_trial_opens_again_at_once(custom_sensors, sim_clock, state_dir):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=3, recovery_timeout=300)
    for _ in range(3):
        breaker.poke()
    sim_clock.advance(301)
    calls = check.calls
    breaker.poke()  # the trial check fails
    assert check.calls == calls + 1, "poke() after recovery_timeout: expected one trial check"
    check.failing = False
    breaker.poke()
    assert check.calls == calls + 1, (
        "poke() right after a failed trial: expected the circuit open again at once (one error in "
        "half-open is enough), but the check ran"
    )
    sim_clock.advance(301)
    breaker.poke()
    assert check.calls == calls + 2, "poke() a recovery_timeout after the failed trial: expected a new trial"


@pytest.mark.criterion("ex04.t5.half_open_recovery")
def test_not_ready_answer_closes_the_circuit(custom_sensors, sim_clock, state_dir):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=2, recovery_timeout=100)
    breaker.poke()
    breaker.poke()
    sim_clock.advance(101)
    check.failing, check.ready = False, False
    assert not is_done(breaker.poke()), "trial check answering 'not ready': expected False"
    calls = check.calls
    breaker.poke()
    assert check.calls == calls + 1, (
        "poke() after a trial that answered (not ready, no error): expected the circuit closed and the "
        "check run, but it was skipped"
    )


@pytest.mark.criterion("ex04.t5.survives_reschedule")
def test_state_is_kept_outside_the_instance(custom_sensors, sim_clock, state_dir):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=2, recovery_timeout=300)
    breaker.poke()
    breaker.poke()
    assert state_dir.exists() and any(state_dir.iterdir()), (
        f"after two errors on two instances: expected the breaker's state in state_dir={state_dir}, found nothing"
    )
    calls = check.calls
    breaker.poke()
    assert check.calls == calls, (
        "third instance of the same task run after 2 errors (threshold 2): expected the circuit open "
        "(state kept between instances), but the check ran"
    )


@pytest.mark.criterion("ex04.t5.survives_reschedule")
def test_state_is_per_task_run(custom_sensors, sim_clock, state_dir):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=2, recovery_timeout=300)
    breaker.poke()
    breaker.poke()
    other_run = custom_sensors.CircuitBreakerSensor(
        task_id="guarded_check", condition=check, state_dir=str(state_dir), clock=sim_clock.now,
        failure_threshold=2, recovery_timeout=300,
    )
    calls = check.calls
    other_run.poke(make_context(other_run, logical_date=datetime(2024, 1, 2, tzinfo=UTC)))
    assert check.calls == calls + 1, (
        "another DAG run of the same task: expected its own closed circuit, but the check was skipped"
    )


@pytest.mark.criterion("ex04.t5.survives_reschedule")
def test_guards_a_real_http_check(custom_sensors, sim_clock, state_dir, health_server):
    def api_healthy() -> bool:
        return requests.get(health_server.health_url, timeout=2).status_code == 200

    breaker = Breaker(custom_sensors, sim_clock, state_dir, api_healthy, failure_threshold=2, recovery_timeout=60)
    health_server.drop_connections = True
    breaker.poke()
    breaker.poke()
    seen = len(health_server.requests)
    health_server.drop_connections = False
    breaker.poke()
    assert len(health_server.requests) == seen, "circuit open: expected no request to the API"
    health_server.force("healthy")  # the simulated minute must not land in a maintenance window
    sim_clock.advance(61)
    assert is_done(breaker.poke()), "after recovery_timeout, the API healthy again: expected done"


@pytest.mark.criterion("ex04.t5.survives_reschedule")
def test_each_mapped_task_instance_has_its_own_circuit(custom_sensors, sim_clock, state_dir):
    checks = [FlakyCheck(), FlakyCheck()]
    first, second = (
        RescheduledTask(lambda check=check: custom_sensors.CircuitBreakerSensor(
            task_id="guarded_check", condition=check, state_dir=str(state_dir), clock=sim_clock.now,
            mode="reschedule", failure_threshold=2, recovery_timeout=300), logical_date=RUN_DATE, map_index=index)
        for index, check in enumerate(checks)
    )
    first.poke()
    first.poke()
    calls = checks[0].calls
    first.poke()
    assert checks[0].calls == calls, (
        "map index 0, third reschedule poke after 2 errors (threshold 2): expected its circuit open, but the check ran"
    )
    second.poke()
    assert checks[1].calls == 1, (
        "map index 1 of the same task and run, first poke: expected its own closed circuit (the state key "
        "includes the map index), but the check was skipped"
    )


class TimedCheck(FlakyCheck):
    """A FlakyCheck that takes a little time and remembers how long each call took by its own clock."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds = 0.0

    def __call__(self) -> bool:
        started = time.monotonic()
        try:
            time.sleep(0.01)
            return super().__call__()
        finally:
            self.seconds += time.monotonic() - started


@pytest.mark.criterion("ex04.t5.survives_reschedule")
def test_the_xcom_counts_checks_errors_and_their_time(custom_sensors, sim_clock, state_dir):
    check = TimedCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=3, recovery_timeout=60)
    poke_seconds = 0.0
    for failing, ready in ((True, False), (True, False), (False, False), (False, True)):  # 2 errors, no, yes
        check.failing, check.ready = failing, ready
        started = time.monotonic()
        result = poke_safely(breaker, "in an error, error, not-ready, ready sequence")
        poke_seconds += time.monotonic() - started
    assert isinstance(result, PokeReturnValue) and result.is_done and isinstance(result.xcom_value, dict), (
        f"poke() once the check answers ready: expected PokeReturnValue(is_done=True, xcom_value=<the state>), "
        f"got {result!r}"
    )
    state = result.xcom_value
    assert (state.get("checks"), state.get("errors")) == (4, 2), (
        f"the XCom after two errors, a not-ready answer and a ready one (4 instances): expected checks=4, "
        f"errors=2, got checks={state.get('checks')!r}, errors={state.get('errors')!r} in {state}"
    )
    total = state.get("total_duration")
    assert isinstance(total, int | float) and check.seconds <= total + 1e-3 and total <= poke_seconds + 1e-3, (
        f"the XCom's total_duration after 4 checks that took {check.seconds:.3f} s in pokes that took "
        f"{poke_seconds:.3f} s: expected a number of seconds between the two, got {total!r}"
    )
    error = str(state.get("last_error"))
    assert "ConnectionError" in error and "upstream refused the connection" in error, (
        f"the XCom's last_error after a ConnectionError('upstream refused the connection'): expected "
        f"'<type>: <message>', got {state.get('last_error')!r}"
    )
    assert state.get("state") == "closed", f"the XCom of a breaker that answered: expected state 'closed', got {state}"


@pytest.mark.criterion("ex04.t5.half_open_recovery")
def test_a_successful_trial_reports_a_closed_circuit(custom_sensors, sim_clock, state_dir):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=2, recovery_timeout=100)
    breaker.poke()
    breaker.poke()
    check.failing, check.ready = False, True
    sim_clock.advance(100)  # exactly recovery_timeout: "until recovery_timeout seconds have passed"
    result = breaker.poke()
    assert check.calls == 3, (
        f"poke() exactly recovery_timeout=100 s after the circuit opened: expected the trial check to run, "
        f"got {check.calls - 2} checks"
    )
    assert is_done(result) and result.xcom_value.get("state") == "closed", (
        f"a trial that answered ready: expected done with the state 'closed' as the XCom, got {result!r}"
    )


@pytest.mark.criterion("ex04.t5.survives_reschedule")
def test_a_first_poke_that_succeeds_leaves_no_state(custom_sensors, sim_clock, state_dir):
    check = FlakyCheck()
    check.failing, check.ready = False, True
    result = poke_safely(Breaker(custom_sensors, sim_clock, state_dir, check), "whose first check answers ready")
    assert is_done(result), f"poke() whose first check answers ready: expected done, got {result!r}"
    left = [p.name for p in json_files(state_dir)]
    assert not left, f"a sensor that succeeded: expected its state file removed, found {left}"


@pytest.mark.criterion("ex04.t5.survives_reschedule")
@pytest.mark.parametrize("tasks", [("guard_A", "guard_B"), ("a_guard", "b_guard")])
def test_tasks_whose_ids_differ_in_one_letter_have_their_own_circuits(custom_sensors, sim_clock, state_dir, tasks):
    checks = [FlakyCheck(), FlakyCheck()]
    first, second = (
        RescheduledTask(lambda check=check, task=task: custom_sensors.CircuitBreakerSensor(
            task_id=task, condition=check, state_dir=str(state_dir), clock=sim_clock.now, mode="reschedule",
            failure_threshold=2, recovery_timeout=300), logical_date=RUN_DATE)
        for task, check in zip(tasks, checks, strict=True)
    )
    first.poke()
    first.poke()
    second.poke()
    assert checks[1].calls == 1, (
        f"task {tasks[1]!r}, first poke, after {tasks[0]!r} of the same run opened its circuit: expected its "
        f"own closed circuit, but the check was skipped"
    )


@pytest.mark.criterion("ex04.t5.survives_reschedule")
def test_state_dir_defaults_under_airflow_home(custom_sensors, sim_clock, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "home"))
    check = FlakyCheck()
    sensor = custom_sensors.CircuitBreakerSensor(task_id="guarded_check", condition=check, clock=sim_clock.now,
                                                 failure_threshold=2)
    sensor.poke(make_context(sensor, logical_date=RUN_DATE))
    folder = tmp_path / "home" / "sensor_state" / "circuit_breakers"
    found = json_files(folder)
    assert found, (
        f"an error with state_dir unset and AIRFLOW_HOME={tmp_path / 'home'}: expected the state file in {folder}, "
        f"found {[str(p.relative_to(tmp_path)) for p in json_files(tmp_path)]}"
    )


@pytest.mark.criterion("ex04.t5.survives_reschedule")
@pytest.mark.parametrize("damage", ["not JSON", "[1, 2]"])
def test_an_unreadable_state_file_means_a_closed_circuit(custom_sensors, sim_clock, state_dir, sensor_log, damage):
    check = FlakyCheck()
    breaker = Breaker(custom_sensors, sim_clock, state_dir, check, failure_threshold=2, recovery_timeout=300)
    breaker.poke()
    breaker.poke()  # open
    files = json_files(state_dir)
    assert len(files) == 1, f"after two errors of one task run: expected one state file in {state_dir}, got {files}"
    files[0].write_text(damage)
    sensor_log.clear()
    calls = check.calls
    poke_safely(breaker, f"with the state file holding {damage!r}")
    assert check.calls == calls + 1, (
        f"poke() with the state file holding {damage!r}: expected a fresh closed circuit (the check runs), "
        f"got {check.calls - calls} checks"
    )
    if damage == "not JSON":
        assert any(files[0].name in m for m in sensor_log.at_least("warning")), (
            f"poke() with an unreadable state file: expected a warning naming {files[0].name}, "
            f"got {sensor_log.messages}"
        )


@pytest.mark.criterion("ex04.t5.opens_after_threshold")
def test_an_error_is_logged_with_what_was_raised(custom_sensors, sim_clock, state_dir, sensor_log):
    breaker = Breaker(custom_sensors, sim_clock, state_dir, FlakyCheck(), failure_threshold=3)
    poke_safely(breaker, "with the check failing")
    assert any("upstream refused the connection" in m for m in sensor_log.messages), (
        f"poke() whose check raised ConnectionError('upstream refused the connection'): expected a log line "
        f"saying so, got {sensor_log.messages}"
    )


@pytest.mark.criterion("ex04.t5.opens_after_threshold")
@pytest.mark.parametrize(("kwargs", "named"), [
    ({"failure_threshold": 0}, "failure_threshold"),
    ({"recovery_timeout": -1}, "recovery_timeout"),
])
def test_impossible_settings_are_refused(custom_sensors, kwargs, named):
    with pytest.raises(ValueError, match=named):
        custom_sensors.CircuitBreakerSensor(task_id="guarded_check", condition=FlakyCheck(), **kwargs)
    custom_sensors.CircuitBreakerSensor(task_id="edge", condition=FlakyCheck(), failure_threshold=1, recovery_timeout=0)
