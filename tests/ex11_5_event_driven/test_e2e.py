"""Tasks 1 and 2 in a real deployment (api-server, scheduler, dag-processor and triggerer started on
loopback): a file in the landing zone and a signed webhook call each start exactly one DAG run."""

from __future__ import annotations

import time

import httpx
import pytest

from fixtures.atomic import atomic_write_text
from fixtures.webhook_sender import WebhookSender, minio_notification
from tests.ex11_5_event_driven.conftest import ASSET_URI, SECRET
from tests.ex11_5_event_driven.probes import start_server

QUIET_SECONDS = 6  # after the run: several watcher polls (1 s apart) in which a re-fire would show


def runs(deployment, dag_id: str) -> list[dict]:
    return deployment.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100}).get("dag_runs", [])


def wait_for_one_successful_run(deployment, dag_id: str, run_type: str) -> list[dict]:
    def finished() -> list[dict] | None:
        mine = [r for r in runs(deployment, dag_id) if r["run_type"] == run_type]
        return mine if mine and all(r["state"] in ("success", "failed") for r in mine) else None

    mine = deployment.wait_for(f"an {run_type} run of {dag_id} finished", finished, timeout=90)
    assert [r["state"] for r in mine] == ["success"], f"{dag_id}: expected one successful run, got {mine!r}"
    return mine


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.criterion("ex11_5.t1.e2e_one_run_per_file")
def test_a_dropped_file_starts_exactly_one_run(watcher_ready, airflow_processes, e2e_dirs):
    dag_id = "ex11_5_landing_zone"
    dag = airflow_processes.wait_for_dag(dag_id)
    atomic_write_text(e2e_dirs["landing"] / "sales-0001.csv", "id,amount\n1,10\n2,20\n")
    airflow_processes.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})  # watchers run for active DAGs
    # The dag-processor starts an unpaused DAG's watchers when it next parses the file (every 30 s by default):
    # ask for that parse now, as `airflow dags reserialize` or the UI's "Reparse" would.
    airflow_processes.api("PUT", f"/parseDagFile/{dag['file_token']}")
    mine = wait_for_one_successful_run(airflow_processes, dag_id, "asset_triggered")
    rows = airflow_processes.xcom(dag_id, mine[0]["dag_run_id"], "load_new_objects")
    key = (e2e_dirs["landing"] / "sales-0001.csv").as_uri()
    assert rows == {key: 2}, f"the asset-triggered run's XCom: expected {{{key!r}: 2}}, got {rows!r}"
    time.sleep(QUIET_SECONDS)
    again = [r for r in runs(airflow_processes, dag_id) if r["run_type"] == "asset_triggered"]
    assert len(again) == 1, f"one file dropped: expected exactly one run, got {len(again)}: {again!r}"


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.criterion("ex11_5.t1.dag_loads_files")
def test_each_asset_triggered_run_loads_the_file_its_event_names(watcher_ready, airflow_processes, e2e_dirs):
    """Under dag.test() a run has no asset events: here the watcher's real events reach the DAG. Two files
    dropped one after the other: each run loads its own file, not what else is in the landing zone."""
    dag_id = "ex11_5_landing_zone"
    dag = airflow_processes.wait_for_dag(dag_id)
    airflow_processes.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    airflow_processes.api("PUT", f"/parseDagFile/{dag['file_token']}")
    for name, text in (("sales-0101.csv", "id,amount\n1,1\n2,2\n3,3\n"), ("sales-0102.csv", "id,amount\n9,9\n")):
        before = {r["dag_run_id"] for r in runs(airflow_processes, dag_id)}
        dropped = e2e_dirs["landing"] / name
        atomic_write_text(dropped, text)

        def finished_run(before=before) -> dict | None:
            new = [r for r in runs(airflow_processes, dag_id)
                   if r["run_type"] == "asset_triggered" and r["dag_run_id"] not in before]
            return next((r for r in new if r["state"] in ("success", "failed")), None)

        run = airflow_processes.wait_for(f"an asset-triggered run of {dag_id} for {name}", finished_run, timeout=90)
        assert run["state"] == "success", f"the asset-triggered run for {name}: expected success, got {run!r}"
        loaded = airflow_processes.xcom(dag_id, run["dag_run_id"], "load_new_objects")
        expected = {dropped.as_uri(): text.count("\n") - 1}
        assert loaded == expected, (
            f"the run triggered by the watcher's event for {name}: expected it to load the file its event names, "
            f"{expected!r}, got {loaded!r}")


@pytest.mark.e2e
@pytest.mark.timeout(300)
@pytest.mark.criterion("ex11_5.t2.e2e_one_run_per_webhook")
def test_a_signed_webhook_starts_exactly_one_run(receiver_ready, airflow_processes, event_driven):
    dag_id = "ex11_5_sales_refresh"
    airflow_processes.wait_for_dag(dag_id)
    airflow_processes.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
    token = httpx.get(f"{airflow_processes.base_url}/auth/token", timeout=10).raise_for_status().json()["access_token"]
    receiver = event_driven.WebhookReceiver(secret=SECRET, airflow_url=airflow_processes.base_url, airflow_token=token,
                                            asset_uri=ASSET_URI, retry_delays=(0.5, 1, 2, 4, 8))
    server = start_server(receiver.make_app)  # beside the learner's code: the judge only sends requests
    try:
        sender = WebhookSender(f"{server.url}{receiver.path}", SECRET)
        payload = minio_notification("landing/bronze/sales/2025-01-15.parquet")
        statuses = [sender.send(payload)[0], sender.send(payload)[0]]
        assert statuses[0] == 202 and statuses[1] in (200, 202), f"signed notification sent twice: got {statuses}"
        mine = wait_for_one_successful_run(airflow_processes, dag_id, "asset_triggered")
        collected = airflow_processes.xcom(dag_id, mine[0]["dag_run_id"], "collect_keys")
        assert collected.get("trigger") == "asset" and collected.get("keys") == ["bronze/sales/2025-01-15.parquet"], (
            f"the webhook-triggered run's XCom: expected the notification's key, got {collected!r}"
        )
        time.sleep(2)  # a second delivery, if the replay had been queued, would be in by now
    finally:
        server.stop()
    again = [r for r in runs(airflow_processes, dag_id) if r["run_type"] == "asset_triggered"]
    assert len(again) == 1, f"one notification (and its replay): expected exactly one run, got {again!r}"
