"""Exercise 11.5, Task 4: a freshness SLA (warn after 6 h, error after 24 h) as a schedule and a check.

The schedule comes from the SLA (the seed's table: 6 h -> every 3 hours); each run checks the newest
object under `WORKBOOK_LANDING_URL`: older than warn_after logs a warning, older than error_after (or no
data at all) fails the run. `WORKBOOK_WARN_AFTER_HOURS` and `WORKBOOK_ERROR_AFTER_HOURS` override the SLA.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, task, timezone
from airflow.sdk.exceptions import AirflowFailException

from solutions.event_driven import FreshnessPolicy, check_freshness, freshness_schedule, list_objects

log = logging.getLogger(__name__)
LANDING_URL = os.environ.get("WORKBOOK_LANDING_URL", "file:///tmp/workbook/landing/bronze/sales/")
POLICY = FreshnessPolicy(
    warn_after=timedelta(hours=float(os.environ.get("WORKBOOK_WARN_AFTER_HOURS", "6"))),
    error_after=timedelta(hours=float(os.environ.get("WORKBOOK_ERROR_AFTER_HOURS", "24"))),
)

with DAG(
    dag_id="ex11_5_freshness",
    schedule=freshness_schedule(POLICY),
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["exercise-11.5"],
):

    @task(multiple_outputs=False)
    def check_sales_freshness() -> dict[str, object]:
        objects = list_objects(LANDING_URL, "*.csv")
        if not objects:
            raise AirflowFailException(f"no data under {LANDING_URL}: freshness SLA broken")
        newest = max(objects, key=lambda obj: obj.modified)
        updated = datetime.fromtimestamp(newest.modified, tz=UTC)
        state, age = check_freshness(updated, timezone.utcnow(), POLICY)
        if state == "error":
            raise AirflowFailException(f"{newest.key} is {age} old: older than error_after {POLICY.error_after}")
        if state == "warn":
            log.warning("%s is %s old: older than warn_after %s", newest.key, age, POLICY.warn_after)
        return {"state": state, "age_seconds": age.total_seconds(), "newest": newest.key}

    check_sales_freshness()
