"""Exercise 11.5, Task 3: the seed's file watcher as a poll-and-fire trigger with an audit trail.

`InboxFileTrigger` (allow_concurrent=False) fires for a file in `WORKBOOK_INBOX_DIR`; each activation is a
row of the audit table in `WORKBOOK_AUDIT_DB`. The run attaches its run id to the row, processes the file
(moves it to `processed/`, so the condition clears) and always completes the row, failed or not. A manual
run may pass activations in its conf (`{"activations": [{"activation_id": 1, "context": {...}}]}`).
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

from airflow.sdk import DAG, Asset, task

from starters._todo import todo
from starters.event_driven import ActivationAudit

INBOX_DIR = os.environ.get("WORKBOOK_INBOX_DIR", "/tmp/workbook/inbox")
AUDIT_DB = os.environ.get("WORKBOOK_AUDIT_DB", "/tmp/workbook/state/trigger_audit.sqlite")
POLL_INTERVAL = float(os.environ.get("WORKBOOK_POLL_INTERVAL", "2"))

# TODO (Task 3): watch the inbox: watchers=[AssetWatcher(name="inbox_watcher", trigger=InboxFileTrigger(
# name="file_watcher", audit_db=AUDIT_DB, inbox=INBOX_DIR, poll_interval=POLL_INTERVAL, allow_concurrent=False))]
inbox_files = Asset(name="inbox_files", uri=Path(INBOX_DIR).resolve().as_uri())

with DAG(
    dag_id="ex11_5_inbox",
    schedule=[inbox_files],
    start_date=datetime(2025, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["exercise-11.5"],
):

    @task(multiple_outputs=False)
    def claim(triggering_asset_events=None, dag_run=None) -> list[dict]:
        activations = [event.extra["payload"]
                       for events in (triggering_asset_events or {}).values() for event in events
                       if "activation_id" in (event.extra or {}).get("payload", {})]
        activations = activations or list((dag_run.conf or {}).get("activations", []))
        audit = ActivationAudit(AUDIT_DB)
        for activation in activations:
            audit.attach_run(activation["activation_id"], dag_run.run_id)
        return activations

    @task(multiple_outputs=False)
    def process_files(activations: list[dict]) -> dict[str, int]:
        rows = {}
        for activation in activations:
            source = Path(activation["context"]["inbox"]) / activation["context"]["filename"]
            with source.open() as handle:
                rows[source.name] = sum(1 for _ in handle) - 1  # minus the header
            (source.parent / "processed").mkdir(exist_ok=True)
            shutil.move(source, source.parent / "processed" / source.name)
        return rows

    @task(multiple_outputs=False)
    def complete(activations: list[dict], processed: dict[str, int] | None) -> str:
        """TODO (Task 3): complete every activation's audit row (outcome "success" or "failed"), also when
        process_files failed, and let the run fail when processing did."""
        raise todo("11.5", 3, "implement the complete task in dags/ex11_5_inbox.py", "ex11_5_event_driven.md#task-3")

    activations = claim()
    complete(activations, process_files(activations))
