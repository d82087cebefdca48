"""Task 2: HttpPollingOperator, deferred and resumed as Airflow does it, and its DAG."""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    TaskDeferralTimeout,
    TaskDeferred,
)

from tests.harness import call_execute, drive_deferral, make_context
from tests.harness.dagrun import load_dag


def operator(custom_trigger, server, **overrides):
    kwargs = dict(task_id="wait_for_api", endpoint=server.health_url, response_check="status",
                  expected_value="healthy", poll_interval=0.02, timeout=5.0)
    return custom_trigger.HttpPollingOperator(**{**kwargs, **overrides})


@pytest.mark.criterion("ex11_3.t2.immediate_success")
def test_returns_at_once_when_the_api_is_already_ready(custom_trigger, health_server):
    run = drive_deferral(operator(custom_trigger, health_server))
    assert not run.deferred, f"API healthy at the first check: expected no deferral, got a deferral to {run.trigger!r}"
    assert isinstance(run.result, dict) and run.result.get("status") == "success" and run.result.get("value") == "healthy", (
        f"execute() with a healthy API: expected the success payload (status 'success', value 'healthy'), "
        f"got {run.result!r}"
    )
    assert len(health_server.requests) == 1, f"expected one synchronous check, got {len(health_server.requests)} requests"
    assert run.result.get("attempts") == 1, (
        f"execute() with a healthy API: one request made, expected attempts 1 in the payload, got {run.result!r}")


@pytest.mark.criterion("ex11_3.t2.defers_with_timeout")
def test_defers_to_the_trigger_with_a_timeout(custom_trigger, health_server):
    health_server.force("maintenance")
    task = operator(custom_trigger, health_server, headers={"X-Team": "data"}, poll_interval=3.0, timeout=120.0)
    with pytest.raises(TaskDeferred) as deferral:
        call_execute(task)
    deferred = deferral.value
    assert isinstance(deferred.trigger, custom_trigger.HttpPollingTrigger), (
        f"execute() during maintenance: expected a deferral to HttpPollingTrigger, got {deferred.trigger!r}"
    )
    _, kwargs = deferred.trigger.serialize()
    expected = {"endpoint": health_server.health_url, "headers": {"X-Team": "data"}, "response_check": "status",
                "expected_value": "healthy", "poll_interval": 3.0, "timeout": 120.0}
    assert kwargs == expected, f"the trigger must carry the operator's arguments: expected {expected!r}, got {kwargs!r}"
    assert deferred.timeout is not None, "defer() without timeout=: Airflow would never fail a trigger that hangs"
    assert timedelta(seconds=120) <= deferred.timeout <= timedelta(seconds=120 + 300), (
        f"defer(timeout=...) for timeout=120: expected 120 s plus at most a small grace, got {deferred.timeout}"
    )
    assert len(health_server.requests) == 1, f"expected one check before deferring, got {len(health_server.requests)}"
    health_server.queue_response(200, {"health": {"state": "degraded"}})
    with pytest.raises(TaskDeferred) as deferral:
        call_execute(operator(custom_trigger, health_server, response_check="health.state", expected_value="green"))
    _, kwargs = deferral.value.trigger.serialize()
    carried = {key: kwargs.get(key) for key in ("response_check", "expected_value")}
    assert carried == {"response_check": "health.state", "expected_value": "green"}, (
        f"response_check='health.state', expected_value='green' while degraded: the trigger must carry them, "
        f"got {kwargs!r}")


@pytest.mark.criterion("ex11_3.t2.defers_with_timeout")
def test_the_deferral_grace_stays_small_for_a_long_wait(custom_trigger, health_server):
    health_server.force("maintenance")
    with pytest.raises(TaskDeferred) as deferral:
        call_execute(operator(custom_trigger, health_server, poll_interval=30.0, timeout=3600.0))
    got = deferral.value.timeout
    # "A small grace": up to a quarter of the wait (or 5 minutes, for short waits), not a multiple of it.
    assert got is not None and timedelta(seconds=3600) <= got <= timedelta(seconds=3600 + 900), (
        f"defer(timeout=...) for a trigger timeout of 3600 s: expected 3600 s plus a small grace (at most a quarter "
        f"of the wait), got {got}")


