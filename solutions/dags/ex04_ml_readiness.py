"""Exercise 4, Task 3: start model training once behavior logs, the catalog and the inventory are ready.

The feeds can take hours, so the sensor reschedules. Each feed has its own deadline; if one misses it,
today's training is skipped (soft_fail) rather than failed: yesterday's model keeps serving.

Environment: `WORKBOOK_ML_DATA_ROOT` (default /tmp/ml-data), `WORKBOOK_CATALOG_URL` (default the API of
`python -m fixtures ml-data`) and `WORKBOOK_TIME_SCALE` (divides every interval).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

from solutions.custom_sensors import (
    MultiSourceReadinessSensor,
    behavior_logs_fresh,
    catalog_version_above,
    inventory_snapshot_today,
)

ROOT = Path(os.environ.get("WORKBOOK_ML_DATA_ROOT", "/tmp/ml-data"))
CATALOG_URL = os.environ.get("WORKBOOK_CATALOG_URL", "http://127.0.0.1:8082/api/catalog")
TIME_SCALE = float(os.environ.get("WORKBOOK_TIME_SCALE", "1"))


def seconds(real_world: float) -> float:
    return real_world / TIME_SCALE


with DAG(
    dag_id="ex04_ml_readiness",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["exercise-4"],
):
    wait_for_sources = MultiSourceReadinessSensor(
        task_id="wait_for_sources",
        conditions={
            "behavior_logs": behavior_logs_fresh(ROOT / "behavior", max_age_minutes=60),
            "catalog": catalog_version_above(CATALOG_URL, min_version=100, timeout=10),
            "inventory": inventory_snapshot_today(ROOT / "inventory" / "snapshot.json"),
        },
        require_all=True,
        condition_timeouts={"behavior_logs": seconds(2 * 3600), "inventory": seconds(6 * 3600)},
        mode="reschedule",
        poke_interval=seconds(5 * 60),
        timeout=seconds(8 * 3600),
        soft_fail=True,  # no fresh data today: skip training, keep yesterday's model
    )

    @task
    def train_model(sources: dict[str, Any]) -> list[str]:
        return sorted(name for name, status in sources.items() if status["status"] == "ready")

    train_model(wait_for_sources.output)
