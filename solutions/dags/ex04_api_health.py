"""Exercise 4, Task 2: wait for the pricing API to leave maintenance, then record which version answered.

Maintenance windows are short, so the sensor pokes (keeps its slot) with exponential backoff capped by
`max_wait`; a rejected credential or a wrong URL fails at once instead of waiting out the timeout.

Environment: `WORKBOOK_HEALTH_URL` (default the health server of `python -m fixtures health-server`),
`WORKBOOK_HEALTH_CONN_ID` (an Airflow Connection with the API's credentials, optional) and
`WORKBOOK_TIME_SCALE` (divides every interval).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from solutions.custom_sensors import APIHealthSensor

HEALTH_URL = os.environ.get("WORKBOOK_HEALTH_URL", "http://127.0.0.1:8081/api/health")
CONN_ID = os.environ.get("WORKBOOK_HEALTH_CONN_ID") or None
TIME_SCALE = float(os.environ.get("WORKBOOK_TIME_SCALE", "1"))


def seconds(real_world: float) -> float:
    return real_world / TIME_SCALE


with DAG(
    dag_id="ex04_api_health",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={"retries": 1, "retry_delay": timedelta(seconds=seconds(60))},
    tags=["exercise-4"],
):
    wait_for_api = APIHealthSensor(
        task_id="wait_for_api",
        endpoint_url=HEALTH_URL,
        expected_status=200,
        expected_response={"status": "healthy", "version": "1.0"},
        request_timeout=10,
        conn_id=CONN_ID,
        connect_retries=3,
        retry_backoff=seconds(2),
        mode="poke",  # a maintenance window lasts about a minute: cheaper to keep the slot
        poke_interval=seconds(10),
        exponential_backoff=True,
        max_wait=seconds(120),
        timeout=seconds(30 * 60),
    )

    @task
    def record_version(answer: dict[str, Any]) -> str:
        return f"API {answer['body']['version']} healthy, answered in {answer['latency_ms']} ms"

    record_version(wait_for_api.output)
