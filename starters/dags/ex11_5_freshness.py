"""Exercise 11.5, Task 4: a freshness SLA (warn after 6 h, error after 24 h) as a schedule and a check.

The schedule comes from the SLA (the seed's table: 6 h -> every 3 hours); each run checks the newest
object under `WORKBOOK_LANDING_URL`: older than warn_after logs a warning, older than error_after (or no
data at all) fails the run. `WORKBOOK_WARN_AFTER_HOURS` and `WORKBOOK_ERROR_AFTER_HOURS` override the SLA.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, task

from starters._todo import todo
from starters.event_driven import FreshnessPolicy

LANDING_URL = os.environ.get("WORKBOOK_LANDING_URL", "file:///tmp/workbook/landing/bronze/sales/")
POLICY = FreshnessPolicy(
    warn_after=timedelta(hours=float(os.environ.get("WORKBOOK_WARN_AFTER_HOURS", "6"))),
    error_after=timedelta(hours=float(os.environ.get("WORKBOOK_ERROR_AFTER_HOURS", "24"))),
)

with DAG(
    dag_id="ex11_5_freshness",
    schedule=None,  # TODO (Task 4): the schedule the SLA needs (freshness_schedule)
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["exercise-11.5"],
):

    @task(multiple_outputs=False)
    def check_sales_freshness() -> dict[str, object]:
        """TODO (Task 4): the newest object under LANDING_URL, checked with check_freshness(): fail the task
        (AirflowFailException) on "error" or no data, log a warning on "warn"; return
        {"state", "age_seconds", "newest"}."""
        raise todo("11.5", 4, "implement check_sales_freshness in dags/ex11_5_freshness.py",
                   "ex11_5_event_driven.md#task-4")

    check_sales_freshness()
