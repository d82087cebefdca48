"""Task 2: APIHealthSensor against the flapping health server."""

from __future__ import annotations

import json
import re
import time

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from tests.harness import make_context
from tests.harness.remote import subject_module

HEALTHY = {"status": "healthy", "version": "1.0"}


def make_sensor(custom_sensors, url, **kwargs):
    kwargs.setdefault("expected_response", HEALTHY)
    kwargs.setdefault("request_timeout", 2)
    kwargs.setdefault("retry_backoff", 0.01)
    return custom_sensors.APIHealthSensor(endpoint_url=url, task_id="wait_for_api", **kwargs)


def poke(sensor):
    return sensor.poke(make_context(sensor))


def is_done(result) -> bool:
    return bool(result.is_done if isinstance(result, PokeReturnValue) else result)


@pytest.mark.criterion("ex04.t2.checks_status_and_body")
def test_follows_the_maintenance_cycle(custom_sensors, health_server, sim_clock):
    sensor = make_sensor(custom_sensors, health_server.health_url)
    seen = []
    for at in (0, 70, 130):  # healthy, maintenance (503), healthy again
        sim_clock.advance(at - sim_clock.now())
        seen.append((health_server.state(), is_done(poke(sensor))))
    assert seen == [("healthy", True), ("maintenance", False), ("healthy", True)], (
        f"poke() across the health server's cycle: expected [healthy: True, maintenance: False, "
        f"healthy: True], got {seen}"
    )


@pytest.mark.criterion("ex04.t2.checks_status_and_body")
def test_extra_keys_are_fine_and_the_xcom_has_the_body(custom_sensors, health_server):
    result = poke(make_sensor(custom_sensors, health_server.health_url))
    assert isinstance(result, PokeReturnValue) and result.is_done, (
        f"poke() on a healthy API: expected PokeReturnValue(is_done=True, ...), got {result!r}"
    )
    xcom = result.xcom_value
    assert xcom["status_code"] == 200 and xcom["body"]["status"] == "healthy" and "timestamp" in xcom["body"], (
        f"poke() on a healthy API: expected XCom with status_code 200 and the full body, got {xcom!r}"
    )


@pytest.mark.criterion("ex04.t2.checks_status_and_body")
@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (200, {"status": "degraded", "version": "1.0"}, "a 200 whose body says degraded"),
        (200, {"status": "healthy", "version": "2.0"}, "a 200 with the wrong version"),
        (200, "<html>ok</html>", "a 200 that is not JSON"),
        (200, ["healthy"], "a 200 whose JSON is not an object"),
        (204, {"status": "healthy", "version": "1.0"}, "the right body with an unexpected status"),
    ],
)
def test_reads_the_body_not_only_the_status(custom_sensors, health_server, status, body, why):
    health_server.queue_response(status, body if isinstance(body, str | dict) else json.dumps(body))
    result = poke(make_sensor(custom_sensors, health_server.health_url))
    assert not is_done(result), f"poke() on {why}: expected not done, got {result!r}"


@pytest.mark.criterion("ex04.t2.checks_status_and_body")
def test_contains_is_a_recursive_subset(custom_sensors, health_server):
    expected = {"status": "healthy", "checks": {"db": "ok"}}
    sensor = make_sensor(custom_sensors, health_server.health_url, expected_response=expected)
    answers = [
        ({"status": "healthy", "checks": {"db": "ok", "cache": "ok"}, "timestamp": 1}, True,
         "a nested dict with an extra key"),
        ({"status": "healthy", "checks": {"db": "down", "cache": "ok"}}, False, "a nested value that differs"),
        ({"status": "healthy", "checks": {"cache": "ok"}}, False, "a nested key that is missing"),
    ]
    for body, done, why in answers:
        health_server.queue_response(200, body)
        result = poke(sensor)
        assert is_done(result) == done, (
            f"poke() expecting {expected} from {body} ({why}): expected {'done' if done else 'not done'} (every key "
            f"of the expected dict is in the body and its value matches, recursively), got {result!r}")


@pytest.mark.criterion("ex04.t2.checks_status_and_body")
def test_other_expected_status_and_response(custom_sensors, health_server):
    health_server.version = "2.3"
    sensor = make_sensor(custom_sensors, health_server.health_url, expected_response={"version": "2.3"})
    assert is_done(poke(sensor)), "poke() expecting version 2.3 from an API at 2.3: expected done"
    health_server.force("maintenance")
    sensor = make_sensor(custom_sensors, health_server.health_url, expected_status=503,
                         expected_response={"status": "maintenance"})
    assert is_done(poke(sensor)), "poke() expecting 503 maintenance during maintenance: expected done"


