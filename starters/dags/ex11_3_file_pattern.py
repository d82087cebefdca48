"""Exercise 11.3: wait (deferred) until enough CSV files have landed, then count their rows.

`WORKBOOK_LANDING_DIR` (where the upstream system drops files), `WORKBOOK_MIN_FILES` and
`WORKBOOK_POLL_INTERVAL` (seconds) come from the environment.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from airflow.sdk import DAG, task

from starters.custom_trigger import FilePatternSensor

LANDING_DIR = os.environ.get("WORKBOOK_LANDING_DIR", "/tmp/workbook/landing")
MIN_FILES = int(os.environ.get("WORKBOOK_MIN_FILES", "3"))
POLL_INTERVAL = float(os.environ.get("WORKBOOK_POLL_INTERVAL", "5"))

with DAG(
    dag_id="ex11_3_file_pattern",
    schedule=None,
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["exercise-11.3"],
):
    wait_for_files = FilePatternSensor(
        task_id="wait_for_files",
        pattern=os.path.join(LANDING_DIR, "*.csv"),
        min_files=MIN_FILES,
        poke_interval=POLL_INTERVAL,
        timeout=600,
    )

    @task(multiple_outputs=False)
    def count_rows(files: list[str]) -> dict[str, int]:
        rows = {}
        for path in files:
            with open(path) as handle:
                rows[os.path.basename(path)] = sum(1 for _ in handle) - 1  # minus the header
        return rows

    count_rows(wait_for_files.output)
