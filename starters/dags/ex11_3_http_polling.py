"""Exercise 11.3: wait for the health API to report healthy, in the triggerer, then use its answer.

`WORKBOOK_HEALTH_URL` (default: the health server of `python -m fixtures health-server`) and
`WORKBOOK_POLL_INTERVAL` (seconds) come from the environment.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, task

from starters.custom_trigger import HttpPollingOperator

HEALTH_URL = os.environ.get("WORKBOOK_HEALTH_URL", "http://127.0.0.1:8081/api/health")
POLL_INTERVAL = float(os.environ.get("WORKBOOK_POLL_INTERVAL", "5"))

with DAG(
    dag_id="ex11_3_http_polling",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["exercise-11.3"],
):
    wait_for_api = HttpPollingOperator(
        task_id="wait_for_api",
        endpoint=HEALTH_URL,
        response_check="status",
        expected_value="healthy",
        poll_interval=POLL_INTERVAL,
        timeout=600,
    )

    @task(multiple_outputs=False)
    def report(answer: dict[str, Any]) -> str:
        return f"API {answer['value']} after {answer['attempts']} poll(s) in {answer['elapsed']:.1f} s"

    report(wait_for_api.output)
