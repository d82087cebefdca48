"""Starter DAG of Exercise 4, Task 5: wait for the health API behind a circuit breaker.

A 5xx or a dropped connection is an error of the API (counted by the breaker); a 503 maintenance answer
is a plain "not yet". After 3 errors in a row the sensor stops calling the API for 5 minutes. In
reschedule mode each poke is a new operator instance: the breaker's state lives in `WORKBOOK_STATE_DIR`.

Environment: `WORKBOOK_HEALTH_URL`, `WORKBOOK_STATE_DIR` (default `$AIRFLOW_HOME/sensor_state`) and
`WORKBOOK_TIME_SCALE` (divides every interval).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import requests
from airflow.sdk import DAG, task

from starters.custom_sensors import CircuitBreakerSensor

HEALTH_URL = os.environ.get("WORKBOOK_HEALTH_URL", "http://127.0.0.1:8081/api/health")
STATE_DIR = os.environ.get("WORKBOOK_STATE_DIR") or None
TIME_SCALE = float(os.environ.get("WORKBOOK_TIME_SCALE", "1"))


def seconds(real_world: float) -> float:
    return real_world / TIME_SCALE


def api_is_healthy() -> bool:
    """True when healthy, False during maintenance; any other failure raises (the breaker counts it)."""
    response = requests.get(HEALTH_URL, timeout=10)
    if response.status_code == 503:
        return False
    response.raise_for_status()
    return response.json().get("status") == "healthy"


with DAG(
    dag_id="ex04_circuit_breaker",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["exercise-4"],
):
    guarded_health_check = CircuitBreakerSensor(
        task_id="guarded_health_check",
        condition=api_is_healthy,
        failure_threshold=3,
        recovery_timeout=seconds(300),
        state_dir=STATE_DIR,
        # TODO(Task 5): mode, poke_interval (60 s), timeout (2 h): see the chapter, Task 5
    )

    @task
    def report(breaker: dict[str, Any]) -> str:
        return f"API healthy after {breaker['checks']} check(s), {breaker['errors']} error(s)"

    report(guarded_health_check.output)