@pytest.mark.criterion("ex11_3.t2.resumes_with_payload")
def test_resumes_on_a_new_instance_and_returns_the_payload(custom_trigger, health_server):
    health_server.queue_response(503, '{"status": "maintenance"}')  # the synchronous check sees maintenance
    run = drive_deferral(operator(custom_trigger, health_server))
    assert run.deferred, "503 at the first check: expected the operator to defer"
    assert run.method_name == "execute_complete", f"expected method_name 'execute_complete', got {run.method_name!r}"
    assert run.event.get("status") == "success", f"trigger event: expected success, got {run.event!r}"
    assert run.result == run.event, (
        f"execute_complete on the resumed instance: expected the event payload as XCom {run.event!r}, "
        f"got {run.result!r}"
    )


@pytest.mark.criterion("ex11_3.t2.fails_clearly")
def test_timeout_event_fails_the_task(custom_trigger, health_server):
    health_server.force("maintenance")
    with pytest.raises(AirflowException) as failure:
        drive_deferral(operator(custom_trigger, health_server, timeout=0.3), max_wait=10)
    assert not isinstance(failure.value, TaskDeferralTimeout), (
        "the trigger should report its own timeout (with the last status seen) before Airflow's deferral "
        "timeout fires: give defer(timeout=...) a little more than the trigger's timeout"
    )
    message = str(failure.value)
    assert "503" in message or "maintenance" in message, (
        f"timeout error: expected the last status seen (503 / maintenance) in the message, got {message!r}"
    )


@pytest.mark.criterion("ex11_3.t2.fails_clearly")
def test_error_event_and_unknown_events_fail_the_task(custom_trigger, health_server):
    task = operator(custom_trigger, health_server)
    context = make_context(task)
    for event in ({"status": "error", "message": "HTTP 401: unauthorized", "endpoint": health_server.health_url},
                  {"status": "surprise"}):
        with pytest.raises(AirflowException) as failure:
            task.execute_complete(context, event=event)
        assert str(failure.value), f"execute_complete(event={event!r}): expected an error message, got an empty one"
    health_server.require_bearer("right")
    with pytest.raises(AirflowException, match="401"):
        drive_deferral(operator(custom_trigger, health_server, headers={"Authorization": "Bearer wrong"}))


@pytest.mark.criterion("ex11_3.t2.non_deferrable")
def test_deferrable_false_polls_in_the_worker(custom_trigger, health_server):
    for _ in range(3):
        health_server.queue_response(503, '{"status": "maintenance"}')
    task = operator(custom_trigger, health_server, deferrable=False)
    try:
        result = call_execute(task)
    except TaskDeferred:
        pytest.fail("deferrable=False: execute() deferred; it must wait in the worker")
    assert isinstance(result, dict) and result.get("status") == "success", (
        f"deferrable=False, 3 x 503 then healthy: expected the success payload, got {result!r}"
    )
    assert len(health_server.requests) == 4, f"expected 4 requests, got {len(health_server.requests)}"


@pytest.mark.criterion("ex11_3.t2.non_deferrable")
def test_deferrable_false_keeps_the_same_timeout_and_error_semantics(custom_trigger, health_server):
    health_server.force("maintenance")
    with pytest.raises(AirflowException, match="503|maintenance"):
        call_execute(operator(custom_trigger, health_server, deferrable=False, timeout=0.3))
    health_server.force(None)
    health_server.require_bearer("right")
    with pytest.raises(AirflowException, match="401"):
        call_execute(operator(custom_trigger, health_server, deferrable=False, headers={"Authorization": "Bearer x"}))


