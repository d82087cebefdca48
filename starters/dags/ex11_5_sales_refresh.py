"""Exercise 11.5, Task 4: event-driven first, a daily catch-up as the backup (the seed's "combine for
reliability").

Runs when the webhook receiver (Task 2) posts an asset event for `WORKBOOK_BRONZE_ASSET_URI`, and every
day at 06:00 in `WORKBOOK_TIMEZONE`. An event run loads the keys the events name; the scheduled run
loads everything under `WORKBOOK_LANDING_URL`, so a lost notification costs a day at most.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from airflow.sdk import DAG, Asset, task

from starters.event_driven import list_objects

BRONZE_ASSET_URI = os.environ.get("WORKBOOK_BRONZE_ASSET_URI", "s3://landing/bronze/sales")
LANDING_URL = os.environ.get("WORKBOOK_LANDING_URL", "file:///tmp/workbook/landing/bronze/sales/")
TIMEZONE = os.environ.get("WORKBOOK_TIMEZONE", "Europe/Paris")

bronze_sales = Asset(name="bronze_sales", uri=BRONZE_ASSET_URI)

with DAG(
    dag_id="ex11_5_sales_refresh",
    # TODO (Task 4): run on bronze_sales events AND every day at 06:00 in TIMEZONE (cron_schedule).
    schedule=[bronze_sales],
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["exercise-11.5"],
):

    @task(multiple_outputs=False)
    def collect_keys(triggering_asset_events=None) -> dict[str, object]:
        events = [event for events in (triggering_asset_events or {}).values() for event in events]
        if events:
            keys = sorted({e.extra["key"] for e in events if (e.extra or {}).get("key")})
            return {"trigger": "asset", "keys": keys, "event_ids": [e.extra.get("event_id") for e in events]}
        return {"trigger": "schedule", "keys": [obj.key for obj in list_objects(LANDING_URL, "*.csv")]}

    collect_keys()
