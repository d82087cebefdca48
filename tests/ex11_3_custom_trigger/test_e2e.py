"""Tasks 1 and 2 in a real deployment: the DAG deferred by a real worker, its trigger run by the triggerer
process (api-server, scheduler, dag-processor and triggerer started separately on loopback); then a second
triggerer, the first one killed mid-wait, and every wait finished by the survivor exactly once."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

DAG_ID = "ex11_3_http_polling"


@pytest.mark.e2e
@pytest.mark.timeout(300)  # its waits stretch on a loaded machine
@pytest.mark.criterion("ex11_3.t2.triggerer_e2e")
def test_the_triggerer_runs_the_trigger_and_the_dag_succeeds(airflow_processes, e2e_health_server, target):
    started = time.monotonic()
    run_id = airflow_processes.trigger_dag(DAG_ID)
    ti = airflow_processes.wait_for_task_state(DAG_ID, run_id, "wait_for_api", {"deferred"}, timeout=60)
    expected_classpath = f"{target.package}.custom_trigger.HttpPollingTrigger"
    trigger = ti.get("trigger") or {}
    assert trigger.get("classpath") == expected_classpath, (
        f"deferred task's trigger record: expected classpath {expected_classpath!r}, got {trigger!r}"
    )
    # Airflow 3.3 race (apache/airflow#72716): if the trigger fires before the scheduler has drained the
    # worker's defer-exit "success" event, the resumed task is failed as "state changed externally".
    # Wait for the scheduler to record the deferral first, as it would in any wait longer than seconds.
    airflow_processes.wait_for_log(
        "scheduler", rf"TaskInstance Finished: dag_id={DAG_ID}, task_id=wait_for_api, run_id={re.escape(run_id)},"
        rf"[^\n]*state=deferred", timeout=60,
    )
    # The triggerer picks the trigger up and polls the (still in maintenance) API itself.
    polls = len(e2e_health_server.requests)
    airflow_processes.wait_for(
        "the triggerer polling the API", lambda: len(e2e_health_server.requests) >= polls + 2, timeout=30
    )
    e2e_health_server.force("healthy")
    state = airflow_processes.wait_for_run(DAG_ID, run_id, timeout=60)
    if state != "success":
        logs = "\n".join(f"--- {p.relative_to(airflow_processes.home)}\n{p.read_text(errors='replace')[-2500:]}"
                         for p in airflow_processes.task_log_files(DAG_ID))
        pytest.fail(f"DAG run {run_id}: expected 'success', got {state!r}\n{logs}\n{airflow_processes.log_tails()}")
    answer = airflow_processes.xcom(DAG_ID, run_id, "wait_for_api")
    assert isinstance(answer, dict) and answer.get("value") == "healthy", (
        f"XCom of wait_for_api: expected the success payload with value 'healthy', got {answer!r}"
    )
    trigger_logs = [p for p in airflow_processes.task_log_files(DAG_ID) if ".trigger." in p.name]
    assert trigger_logs, "no log file written by the triggerer (attempt=N.log.trigger.<job>.log) for the task"
    trigger_log = "\n".join(p.read_text(errors="replace") for p in trigger_logs)
    assert "Trigger fired event" in trigger_log and "wait_for_api" in trigger_log, (
        f"the triggerer's log of the task: expected it to start the trigger and fire its event, got:\n"
        f"{trigger_log[-2000:]}"
    )
    print(f"e2e: triggered to success in {time.monotonic() - started:.1f} s")


FAILOVER_RUNS = 3


def _triggerer_ids(deployment, run_ids: list[str]) -> dict[str, int | None]:
    """run id -> the id of the triggerer job its deferred task's trigger is assigned to (None: unassigned)."""
    return {run_id: ((deployment.task_instance(DAG_ID, run_id, "wait_for_api").get("trigger") or {})
                     .get("triggerer_id")) for run_id in run_ids}


def _trigger_logs(deployment, run_id: str, job_id: int) -> list[Path]:
    """The log files triggerer job `job_id` wrote for the run's deferred task."""
    return [path for path in deployment.task_log_files(DAG_ID)
            if f"run_id={run_id}" in str(path) and path.name.endswith(f".trigger.{job_id}.log")]


def _alive_triggerer_ids(deployment) -> set[int]:
    jobs = deployment.api("GET", "/jobs", params={"job_type": "TriggererJob", "is_alive": True, "limit": 100})
    return {job["id"] for job in jobs.get("jobs", [])}