@pytest.mark.integration
@pytest.mark.criterion("ex11_3.t2.dag_runs")
def test_http_polling_dag_succeeds(run_dag, health_server, monkeypatch):
    health_server.queue_response(503, '{"status": "maintenance"}')  # so the task defers
    env = {"WORKBOOK_HEALTH_URL": health_server.health_url, "WORKBOOK_POLL_INTERVAL": "0.05"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    task = load_dag("ex11_3_http_polling").get_task("wait_for_api")
    # Checked before the run: an operator polling another URL would wait out its timeout under dag.test().
    assert getattr(task, "endpoint", None) == health_server.health_url, (
        f"ex11_3_http_polling with WORKBOOK_HEALTH_URL={health_server.health_url}: expected wait_for_api to poll it, "
        f"its endpoint is {getattr(task, 'endpoint', None)!r}")
    result = run_dag("ex11_3_http_polling", env=env).assert_success()
    answer = result.xcoms.get("wait_for_api")
    assert isinstance(answer, dict) and answer.get("value") == "healthy", (
        f"XCom of wait_for_api: expected the success payload with value 'healthy', got {answer!r}"
    )
    assert len(health_server.requests) >= 2, (
        f"expected the check plus the trigger's poll(s), got {len(health_server.requests)} request(s)"
    )
    assert str(result.xcoms.get("report", "")).startswith("API healthy"), f"report XCom: {result.xcoms.get('report')!r}"
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        trigger_id = session.scalar(select(TaskInstance.trigger_id).where(
            TaskInstance.run_id == result.run_id, TaskInstance.task_id == "wait_for_api"))
    assert trigger_id is not None, (
        "dag.test() of ex11_3_http_polling with the API in maintenance at first: expected wait_for_api to defer "
        "(Airflow records its trigger), it waited in the worker instead")


@pytest.mark.criterion("ex11_3.t2.fails_clearly")
def test_the_errors_name_the_endpoint_and_what_was_last_seen(custom_trigger, health_server):
    task = operator(custom_trigger, health_server)
    context = make_context(task)
    endpoint = "http://status.example:9/api/health"
    timeout = {"status": "timeout", "endpoint": endpoint, "last_http_status": 418, "last_value": "brewing",
               "attempts": 61, "elapsed": 2.5}
    error = {"status": "error", "endpoint": endpoint, "message": "HTTP 401: token expired"}
    unknown = {"status": "surprise", "endpoint": endpoint}
    for event, expected in ((timeout, (endpoint, "418", "brewing", "61")),
                            (error, (endpoint, "HTTP 401: token expired")), (unknown, ("surprise",))):
        with pytest.raises(AirflowException) as raised:
            task.execute_complete(context, event=event)
        missing = [part for part in expected if part not in str(raised.value)]
        assert not missing, (
            f"execute_complete(event={event!r}): expected an error saying what the trigger reported "
            f"({', '.join(expected)}), got {str(raised.value)!r}, without {missing}")


@pytest.mark.criterion("ex11_3.t2.fails_clearly")
def test_each_kind_of_event_raises_the_error_the_chapter_names(custom_trigger, health_server):
    task = operator(custom_trigger, health_server)
    context = make_context(task)
    cases = [
        ({"status": "timeout", "endpoint": "http://api", "last_http_status": 503, "last_value": "maintenance",
          "attempts": 4, "elapsed": 1.0}, AirflowSensorTimeout),
        ({"status": "error", "endpoint": "http://api", "message": "HTTP 401: unauthorized"}, AirflowFailException),
    ]
    for event, expected in cases:
        with pytest.raises(AirflowException) as raised:
            task.execute_complete(context, event=event)
        assert isinstance(raised.value, expected), (
            f"execute_complete(event={event!r}): expected {expected.__name__}, got {type(raised.value).__name__}: "
            f"{raised.value}"
        )
    for event in ({"status": "surprise"}, "not a dict"):
        with pytest.raises(AirflowException) as raised:
            task.execute_complete(context, event=event)
        assert not isinstance(raised.value, AirflowSensorTimeout | AirflowFailException), (
            f"execute_complete(event={event!r}), an event it does not know: expected AirflowException, got "
            f"{type(raised.value).__name__}"
        )
