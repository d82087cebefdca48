"""Task 1: HttpPollingTrigger, checked the way the triggerer runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import pytest
from aiohttp import web

from fixtures.health_server import HealthServer
from tests.ex11_3_custom_trigger.conftest import wait_until
from tests.ex11_3_custom_trigger.probes import events_in_debug_loop
from tests.harness import collect_events, first_event, roundtrip, run_in_fresh_process
from tests.harness.airflow_processes import free_port
from tests.harness.remote import subject_module
from tests.harness.resources import resource_warnings
from tests.harness.time_travel import shifted

# A team's subclass (TeamHttpPollingTrigger): its serialize() must name the subclass, so the classpath comes
# from the class. It is defined beside the learner's class, where the trigger runs.
team = subject_module("tests.ex11_3_custom_trigger.team_triggers")


def make(custom_trigger, server: HealthServer, **overrides):
    kwargs = dict(endpoint=server.health_url, response_check="status", expected_value="healthy",
                  poll_interval=0.02, timeout=5.0)
    return custom_trigger.HttpPollingTrigger(**{**kwargs, **overrides})


def payload_of(events, call: str) -> dict:
    assert len(events) == 1, f"{call}: expected exactly one TriggerEvent, got {len(events)}: {events!r}"
    return events[0].payload


@pytest.mark.criterion("ex11_3.t1.serialize_roundtrip")
def test_serialize_keeps_every_argument_and_the_importable_classpath(custom_trigger, target):
    trigger = custom_trigger.HttpPollingTrigger(
        endpoint="http://127.0.0.1:9/api/v2/status", headers={"Authorization": "Bearer t0k3n", "X-Team": "data"},
        response_check="data.state", expected_value="done", poll_interval=7.5, timeout=123.0,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == f"{target.package}.custom_trigger.HttpPollingTrigger", (
        f"serialize() classpath: expected {target.package}.custom_trigger.HttpPollingTrigger "
        f"(derived from the class), got {classpath!r}"
    )
    expected = {"endpoint": "http://127.0.0.1:9/api/v2/status",
                "headers": {"Authorization": "Bearer t0k3n", "X-Team": "data"},
                "response_check": "data.state", "expected_value": "done", "poll_interval": 7.5, "timeout": 123.0}
    assert kwargs == expected, f"serialize() kwargs: expected {expected!r}, got {kwargs!r}"
    rebuilt = roundtrip(trigger)
    assert rebuilt.serialize() == (classpath, kwargs), "the trigger rebuilt from serialize() serializes differently"


@pytest.mark.criterion("ex11_3.t1.serialize_roundtrip")
def test_a_subclass_serializes_its_own_classpath():
    trigger = team.TeamHttpPollingTrigger("http://127.0.0.1:9/health", expected_value="up")
    rebuilt = roundtrip(trigger)
    assert team.class_of(rebuilt) is team.TeamHttpPollingTrigger, (
        f"serialize() of a subclass: expected it to rebuild TeamHttpPollingTrigger, got "
        f"{team.class_of(rebuilt).__qualname__}"
    )


@pytest.mark.criterion("ex11_3.t1.serialize_roundtrip")
def test_defaults_round_trip_too(custom_trigger):
    rebuilt = roundtrip(custom_trigger.HttpPollingTrigger("http://127.0.0.1:9/health"))
    _, kwargs = rebuilt.serialize()
    assert (kwargs["response_check"], kwargs["expected_value"], kwargs["poll_interval"], kwargs["timeout"]) == (
        "status", "ready", 30.0, 3600.0
    ), f"HttpPollingTrigger(endpoint) rebuilt: expected the seed's defaults, got {kwargs!r}"


@pytest.mark.integration  # a second Python process importing Airflow: seconds, not milliseconds
@pytest.mark.criterion("ex11_3.t1.fresh_process")
def test_rebuilt_in_a_fresh_process_reaches_its_event(custom_trigger, health_server):
    # The API wants a token: everything the trigger needs, its headers included, must travel in serialize().
    health_server.require_bearer("fr3sh")
    trigger = make(custom_trigger, health_server, headers={"Authorization": "Bearer fr3sh"})
    payload = run_in_fresh_process(trigger, timeout=30)
    assert payload.get("status") == "success" and payload.get("value") == "healthy", (
        f"trigger with an Authorization header rebuilt from its classpath and kwargs in a new process against a "
        f"healthy API that wants that token: expected a success event with value 'healthy', got {payload!r}"
    )


@pytest.mark.criterion("ex11_3.t1.fires_when_ready")
@pytest.mark.asyncio
async def test_fires_after_the_switch_to_healthy(custom_trigger, health_server):
    health_server.force("maintenance")
    task = asyncio.create_task(first_event(make(custom_trigger, health_server), within=15))
    await wait_until(lambda: len(health_server.requests) >= 3, "three polls during maintenance", task)
    health_server.force("healthy")
    payload = (await task).payload
    assert payload.get("status") == "success", f"after the switch to healthy: expected status 'success', got {payload!r}"
    assert payload.get("value") == "healthy", f"success event: expected value 'healthy', got {payload!r}"
    assert payload.get("attempts", 0) >= 4, f"success event: expected attempts >= 4 (3 in maintenance), got {payload!r}"
    assert isinstance(payload.get("elapsed"), int | float), f"success event: expected a numeric elapsed, got {payload!r}"


@pytest.mark.criterion("ex11_3.t1.fires_when_ready")
@pytest.mark.asyncio
async def test_every_event_names_its_endpoint(custom_trigger, health_server):
    payloads = {"success": (await first_event(make(custom_trigger, health_server), within=10)).payload}
    health_server.force("maintenance")
    payloads["timeout"] = (await first_event(make(custom_trigger, health_server, timeout=0.2), within=10)).payload
    health_server.force(None)
    health_server.require_bearer("right")
    payloads["error"] = (await first_event(make(custom_trigger, health_server), within=10)).payload
    named = {kind: payload.get("endpoint") for kind, payload in payloads.items()}
    assert named == dict.fromkeys(payloads, health_server.health_url), (
        f"success, timeout and error events: expected each to carry endpoint {health_server.health_url!r}, "
        f"got {payloads!r}")


@pytest.mark.criterion("ex11_3.t1.fires_when_ready")
@pytest.mark.asyncio
async def test_follows_a_dotted_path_and_sends_the_headers(custom_trigger, health_server):
    health_server.require_bearer("s3cr3t")
    for state in ("building", "building"):
        health_server.queue_response(200, {"data": {"state": state}})
    health_server.queue_response(200, {"data": {"state": "ready", "rows": 10}})
    trigger = make(custom_trigger, health_server, headers={"Authorization": "Bearer s3cr3t"}, response_check="data.state",
                   expected_value="ready")
    payload = (await first_event(trigger, within=10)).payload
    assert payload.get("status") == "success" and payload.get("value") == "ready", (
        f"response_check='data.state' against building, building, ready: expected success with value 'ready', "
        f"got {payload!r}"
    )
    sent = {h.get("Authorization") for h in health_server.received_headers}
    assert sent == {"Bearer s3cr3t"}, f"every poll must send the headers given; Authorization seen: {sent!r}"


@pytest.mark.criterion("ex11_3.t1.fires_when_ready")
@pytest.mark.asyncio
@pytest.mark.parametrize(("body", "check", "expected", "ready"), [
    ({"ok": True}, "ok", "true", True),
    ({"count": 3}, "count", "3", True),
    ({"count": 2}, "count", "3", False),
    ({"state": 503}, "state", "healthy", False),
    ({"items": [{"state": "x"}, {"state": "ready"}]}, "items.1.state", "ready", True),
    ({"items": [{"state": "ready"}]}, "items.1.state", "ready", False),
    ({"items": [{"state": "ready"}]}, "items.x.state", "ready", False),
    ({"data": {"state": "ready"}}, "data.missing", "ready", False),
])
async def test_a_json_value_matches_its_text(custom_trigger, health_server, body, check, expected, ready):
    health_server.queue_response(200, body)
    trigger = make(custom_trigger, health_server, response_check=check, expected_value=expected)
    payload = await trigger.check_once()
    got_ready = isinstance(payload, dict) and payload.get("status") == "success"
    assert got_ready if ready else payload is None, (
        f"check_once() on {body!r}, response_check={check!r}, expected_value={expected!r}: expected "
        f"{'the success payload' if ready else 'not ready (None): a value that differs or a path the answer does not have is not an error'}, "
        f"got {payload!r}")


@pytest.mark.criterion("ex11_3.t1.single_event")
@pytest.mark.asyncio
async def test_yields_exactly_one_event_then_returns(custom_trigger, health_server):
    events = await collect_events(make(custom_trigger, health_server), within=10)
    payload_of(events, "run() to its end against a healthy API")
    health_server.force("maintenance")
    events = await collect_events(make(custom_trigger, health_server, timeout=0.2), within=10)
    assert payload_of(events, "run() to its end with timeout=0.2")["status"] == "timeout"


@pytest.mark.criterion("ex11_3.t1.times_out")
@pytest.mark.asyncio
@pytest.mark.parametrize(("status", "body", "value"), [
    (200, "{not json", None), (200, '{"other": 1}', None), (503, '{"other": 1}', None),
    (503, '{"status": "maintenance"}', "maintenance"),
])
async def test_the_timeout_event_reports_the_last_answer(custom_trigger, health_server, status, body, value):
    for _ in range(200):  # more answers than polls before the deadline
        health_server.queue_response(status, body)
    events = await collect_events(make(custom_trigger, health_server, poll_interval=0.02, timeout=0.3), within=10)
    payload = payload_of(events, f"run() with timeout=0.3 against HTTP {status} {body}")
    seen = {key: payload.get(key) for key in ("status", "last_http_status", "last_value")}
    expected = {"status": "timeout", "last_http_status": status, "last_value": value}
    assert seen == expected, f"answers HTTP {status} {body}, then the deadline: expected {expected}, got {payload!r}"


@pytest.mark.criterion("ex11_3.t1.times_out")
@pytest.mark.asyncio
async def test_times_out_on_an_api_that_never_gets_healthy(custom_trigger, health_server):
    health_server.force("maintenance")
    events = await collect_events(make(custom_trigger, health_server, poll_interval=0.05, timeout=0.4), within=5)
    payload = payload_of(events, "run() with timeout=0.4 against an API in maintenance")
    assert payload.get("status") == "timeout", f"expected status 'timeout', got {payload!r}"
    assert payload.get("last_http_status") == 503, f"timeout event: expected last_http_status 503, got {payload!r}"
    assert payload.get("last_value") == "maintenance", (
        f"timeout event after 503 {{'status': 'maintenance'}} answers: expected last_value 'maintenance' (the "
        f"field of the last answer, whatever its status), got {payload!r}")
    assert 0.4 <= payload.get("elapsed", -1) < 2.0, f"timeout event: expected elapsed in [0.4, 2), got {payload!r}"
    assert payload.get("attempts", 0) >= 2, f"timeout event: expected several attempts, got {payload!r}"
    polls = len(health_server.requests)
    await asyncio.sleep(0.2)
    assert len(health_server.requests) == polls, "requests kept arriving after the timeout event"


@pytest.mark.criterion("ex11_3.t1.times_out")
@pytest.mark.asyncio
async def test_the_deadline_holds_with_a_poll_interval_longer_than_the_timeout(custom_trigger, health_server):
    health_server.force("maintenance")
    started = time.monotonic()
    events = await collect_events(make(custom_trigger, health_server, poll_interval=20, timeout=0.5), within=15)
    took = time.monotonic() - started
    payload = payload_of(events, "run() with poll_interval=20, timeout=0.5 against an API in maintenance")
    assert payload.get("status") == "timeout" and took < 10, (
        f"run() with poll_interval=20 and timeout=0.5: expected the timeout event near 0.5 s (the last sleep cut "
        f"at the deadline), got {payload!r} after {took:.1f} s")


@pytest.mark.criterion("ex11_3.t1.times_out")
@pytest.mark.asyncio
async def test_timeout_bounds_a_slow_api(custom_trigger, health_server):
    health_server.latency = 2.0  # every answer takes longer than the whole timeout
    events = await collect_events(make(custom_trigger, health_server, timeout=0.3), within=1.5)
    payload = payload_of(events, "run() with timeout=0.3 against an API answering after 2 s")
    assert payload.get("status") == "timeout", f"expected status 'timeout' within ~0.3 s, got {payload!r}"


@contextlib.asynccontextmanager
async def answers_once_then_hangs(status: int, body: dict):
    """An API in this event loop: the first GET gets `status` and `body`, every later one never returns."""
    requests, hang = [], asyncio.Event()

    async def handle(request: web.Request) -> web.StreamResponse:
        requests.append(request.path)
        if len(requests) > 1:
            await hang.wait()
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/api/health", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/api/health", requests
    finally:
        hang.set()
        await runner.cleanup()


@pytest.mark.criterion("ex11_3.t1.times_out")
@pytest.mark.asyncio
async def test_timeout_reports_the_last_real_answer_not_the_request_it_cut_off(custom_trigger):
    async with answers_once_then_hangs(200, {"status": "warming_up"}) as (url, requests):
        trigger = custom_trigger.HttpPollingTrigger(endpoint=url, response_check="status", expected_value="healthy",
                                                    poll_interval=0.05, timeout=2.0)
        events = await collect_events(trigger, within=10)
    payload = payload_of(events, "run() with timeout=2 against an API that answers 200 once, then hangs")
    assert len(requests) >= 2, f"expected a second request (the one the deadline cuts off), got {requests}"
    assert payload.get("status") == "timeout" and payload.get("last_http_status") == 200 and (
        payload.get("last_value") == "warming_up"), (
        f"timeout event after one answer (200, status 'warming_up') and a request cut off by the deadline: "
        f"expected last_http_status 200 and last_value 'warming_up' (the last real answer), got {payload!r}"
    )


@pytest.mark.criterion("ex11_3.t1.times_out")
@pytest.mark.asyncio
async def test_the_deadline_is_measured_on_a_monotonic_clock(custom_trigger, health_server, monkeypatch):
    health_server.force("maintenance")
    task = asyncio.create_task(first_event(make(custom_trigger, health_server, poll_interval=0.02, timeout=30), within=20))
    await wait_until(lambda: len(health_server.requests) >= 1, "the first poll", task)
    # The wall clock jumps an hour ahead (an NTP correction, a VM resumed): the deadline must not move.
    trigger_time, trigger_timezone = subject_module("time"), subject_module("airflow.sdk.timezone")
    monkeypatch.setattr(trigger_time, "time", shifted(trigger_time.time, 3600))
    monkeypatch.setattr(trigger_timezone, "utcnow", shifted(trigger_timezone.utcnow, 3600))
    polls = len(health_server.requests)
    await wait_until(lambda: len(health_server.requests) >= polls + 2 or task.done(), "two more polls")
    health_server.force("healthy")
    payload = (await task).payload
    assert payload.get("status") == "success", (
        f"run() with timeout=30: the wall clock jumped 1 h ahead after the first poll, then the API got healthy: "
        f"expected success (timeout measured on a monotonic clock), got {payload!r}"
    )


@pytest.mark.criterion("ex11_3.t1.fatal_errors")
@pytest.mark.asyncio
async def test_a_401_is_an_error_not_a_reason_to_poll_again(custom_trigger, health_server):
    health_server.require_bearer("right")
    events = await collect_events(make(custom_trigger, health_server, headers={"Authorization": "Bearer wrong"}), within=5)
    payload = payload_of(events, "run() with a wrong token (401)")
    assert payload.get("status") == "error", f"HTTP 401: expected status 'error', got {payload!r}"
    assert "401" in str(payload.get("message", "")) + str(payload.get("http_status", "")), (
        f"error event for a 401: expected the status code in it, got {payload!r}"
    )
    assert len(health_server.requests) == 1, f"HTTP 401: expected 1 request, got {len(health_server.requests)}"
    assert "wrong" not in str(payload), f"the error event must not carry the token: {payload!r}"


@pytest.mark.criterion("ex11_3.t1.fatal_errors")
@pytest.mark.asyncio
async def test_no_url_password_reaches_the_log_while_polling(custom_trigger, health_server, learner_log):
    learner_log.set_level(logging.DEBUG)
    health_server.queue_response(503, {"status": "maintenance"})
    health_server.queue_response(200, "not json")
    with_password = health_server.health_url.replace("http://", "http://robot:pa55word@", 1)
    payload = payload_of(await collect_events(make(custom_trigger, health_server, endpoint=with_password), within=5),
                         "run() against a URL with a password: a 503, malformed JSON, then healthy")
    logged = learner_log.text()
    assert payload.get("status") == "success", f"a 503, malformed JSON, then healthy: expected success, got {payload!r}"
    where = [w for w, text in (("the event", str(payload)), ("the log", logged)) if "pa55word" in text]
    assert not where, (
        f"run() polling a URL with a password through a 503, malformed JSON and success: expected the password "
        f"masked everywhere, found it in {where}")


@pytest.mark.criterion("ex11_3.t1.fatal_errors")
@pytest.mark.asyncio
async def test_no_credential_reaches_an_event_or_the_log(custom_trigger, health_server, learner_log):
    health_server.require_bearer("right")
    with_password = health_server.health_url.replace("http://", "http://robot:pa55word@", 1)
    payloads = [payload_of(await collect_events(make(custom_trigger, health_server, endpoint=with_password), within=5),
                           "run() against a URL with a password, answered 401"),
                payload_of(await collect_events(make(custom_trigger, health_server,
                                                     headers={"Authorization": "Bearer t0k3n"}), within=5),
                           "run() with a wrong bearer token, answered 401")]
    logged = learner_log.text()
    assert [p.get("status") for p in payloads] == ["error", "error"], f"two 401s: expected two errors, got {payloads}"
    leaks = {secret: [where for where, text in (("events", str(payloads)), ("log", logged)) if secret in text]
             for secret in ("pa55word", "t0k3n")}
    assert not any(leaks.values()), (
        f"a password in the endpoint URL and an Authorization header: expected neither in the events nor the "
        f"log, found {leaks}")
    assert "robot" in str(payloads[0].get("endpoint")), (
        f"the endpoint with its password masked still names the URL: got {payloads[0].get('endpoint')!r}")


@pytest.mark.criterion("ex11_3.t1.fatal_errors")
@pytest.mark.parametrize("status", [400, 403])
@pytest.mark.asyncio
async def test_any_other_4xx_is_an_error(custom_trigger, health_server, status):
    health_server.queue_response(status, '{"status": "nope"}')
    events = await collect_events(make(custom_trigger, health_server), within=5)
    payload = payload_of(events, f"run() against an HTTP {status}")
    assert payload.get("status") == "error", f"HTTP {status}: expected status 'error', got {payload!r}"
    assert len(health_server.requests) == 1, f"HTTP {status}: expected 1 request, got {len(health_server.requests)}"


@pytest.mark.criterion("ex11_3.t1.fatal_errors")
@pytest.mark.parametrize("expression", ["", "data..state", ".status"])
@pytest.mark.asyncio
async def test_an_invalid_path_expression_is_an_error(custom_trigger, health_server, expression):
    events = await collect_events(make(custom_trigger, health_server, response_check=expression), within=3)
    payload = payload_of(events, f"run() with response_check={expression!r}")
    assert payload.get("status") == "error", f"response_check={expression!r}: expected status 'error', got {payload!r}"
    assert any(f"{quote}{expression}{quote}" in str(payload.get("message")) for quote in "'\"`"), (
        f"response_check={expression!r}: expected the error message to quote the expression, got {payload!r}")


@pytest.mark.criterion("ex11_3.t1.transient_errors")
@pytest.mark.asyncio
async def test_5xx_malformed_json_and_retryable_4xx_are_polled_again(custom_trigger, health_server):
    answers = [(500, "boom"), (200, "{not json"), (404, "{}"), (429, "{}"), (408, "{}"), (502, "<html>")]
    for status, body in answers:
        health_server.queue_response(status, body)
    payload = (await first_event(make(custom_trigger, health_server), within=10)).payload
    assert payload.get("status") == "success", (
        f"after {[s for s, _ in answers]} then healthy: expected status 'success', got {payload!r}"
    )
    assert payload.get("attempts") == len(answers) + 1, (
        f"expected {len(answers) + 1} attempts (one per answer), got {payload!r}"
    )


@pytest.mark.criterion("ex11_3.t1.transient_errors")
@pytest.mark.asyncio
async def test_connection_errors_are_polled_again(custom_trigger, health_server):
    health_server.drop_connections = True
    task = asyncio.create_task(first_event(make(custom_trigger, health_server), within=10))
    await wait_until(lambda: len(health_server.requests) >= 3, "three dropped connections", task)
    health_server.drop_connections = False
    payload = (await task).payload
    assert payload.get("status") == "success", f"connections reset, then healthy: expected success, got {payload!r}"
    unreachable = f"http://127.0.0.1:{free_port()}/api/health"
    events = await collect_events(make(custom_trigger, health_server, endpoint=unreachable, timeout=0.2), within=5)
    payload = payload_of(events, "run() against a closed port")
    assert payload.get("status") == "timeout", f"connection refused until the timeout: expected 'timeout', got {payload!r}"


@pytest.mark.criterion("ex11_3.t1.non_blocking")
def test_never_blocks_the_event_loop(custom_trigger, health_server):
    health_server.force("maintenance")
    health_server.latency = 0.25  # a blocking HTTP client would hold the loop this long per poll
    # The first request of a process pays aiohttp's one-time set-up; what counts is what every poll does.
    asyncio.run(collect_events(make(custom_trigger, health_server, poll_interval=0.25, timeout=0.3), within=10))
    trigger = make(custom_trigger, health_server, poll_interval=0.25, timeout=1.2)
    # A blocking call holds the loop for the whole 0.25 s latency; 0.2 s leaves a loaded machine its pauses.
    result, slow = events_in_debug_loop(trigger, within=10, slow_callback=0.2)
    assert not slow, f"run() blocked the event loop (asyncio debug, slow_callback_duration=0.2 s): {slow[:3]}"
    assert payload_of(result, "run() under asyncio debug")["status"] == "timeout"


@pytest.mark.criterion("ex11_3.t1.no_unclosed_session")
@pytest.mark.parametrize("ending", ["timeout", "error"])
def test_the_session_is_closed_however_the_run_ends(custom_trigger, health_server, sessions, learner_log, ending):
    if ending == "timeout":
        health_server.force("maintenance")
        trigger = make(custom_trigger, health_server, timeout=0.3)
    else:
        health_server.require_bearer("right")
        trigger = make(custom_trigger, health_server, headers={"Authorization": "Bearer wrong"})

    async def drain() -> list:
        return [event async for event in trigger.run()]  # to its end, as the triggerer runs it

    with resource_warnings() as unclosed:  # a garbage collection at its end: what is left open warns
        events = asyncio.run(drain())
    statuses = [e.payload.get("status") for e in events]
    assert statuses == [ending], f"run() to its end ({ending}): expected one {ending!r} event, got {statuses}"
    unclosed += [m for m in learner_log.messages() if "Unclosed" in m]
    assert sessions and all(s.closed for s in sessions) and not unclosed, (
        f"run() ended with a {ending} event: expected its aiohttp.ClientSession closed, "
        f"{sum(not s.closed for s in sessions)} of {len(sessions)} still open, warnings {unclosed[:3]}")


@pytest.mark.criterion("ex11_3.t1.no_unclosed_session")
def test_one_session_per_run_and_nothing_left_open(custom_trigger, health_server, sessions, learner_log):
    for _ in range(3):
        health_server.queue_response(503, '{"status": "maintenance"}')
    with resource_warnings() as unclosed:  # a garbage collection at its end: what is left open warns
        payload = asyncio.run(first_event(make(custom_trigger, health_server), within=10)).payload
    assert payload.get("status") == "success", f"3 x 503 then healthy: expected success, got {payload!r}"
    unclosed += [m for m in learner_log.messages() if "Unclosed" in m]
    assert not unclosed, f"run() left resources open: {unclosed[:3]}"
    assert len(sessions) == 1, f"4 polls in one run(): expected one aiohttp.ClientSession, got {len(sessions)}"
    assert all(s.closed for s in sessions), "run() ended with its aiohttp.ClientSession still open"