@pytest.mark.e2e
@pytest.mark.timeout(420)  # its waits stretch on a loaded machine
@pytest.mark.criterion("ex11_3.t2.triggerer_failover")
def test_a_killed_triggerers_waits_finish_on_another_exactly_once(airflow_processes, e2e_health_server):
    deployment = airflow_processes
    started = time.monotonic()
    e2e_health_server.force("maintenance")
    run_ids = [deployment.trigger_dag(DAG_ID) for _ in range(FAILOVER_RUNS)]
    for run_id in run_ids:
        deployment.wait_for_task_state(DAG_ID, run_id, "wait_for_api", {"deferred"}, timeout=90)
        deployment.wait_for_log(  # the deferral recorded before anything fires (see the test above)
            "scheduler", rf"TaskInstance Finished: dag_id={DAG_ID}, task_id=wait_for_api, "
            rf"run_id={re.escape(run_id)},[^\n]*state=deferred", timeout=60,
        )
    # Every trigger held by the one triggerer running so far.
    held = deployment.wait_for("every trigger assigned to the first triggerer",
                               lambda: (ids if None not in (ids := _triggerer_ids(deployment, run_ids)).values()
                                        else None), timeout=60)
    (victim_id,) = set(held.values())
    deployment.wait_for("the first triggerer running every trigger (its trigger log file for each task)",
                        lambda: all(_trigger_logs(deployment, run_id, victim_id) for run_id in run_ids), timeout=30)
    deployment.launch("triggerer-2", "triggerer")
    survivor_id = deployment.wait_for(
        "the second triggerer alive (a TriggererJob heartbeating besides the first)",
        lambda: next(iter(_alive_triggerer_ids(deployment) - {victim_id}), None), timeout=90,
    )
    polls = len(e2e_health_server.requests)
    deployment.kill("triggerer")  # SIGKILL, the whole process group: no cleanup, no goodbye
    killed_at = time.monotonic()
    moved = deployment.wait_for(
        f"every trigger reassigned from the killed triggerer (job {victim_id}) to job {survivor_id}",
        lambda: (ids if set((ids := _triggerer_ids(deployment, run_ids)).values()) == {survivor_id} else None),
        timeout=90,
    )
    assert set(moved) == set(run_ids)
    deployment.wait_for(  # the survivor re-created each trigger from its kwargs and polls the API itself
        "the second triggerer polling the API", lambda: len(e2e_health_server.requests) >= polls + len(run_ids),
        timeout=60,
    )
    failover_s = time.monotonic() - killed_at
    e2e_health_server.force("healthy")
    for run_id in run_ids:
        state = deployment.wait_for_run(DAG_ID, run_id, timeout=90)
        ti = deployment.task_instance(DAG_ID, run_id, "wait_for_api")
        assert state == "success" and ti["state"] == "success" and ti["try_number"] == 1, (
            f"run {run_id} after the failover: expected run and wait_for_api 'success' on try 1, got run "
            f"{state!r}, task {ti['state']!r} on try {ti['try_number']}\n"
            + deployment.task_log(DAG_ID, run_id, "wait_for_api", max(ti["try_number"], 1))[-3000:]
        )
        answer = deployment.xcom(DAG_ID, run_id, "wait_for_api")
        assert isinstance(answer, dict) and answer.get("status") == "success" and answer.get("value") == "healthy", (
            f"XCom of wait_for_api in {run_id}: expected the success payload with value 'healthy', got {answer!r}"
        )
    logs = {path: path.read_text(errors="replace") for path in deployment.task_log_files(DAG_ID)
            if ".trigger." in path.name}
    for run_id in run_ids:
        mine = {path.name: text for path, text in logs.items() if f"run_id={run_id}" in str(path)}
        by_victim = [text for name, text in mine.items() if name.endswith(f".trigger.{victim_id}.log")]
        by_survivor = [text for name, text in mine.items() if name.endswith(f".trigger.{survivor_id}.log")]
        fired = sum(text.count("Trigger fired event") for text in mine.values())
        assert by_victim and by_survivor and fired == 1 and "Trigger fired event" in by_survivor[0], (
            f"run {run_id}: expected the trigger started by job {victim_id}, restarted by job {survivor_id} "
            f"and one event fired, by the survivor; got trigger logs {sorted(mine)} with {fired} event(s):\n"
            + "\n".join(f"--- {name}\n{text[-1500:]}" for name, text in mine.items())
        )
    print(f"e2e failover: {len(run_ids)} waits moved and finished {failover_s:.1f} s after the SIGKILL; "
          f"test {time.monotonic() - started:.1f} s")
