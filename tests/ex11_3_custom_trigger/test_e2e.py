"""Tasks 1 and 2 in a real deployment: the DAG deferred by a real worker, its trigger run by the triggerer
process (api-server, scheduler, dag-processor and triggerer started separately on loopback)."""

from __future__ import annotations

import re
import time

import pytest

DAG_ID = "ex11_3_http_polling"


@pytest.mark.e2e
@pytest.mark.timeout(180)
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