@pytest.mark.criterion("ex04.t2.auth")
def test_bearer_token(custom_sensors, health_server):
    health_server.require_bearer("s3cr3t-token")
    result = poke(make_sensor(custom_sensors, health_server.health_url, bearer_token="s3cr3t-token"))
    assert is_done(result), f"poke() with the right bearer token: expected done, got {result!r}"
    assert health_server.received_headers[-1].get("Authorization") == "Bearer s3cr3t-token", (
        f"the server expected 'Authorization: Bearer s3cr3t-token', received {health_server.received_headers[-1]}"
    )


@pytest.mark.criterion("ex04.t2.auth")
def test_basic_auth_and_custom_headers(custom_sensors, health_server):
    health_server.require_basic("monitor", "pa55word")
    sensor = make_sensor(custom_sensors, health_server.health_url, basic_auth=("monitor", "pa55word"),
                         headers={"X-Request-Source": "airflow"})
    assert is_done(poke(sensor)), "poke() with the right basic credentials: expected done"
    received = health_server.received_headers[-1]
    assert received.get("X-Request-Source") == "airflow", f"custom header not sent; server received {received}"


@pytest.mark.criterion("ex04.t2.auth")
def test_headers_alone_can_carry_auth(custom_sensors, health_server):
    health_server.require_bearer("from-headers")
    sensor = make_sensor(custom_sensors, health_server.health_url, headers={"Authorization": "Bearer from-headers"})
    assert is_done(poke(sensor)), "poke() with Authorization given in headers: expected done"


@pytest.mark.criterion("ex04.t2.auth")
@pytest.mark.parametrize("kind", ["basic", "bearer"])
def test_credentials_from_an_airflow_connection(custom_sensors, health_server, monkeypatch, kind):
    # Connections resolve through the secrets backends, environment variables included: the same lookup
    # the Task Runner does, so the sensor has to call BaseHook.get_connection (or Connection.get).
    conn_id = f"ex04_health_{kind}"
    if kind == "basic":
        health_server.require_basic("svc", "c0nn-pass")
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", "http://svc:c0nn-pass@127.0.0.1")
    else:
        health_server.require_bearer("c0nn-token")
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", '{"conn_type": "http", "password": "c0nn-token"}')
    result = poke(make_sensor(custom_sensors, health_server.health_url, conn_id=conn_id))
    assert is_done(result), (
        f"poke() with conn_id={conn_id!r} ({kind} credentials in the connection): expected done, got {result!r}; "
        f"server received {health_server.received_headers[-1:]}"
    )


@pytest.mark.criterion("ex04.t2.fails_fast")
@pytest.mark.parametrize("given", [None, "wrong-token"])
def test_rejected_credentials_fail_at_once(custom_sensors, health_server, given):
    health_server.require_bearer("right-token")
    sensor = make_sensor(custom_sensors, health_server.health_url, bearer_token=given)
    with pytest.raises(AirflowFailException) as raised:
        poke(sensor)
    assert "401" in str(raised.value), f"poke() answered 401: expected the message to say 401, got {raised.value!r}"


@pytest.mark.criterion("ex04.t2.fails_fast")
@pytest.mark.parametrize("status", [403, 404])
def test_forbidden_and_not_found_fail_at_once(custom_sensors, health_server, status):
    health_server.queue_response(status, {"error": "no"})
    with pytest.raises(AirflowFailException):
        poke(make_sensor(custom_sensors, health_server.health_url))


@pytest.mark.criterion("ex04.t2.fails_fast")
def test_wrong_path_fails_at_once(custom_sensors, health_server):
    with pytest.raises(AirflowFailException):
        poke(make_sensor(custom_sensors, f"{health_server.url}/api/helth"))


@pytest.mark.criterion("ex04.t2.fails_fast")
@pytest.mark.parametrize("url", ["not a url", "ftp://127.0.0.1/api/health", "127.0.0.1:8081/api/health"])
def test_malformed_url_fails_at_once(custom_sensors, url):
    with pytest.raises(AirflowFailException):
        poke(make_sensor(custom_sensors, url))


@pytest.mark.criterion("ex04.t2.fails_fast")
def test_unknown_connection_fails_at_once(custom_sensors, health_server):
    with pytest.raises(AirflowFailException):
        poke(make_sensor(custom_sensors, health_server.health_url, conn_id="ex04_no_such_connection"))


@pytest.mark.criterion("ex04.t2.fails_fast")
def test_server_errors_are_not_yet(custom_sensors, health_server):
    for status in (500, 502, 503, 429):
        health_server.queue_response(status, {"error": "busy"})
        result = poke(make_sensor(custom_sensors, health_server.health_url))
        assert not is_done(result), f"poke() on a {status}: expected not done (not a failure), got {result!r}"


