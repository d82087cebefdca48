"""Exercise 4, Task 4: wait for a partner's daily export, looking as often as this partner deserves.

The sensor reschedules at the interval it learned from earlier runs (its history is kept in
`WORKBOOK_STATE_DIR`); trigger a run with conf `{"poll_interval_override": 30}` when it is urgent.

Environment: `WORKBOOK_DROP_FILE` (default /tmp/partner-drops/daily_export.csv), `WORKBOOK_STATE_DIR`
(default `$AIRFLOW_HOME/sensor_state`) and `WORKBOOK_TIME_SCALE` (divides every interval).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from solutions.custom_sensors import AdaptiveFileSensor, default_state_dir

DROP_FILE = os.environ.get("WORKBOOK_DROP_FILE", "/tmp/partner-drops/daily_export.csv")
STATE_DIR = Path(os.environ.get("WORKBOOK_STATE_DIR") or default_state_dir())
TIME_SCALE = float(os.environ.get("WORKBOOK_TIME_SCALE", "1"))


def seconds(real_world: float) -> float:
    return real_world / TIME_SCALE


with DAG(
    dag_id="ex04_adaptive_file",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["exercise-4"],
):
    wait_for_export = AdaptiveFileSensor(
        task_id="wait_for_export",
        filepath=DROP_FILE,
        initial_interval=seconds(60),
        min_interval=seconds(30),
        max_interval=seconds(15 * 60),
        history_size=20,
        history_path=str(STATE_DIR / "adaptive_history.json"),
        mode="reschedule",  # some partners take hours
        timeout=seconds(12 * 3600),
    )

    @task
    def load_export(metrics: dict[str, Any]) -> str:
        return (f"{DROP_FILE} loaded after {metrics['attempts']} recorded attempt(s), "
                f"success rate {metrics['success_rate']:.0%}")

    load_export(wait_for_export.output)
