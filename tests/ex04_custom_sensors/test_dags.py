"""Every DAG of Exercise 4 under dag.test(), against the simulators in compressed time.

`WORKBOOK_TIME_SCALE=100` divides the DAGs' intervals, so "poke every 30 s" takes 0.3 s here. In
reschedule mode dag.test() checks for due reschedules about once a second, so these runs keep to one or
two reschedules each.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from fixtures.clock import SimClock
from fixtures.health_server import HealthServer
from fixtures.ml_data import MLDataSources
from fixtures.order_db import OrderDB
from tests.ex04_custom_sensors.helpers import json_files
from tests.harness.dagrun import NOT_IMPLEMENTED, load_dag

pytestmark = pytest.mark.integration
SCALE = "100"


def try_number(dag_id: str, run_id: str, task_id: str) -> int:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return session.scalar(select(TaskInstance.try_number).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id, TaskInstance.task_id == task_id))


def sensor_of(dag_id: str, task_id: str):
    return load_dag(dag_id).get_task(task_id)


@pytest.mark.criterion("ex04.t1.dag")
def test_order_dag_waits_for_the_shipment(run_dag, tmp_path):
    with OrderDB(tmp_path / "db", clock=SimClock(time_scale=100)) as db:  # order 1 ships 0.3 s in
        result = run_dag("ex04_order_status", env={"WORKBOOK_ORDER_DB": str(db.root), "WORKBOOK_TIME_SCALE": SCALE})
    result.assert_success()
    assert result.xcoms.get("process_order", {}).get("status") == "shipped", (
        f"dag.test() of ex04_order_status: expected process_order to get the shipped order, XComs {result.xcoms}"
    )
    sensor = sensor_of("ex04_order_status", "wait_for_shipment")
    assert sensor.mode == "reschedule" and sensor.retries >= 1 and sensor.timeout < 7 * 24 * 3600, (
        f"wait_for_shipment: expected mode 'reschedule', retries >= 1 and a timeout below Airflow's 7-day "
        f"default, got mode={sensor.mode!r}, retries={sensor.retries}, timeout={sensor.timeout}"
    )


@pytest.mark.criterion("ex04.t1.dag")
def test_order_dag_fails_fast_on_a_cancelled_order(run_dag, tmp_path):
    db = OrderDB(tmp_path / "db", clock=SimClock(time_scale=0))
    db.set_status(3, "cancelled")
    result = run_dag("ex04_order_status", env={"WORKBOOK_ORDER_DB": str(db.root), "WORKBOOK_ORDER_ID": "3",
                                               "WORKBOOK_TIME_SCALE": SCALE})
    assert result.task_states.get("wait_for_shipment") == "failed", (
        f"dag.test() of ex04_order_status for cancelled order 3: expected wait_for_shipment failed at once, "
        f"got {result.task_states}\n{result.summary()}"
    )
    sensor_log = "\n".join(result.task_log("wait_for_shipment"))
    if match := NOT_IMPLEMENTED.search(sensor_log):
        raise NotImplementedError(match.group(1).strip())
    assert "AirflowFailException" in sensor_log and "cancelled" in sensor_log, (
        "dag.test() for cancelled order 3: expected the sensor to raise AirflowFailException about the "
        f"cancelled order\n{result.summary()}"
    )
    assert sensor_of("ex04_order_status", "wait_for_shipment").retries >= 1, (
        "wait_for_shipment: expected retries >= 1 (for crashes), so that failing fast has to skip them"
    )
    tries = try_number(result.dag_id, result.run_id, "wait_for_shipment")
    assert tries == 1, (
        f"a cancelled order must fail without retries (AirflowFailException); wait_for_shipment ran {tries} tries"
    )


@pytest.mark.criterion("ex04.t2.dag")
def test_api_health_dag_with_a_connection(run_dag, monkeypatch):
    with HealthServer(clock=SimClock(time_scale=0)) as server:
        server.require_bearer("dag-token")
        server.queue_response(503, {"status": "maintenance"})  # the first poke finds it in maintenance
        monkeypatch.setenv("AIRFLOW_CONN_EX04_PRICING_API", '{"conn_type": "http", "password": "dag-token"}')
        result = run_dag("ex04_api_health", env={
            "WORKBOOK_HEALTH_URL": server.health_url, "WORKBOOK_HEALTH_CONN_ID": "ex04_pricing_api",
            "WORKBOOK_TIME_SCALE": SCALE,
        })
        requests_seen = len(server.requests)
    result.assert_success()
    assert requests_seen >= 2, f"expected a 503 poke then a healthy one, the server saw {requests_seen} request(s)"
    assert "1.0" in str(result.xcoms.get("record_version")), f"expected the version recorded, XComs {result.xcoms}"
    sensor = sensor_of("ex04_api_health", "wait_for_api")
    assert sensor.mode == "poke" and sensor.exponential_backoff and sensor.max_wait is not None, (
        f"wait_for_api: expected poke mode with exponential_backoff and max_wait, got mode={sensor.mode!r}, "
        f"exponential_backoff={sensor.exponential_backoff}, max_wait={sensor.max_wait}"
    )
    # The credentials come from the Connection when the task runs, not when the file is parsed: the sensor
    # names the connection, holds no secret, and the DAG file parses where the connection does not exist.
    monkeypatch.setenv("WORKBOOK_HEALTH_CONN_ID", "ex04_pricing_api")
    sensor = sensor_of("ex04_api_health", "wait_for_api")
    held = {name: getattr(sensor, name, None) for name in ("conn_id", "bearer_token", "basic_auth", "headers")}
    assert held["conn_id"] == "ex04_pricing_api" and "dag-token" not in repr(held), (
        f"wait_for_api parsed with WORKBOOK_HEALTH_CONN_ID=ex04_pricing_api: expected conn_id='ex04_pricing_api' "
        f"and no credential in the operator (read from the Connection at run time), got {held}")
    monkeypatch.delenv("AIRFLOW_CONN_EX04_PRICING_API")
    try:
        sensor_of("ex04_api_health", "wait_for_api")
    except Exception as exc:
        pytest.fail(f"ex04_api_health parsed where the connection ex04_pricing_api does not exist: expected it to "
                    f"parse (the Connection is read when the task runs), got {type(exc).__name__}: {exc}")


@pytest.mark.criterion("ex04.t3.dag")
def test_ml_readiness_dag(run_dag, tmp_path):
    with MLDataSources(tmp_path / "ml-data", clock=SimClock(time_scale=200)) as sources:  # all ready by 0.2 s
        result = run_dag("ex04_ml_readiness", env={
            "WORKBOOK_ML_DATA_ROOT": str(sources.root), "WORKBOOK_CATALOG_URL": sources.catalog_url,
            "WORKBOOK_TIME_SCALE": SCALE,
        })
    result.assert_success()
    assert result.xcoms.get("train_model") == ["behavior_logs", "catalog", "inventory"], (
        f"dag.test() of ex04_ml_readiness: expected training on all three sources, XComs {result.xcoms}"
    )
    sensor = sensor_of("ex04_ml_readiness", "wait_for_sources")
    assert sensor.mode == "reschedule" and sensor.soft_fail, (
        f"wait_for_sources: expected reschedule mode and soft_fail, got mode={sensor.mode!r}, "
        f"soft_fail={sensor.soft_fail}"
    )


@pytest.mark.criterion("ex04.t4.dag")
def test_adaptive_dag_reschedules_at_the_learned_interval(run_dag, tmp_path, monkeypatch):
    from airflow.models.taskreschedule import TaskReschedule
    from airflow.utils.session import create_session
    from sqlalchemy import select

    drop = tmp_path / "drops" / "daily_export.csv"
    drop.parent.mkdir()
    state = tmp_path / "state"
    history = state / "adaptive_history.json"
    started = datetime.now(UTC)
    stop = threading.Event()

    def deliver_after_first_poke() -> None:
        # The file lands between the first and the second poke: once the first poke has written the history,
        # whatever its inner layout (the chapter fixes only that it is a JSON file keyed by the watched path).
        while not stop.wait(0.01):
            if history.exists() and history.stat().st_size > 0:
                drop.write_text("id,value\n1,2\n")
                return

    env = {"WORKBOOK_DROP_FILE": str(drop), "WORKBOOK_STATE_DIR": str(state), "WORKBOOK_TIME_SCALE": SCALE}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    sensor = sensor_of("ex04_adaptive_file", "wait_for_export")
    # Checked before the run: a history kept elsewhere would leave this test waiting out the sensor's timeout.
    assert str(getattr(sensor, "history_path", None)) == str(history), (
        f"ex04_adaptive_file with WORKBOOK_STATE_DIR={state}: expected the sensor's history in {history} (the "
        f"DAG keeps it in WORKBOOK_STATE_DIR), got history_path={getattr(sensor, 'history_path', None)!r}")
    watcher = threading.Thread(target=deliver_after_first_poke, daemon=True)
    watcher.start()
    try:
        result = run_dag("ex04_adaptive_file", env=env)
    finally:
        stop.set()
        watcher.join()
    result.assert_success()
    with create_session() as session:
        rows = session.scalars(select(TaskReschedule).where(TaskReschedule.start_date >= started)).all()
        waits = [(r.reschedule_date - r.end_date).total_seconds() for r in rows]
    # one failed attempt in the history: 0 % success, 60 s - 30 % = 42 s, / 100 = 0.42 s
    assert len(waits) == 1 and waits[0] == pytest.approx(0.42, abs=0.05), (
        f"dag.test() of ex04_adaptive_file: expected one reschedule 0.42 s after the first poke (the adaptive "
        f"interval), got reschedule waits {waits}"
    )


@pytest.mark.criterion("ex04.t5.dag")
def test_circuit_breaker_dag_keeps_state_across_a_real_reschedule(run_dag, tmp_path):
    state = tmp_path / "state"
    with HealthServer(clock=SimClock(time_scale=0)) as server:
        server.queue_response(500, {"error": "internal"})  # the first poke is an error
        result = run_dag("ex04_circuit_breaker", env={
            "WORKBOOK_HEALTH_URL": server.health_url, "WORKBOOK_STATE_DIR": str(state), "WORKBOOK_TIME_SCALE": SCALE,
        })
    result.assert_success()
    assert "2 check(s), 1 error(s)" in str(result.xcoms.get("report")), (
        f"dag.test() of ex04_circuit_breaker: an error, a reschedule (a new instance), then success: expected "
        f"the breaker to remember the error ('2 check(s), 1 error(s)'), got {result.xcoms.get('report')!r}"
    )
    assert not json_files(state), f"after success the breaker's state file should be removed, found {json_files(state)}"
    assert sensor_of("ex04_circuit_breaker", "guarded_health_check").mode == "reschedule"


# What each DAG of the chapter states (its item "The DAG ..."), in real-world seconds: at WORKBOOK_TIME_SCALE=1
# the sensor has these settings, at 100 every interval is a hundredth of it.
STATED = {
    ("ex04_order_status", "wait_for_shipment", "ex04.t1.dag"): {
        "mode": "reschedule", "poke_interval": 30, "timeout": 4 * 3600, "retries": 2},
    ("ex04_api_health", "wait_for_api", "ex04.t2.dag"): {
        "mode": "poke", "poke_interval": 10, "exponential_backoff": True, "max_wait": 120, "timeout": 30 * 60,
        "retries": 1},
    ("ex04_ml_readiness", "wait_for_sources", "ex04.t3.dag"): {
        "mode": "reschedule", "poke_interval": 5 * 60, "timeout": 8 * 3600, "soft_fail": True, "require_all": True},
    ("ex04_adaptive_file", "wait_for_export", "ex04.t4.dag"): {
        "mode": "reschedule", "min_interval": 30, "max_interval": 15 * 60, "timeout": 12 * 3600},
    ("ex04_circuit_breaker", "guarded_health_check", "ex04.t5.dag"): {
        "mode": "reschedule", "poke_interval": 60, "failure_threshold": 3, "recovery_timeout": 300,
        "timeout": 2 * 3600},
}
SCALED = {"poke_interval", "timeout", "max_wait", "min_interval", "max_interval", "recovery_timeout"}


def _seconds(value):
    return value.total_seconds() if hasattr(value, "total_seconds") else value


@pytest.mark.parametrize(("dag_id", "task_id", "stated"), [
    pytest.param(dag_id, task_id, stated, marks=pytest.mark.criterion(criterion), id=dag_id)
    for (dag_id, task_id, criterion), stated in STATED.items()])
def test_the_dag_has_the_settings_the_chapter_states_in_compressed_time_too(dag_id, task_id, stated, monkeypatch):
    for scale in (1, 100):
        monkeypatch.setenv("WORKBOOK_TIME_SCALE", str(scale))
        sensor = sensor_of(dag_id, task_id)
        got = {name: _seconds(getattr(sensor, name, None)) for name in stated}
        expected = {name: (value / scale if name in SCALED else value) for name, value in stated.items()}
        wrong = {name: got[name] for name, value in expected.items()
                 if not (got[name] == pytest.approx(value) if isinstance(value, float | int) and not isinstance(
                     value, bool) and isinstance(got[name], float | int) else got[name] == value)}
        assert not wrong, (
            f"{dag_id}.{task_id} loaded with WORKBOOK_TIME_SCALE={scale} (every interval divided by it): expected "
            f"{ {n: expected[n] for n in wrong} }, got {wrong}")