@pytest.mark.criterion("ex04.t2.request_timeout")
def test_slow_response_ends_at_request_timeout(custom_sensors, health_server):
    health_server.latency = 3.0
    sensor = make_sensor(custom_sensors, health_server.health_url, request_timeout=0.2, connect_retries=2,
                         retry_backoff=0.01)
    started = time.monotonic()
    result = poke(sensor)
    took = time.monotonic() - started
    assert not is_done(result), f"poke() on an API slower than request_timeout: expected not done, got {result!r}"
    # The margin is for loaded machines: the answer itself would take 3 s.
    assert took < 2.5, f"poke() with request_timeout=0.2 on a 3 s API: expected to give up early, took {took:.2f} s"
    assert len(health_server.requests) == 1, (
        f"poke() with request_timeout=0.2 and connect_retries=2 on a 3 s API: expected one request (a timeout "
        f"means 'not yet' for this poke; only connection errors are retried), the server saw "
        f"{len(health_server.requests)}")


@pytest.mark.criterion("ex04.t2.retries_connection_errors")
def test_connection_errors_retried_within_one_poke(custom_sensors, health_server):
    health_server.drop_connections = True
    sensor = make_sensor(custom_sensors, health_server.health_url, connect_retries=3, retry_backoff=0.01)
    result = poke(sensor)
    assert not is_done(result), f"poke() while the API drops connections: expected not done, got {result!r}"
    assert len(health_server.requests) == 4, (
        f"poke() with connect_retries=3 against dropped connections: expected 4 attempts, "
        f"the server saw {len(health_server.requests)}"
    )


@pytest.mark.criterion("ex04.t2.retries_connection_errors")
def test_backoff_doubles_and_is_bounded(custom_sensors, health_server, monkeypatch):
    health_server.drop_connections = True
    slept: list[float] = []
    monkeypatch.setattr(subject_module("time"), "sleep", slept.append)
    sensor = make_sensor(custom_sensors, health_server.health_url, connect_retries=4, retry_backoff=0.5,
                         max_retry_backoff=1.5)
    poke(sensor)
    assert slept == [0.5, 1.0, 1.5, 1.5], (
        f"poke() with connect_retries=4, retry_backoff=0.5, max_retry_backoff=1.5: expected waits "
        f"[0.5, 1.0, 1.5, 1.5], got {slept}"
    )


@pytest.mark.criterion("ex04.t2.retries_connection_errors")
def test_refused_connection_is_not_yet(custom_sensors, health_server):
    url = health_server.health_url
    health_server.stop()  # nothing listens on the port any more
    result = poke(make_sensor(custom_sensors, url, connect_retries=1))
    assert not is_done(result), f"poke() with the API down (connection refused): expected not done, got {result!r}"


@pytest.mark.criterion("ex04.t2.logs_responses")
def test_logs_status_latency_and_body(custom_sensors, health_server, sensor_log):
    health_server.force("maintenance")
    poke(make_sensor(custom_sensors, health_server.health_url))
    text = sensor_log.text
    assert "503" in text and "maintenance" in text and "ms" in text, (
        f"poke() on a 503: expected the log to show the status, the latency (ms) and the body, got {text!r}"
    )


@pytest.mark.criterion("ex04.t2.auth")
@pytest.mark.parametrize(("kwargs", "named"), [
    ({"bearer_token": "t", "basic_auth": ("u", "p")}, "bearer_token"),
    ({"basic_auth": ("u", "p"), "conn_id": "c"}, "conn_id"),
    ({"request_timeout": 0}, "request_timeout"),
    ({"connect_retries": -1}, "connect_retries"),
    ({"retry_backoff": -0.5}, "retry_backoff"),
])
def test_impossible_settings_are_refused(custom_sensors, kwargs, named):
    with pytest.raises(ValueError, match=named):
        custom_sensors.APIHealthSensor(endpoint_url="http://127.0.0.1/health", task_id="wait_for_api", **kwargs)


@pytest.mark.criterion("ex04.t2.auth")
def test_settings_at_their_limits_are_accepted(custom_sensors):
    try:
        custom_sensors.APIHealthSensor(endpoint_url="http://127.0.0.1/health", task_id="wait_for_api",
                                       request_timeout=0.01, connect_retries=0, retry_backoff=0, bearer_token="t")
    except ValueError as exc:
        pytest.fail(f"APIHealthSensor(request_timeout=0.01, connect_retries=0, retry_backoff=0, one credential) "
                    f"raised ValueError({exc}); expected it accepted")


