"""Exercise 11.5, Task 1: one run per new file in the landing zone, started by an asset watcher.

The watcher (`NewObjectTrigger`, run by the triggerer) turns each new object under `WORKBOOK_LANDING_URL`
into an asset event; the DAG is scheduled on the asset. `WORKBOOK_WATCHER_STATE` is the watcher's state
file, `WORKBOOK_POLL_INTERVAL` its poll interval (seconds). A manual run may name keys in its conf
(`{"keys": ["file:///..."]}`) to reprocess files by hand.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from airflow.sdk import DAG, Asset, ObjectStoragePath, task

LANDING_URL = os.environ.get("WORKBOOK_LANDING_URL", "file:///tmp/workbook/landing/bronze/sales/")
WATCHER_STATE = os.environ.get("WORKBOOK_WATCHER_STATE", "/tmp/workbook/state/landing_zone_watcher.json")
POLL_INTERVAL = float(os.environ.get("WORKBOOK_POLL_INTERVAL", "60"))

# TODO (Task 1): watch the landing zone: watchers=[AssetWatcher(name="landing_zone_watcher",
# trigger=NewObjectTrigger(...))] with LANDING_URL, "*.csv", WATCHER_STATE and POLL_INTERVAL.
landing_zone = Asset(name="landing_zone_sales", uri=LANDING_URL)

with DAG(
    dag_id="ex11_5_landing_zone",
    schedule=[landing_zone],
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["exercise-11.5"],
):

    @task(multiple_outputs=False)
    def load_new_objects(triggering_asset_events=None, dag_run=None) -> dict[str, int]:
        # Several watcher events queued between two scheduler loops can start one run: handle them all.
        keys = [event.extra["payload"]["key"]
                for events in (triggering_asset_events or {}).values() for event in events
                if "key" in (event.extra or {}).get("payload", {})]
        keys = keys or list((dag_run.conf or {}).get("keys", []))
        rows = {}
        for key in keys:
            text = ObjectStoragePath(key).read_text()
            rows[key] = max(len(text.splitlines()) - 1, 0)  # minus the header
        return rows

    load_new_objects()