@pytest.mark.criterion("ex04.t2.fails_fast")
def test_an_https_url_is_not_malformed(custom_sensors, health_server):
    url = health_server.health_url.replace("http://", "https://")  # no TLS there: a connection error
    try:
        result = poke(make_sensor(custom_sensors, url, connect_retries=0))
    except AirflowFailException as exc:
        pytest.fail(f"poke() on {url}: raised AirflowFailException({exc}); an https URL is well formed, "
                    f"and failing to connect means not yet")
    assert not is_done(result), f"poke() on {url} (the server speaks no TLS): expected not done, got {result!r}"


@pytest.mark.criterion("ex04.t2.fails_fast")
def test_a_bad_request_fails_at_once_naming_its_status(custom_sensors, health_server):
    health_server.queue_response(400, {"error": "bad request"})
    with pytest.raises(AirflowFailException) as raised:
        poke(make_sensor(custom_sensors, health_server.health_url))
    assert "400" in str(raised.value), f"poke() answered 400: expected the failure to say 400, got {raised.value!r}"


@pytest.mark.criterion("ex04.t2.fails_fast")
def test_the_failures_name_what_is_wrong(custom_sensors, health_server, monkeypatch):
    with pytest.raises(AirflowFailException) as raised:
        poke(make_sensor(custom_sensors, "ftp://127.0.0.1/api/health"))
    assert "ftp://127.0.0.1/api/health" in str(raised.value), (
        f"poke() with endpoint_url='ftp://127.0.0.1/api/health': expected the failure to name the URL, "
        f"got {raised.value!r}"
    )
    with pytest.raises(AirflowFailException) as raised:
        poke(make_sensor(custom_sensors, health_server.health_url, conn_id="ex04_no_such_connection"))
    assert "ex04_no_such_connection" in str(raised.value), (
        f"poke() with an unknown conn_id: expected the failure to name it, got {raised.value!r}"
    )


@pytest.mark.criterion("ex04.t2.auth")
def test_a_connection_without_credentials_fails_naming_it(custom_sensors, health_server, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_EX04_HEALTH_EMPTY", '{"conn_type": "http", "host": "127.0.0.1"}')
    with pytest.raises(AirflowFailException) as raised:
        poke(make_sensor(custom_sensors, health_server.health_url, conn_id="ex04_health_empty"))
    assert "ex04_health_empty" in str(raised.value), (
        f"poke() with a connection that has neither login nor password: expected AirflowFailException naming "
        f"it, got {raised.value!r}"
    )


@pytest.mark.criterion("ex04.t2.checks_status_and_body")
def test_the_xcom_has_status_body_and_latency_in_ms(custom_sensors, health_server):
    health_server.latency = 0.2
    started = time.monotonic()
    result = poke(make_sensor(custom_sensors, health_server.health_url))
    wall_ms = (time.monotonic() - started) * 1000
    assert isinstance(result, PokeReturnValue) and result.is_done, f"poke() on a healthy API: got {result!r}"
    xcom = result.xcom_value
    assert set(xcom) == {"status_code", "body", "latency_ms"}, (
        f"poke() on a healthy API: expected the XCom keys status_code, body and latency_ms, got {sorted(xcom)}"
    )
    assert 200 <= xcom["latency_ms"] <= wall_ms + 1, (
        f"poke() on an API that takes 0.2 s to answer, in a poke that took {wall_ms:.0f} ms: expected "
        f"latency_ms between 200 and {wall_ms:.0f}, got {xcom['latency_ms']!r}"
    )


@pytest.mark.criterion("ex04.t2.logs_responses")
def test_the_logged_latency_is_in_milliseconds(custom_sensors, health_server, sensor_log):
    health_server.latency = 0.2
    started = time.monotonic()
    poke(make_sensor(custom_sensors, health_server.health_url))
    wall_ms = (time.monotonic() - started) * 1000
    # "203 ms", "203ms" or a structured "latency_ms=203" / "latency_ms": 203
    logged = [float(n) for n in re.findall(r"(\d+(?:\.\d+)?)\s*ms\b", sensor_log.text)]
    logged += [float(n) for n in re.findall(r"ms['\"]?\s*[=:]\s*(\d+(?:\.\d+)?)", sensor_log.text)]
    assert any(195 <= n <= wall_ms + 1 for n in logged), (
        f"poke() on an API that takes 0.2 s, in a poke of {wall_ms:.0f} ms: expected the log to show the "
        f"latency in ms (about 200), found {logged} in {sensor_log.text!r}"
    )
