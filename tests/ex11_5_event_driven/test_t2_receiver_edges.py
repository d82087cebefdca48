"""Task 2 at its edges: which answers of Airflow are retried, what the outcome log names, the receiver's
endpoint and lifecycle, request bodies without a Content-Length, notifications that only look like one."""

from __future__ import annotations

import http.client
import json
import logging
from urllib.parse import urlsplit

import pytest

from fixtures.webhook_sender import WebhookSender, generic_notification, minio_notification, signature
from tests.ex11_5_event_driven.conftest import ASSET_URI, SECRET, TOKEN, raises_learners
from tests.ex11_5_event_driven.probes import app_lifecycle, start_server


def logged(learner_log, level: int = logging.INFO) -> list[str]:
    return [r["message"] for r in learner_log.records() if r["levelno"] >= level]


def post_chunked(url: str, body: bytes, signature: str) -> int:
    """POST `body` with `Transfer-Encoding: chunked` (no Content-Length), as streaming senders do."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("POST", parts.path, body=iter([body[i:i + 1000] for i in range(0, len(body), 1000)]),
                           headers={"Content-Type": "application/json", "X-Webhook-Signature": signature},
                           encode_chunked=True)
        return connection.getresponse().status
    except (ConnectionError, http.client.HTTPException):
        return 413  # a server may close the connection on an oversized body before it answers
    finally:
        connection.close()


@pytest.mark.parametrize("status", [500, 502, 408, 429])
@pytest.mark.criterion("ex11_5.t2.retries_when_airflow_is_down")
def test_5xx_408_and_429_answers_are_retried(webhook, fake_airflow, status):
    hook = webhook()
    fake_airflow.fail_next, fake_airflow.fail_status = 1, status
    assert hook.sender.send(generic_notification("crm", "updated", id="evt-retry"))[0] == 202
    hook.wait_for(lambda: len(fake_airflow.deliveries) >= 1, f"the event delivered after one HTTP {status}")
    failed = [r for r in fake_airflow.requests if r["status"] == status]
    assert len(failed) == 1 and len(fake_airflow.deliveries) == 1, (
        f"Airflow answered HTTP {status} once, then OK: expected the call retried and one delivery, got "
        f"{fake_airflow.requests!r}")


@pytest.mark.parametrize("status", [400, 404, 422])
@pytest.mark.criterion("ex11_5.t2.retries_when_airflow_is_down")
def test_other_4xx_answers_are_given_up_at_once_and_logged(webhook, fake_airflow, learner_log, status):
    learner_log.set_level(logging.INFO)
    hook = webhook(retry_delays=(0.01, 0.01, 0.01))
    fake_airflow.fail_next, fake_airflow.fail_status = 1, status
    assert hook.sender.send(generic_notification("crm", "updated", id="evt-rejected"))[0] == 202
    hook.wait_for(lambda: any("evt-rejected" in m and str(status) in m for m in logged(learner_log)),
                  f"a log line naming event evt-rejected and HTTP {status} after Airflow answered it")
    assert [r["status"] for r in fake_airflow.requests] == [status], (
        f"Airflow answered HTTP {status} (not retryable: only connection errors, 5xx, 408 and 429 are): expected "
        f"one call and no retry, got {fake_airflow.requests!r}")
    errors = [m for m in logged(learner_log) if "evt-rejected" in m]
    assert any(str(status) in m for m in errors), (
        f"the outcome of event evt-rejected, given up after HTTP {status}: expected the error logged with the "
        f"status, got {errors}")
    # The receiver keeps working: a later event is delivered, and the rejected one may be sent again.
    assert hook.sender.send(generic_notification("crm", "updated", id="evt-next"))[0] == 202
    # The outcome line may come just before the receiver forgets the event: re-send until it is accepted again.
    hook.wait_for(lambda: hook.sender.send(generic_notification("crm", "updated", id="evt-rejected"))[0] == 202,
                  "evt-rejected re-sent after the receiver gave up on it: expected 202 (accepted again)")
    hook.wait_for(lambda: len(fake_airflow.deliveries) >= 2, "both later events delivered")
    ids = sorted(p["json"]["extra"].get("event_id") for p in fake_airflow.deliveries)
    assert ids == ["evt-next", "evt-rejected"], f"after giving up on one event: expected the next two delivered, got {ids}"


@pytest.mark.criterion("ex11_5.t2.retries_when_airflow_is_down")
def test_a_dropped_connection_is_retried(webhook, fake_airflow):
    hook = webhook()
    fake_airflow.drop_next = 2  # the api-server goes away in the middle of the call, twice
    assert hook.sender.send(generic_notification("crm", "updated", id="evt-dropped"))[0] == 202
    hook.wait_for(lambda: len(fake_airflow.deliveries) >= 1, "the event delivered after two dropped connections")
    dropped = [r for r in fake_airflow.requests if r["status"] == 0]
    assert len(dropped) == 2 and len(fake_airflow.deliveries) == 1, (
        f"two connections closed without an answer, then OK: expected both retried and one delivery, got "
        f"{fake_airflow.requests!r}")


@pytest.mark.criterion("ex11_5.t2.retries_when_airflow_is_down")
def test_the_outcome_log_names_the_event_and_the_last_error(webhook, fake_airflow, learner_log):
    learner_log.set_level(logging.INFO)
    hook = webhook(retry_delays=(0.01,))
    fake_airflow.fail_next = 10
    assert hook.sender.send(generic_notification("crm", "updated", id="evt-down"))[0] == 202
    hook.wait_for(lambda: len(fake_airflow.requests) >= 2, "both attempts at delivering evt-down")
    last_attempt = fake_airflow.requests[-1]["at"]
    # The outcome is logged once the last attempt failed (at any level: the chapter fixes none).
    hook.wait_for(lambda: any("evt-down" in r["message"] and r["created"] >= last_attempt
                              for r in learner_log.records()),
                  "a log line naming event evt-down after its last attempt")
    errors = [r["message"] for r in learner_log.records() if "evt-down" in r["message"] and r["created"] >= last_attempt]
    assert any("503" in m for m in errors), (
        f"event evt-down given up after HTTP 503 twice: expected its error logged with the last error (503), "
        f"got {errors}")
    fake_airflow.fail_next = 0
    assert hook.sender.send(generic_notification("crm", "updated", id="evt-up"))[0] == 202
    hook.wait_for(lambda: len(fake_airflow.deliveries) == 1, "evt-up delivered")
    hook.wait_for(lambda: any("evt-up" in m for m in logged(learner_log)), "the delivery of evt-up logged")


@pytest.mark.criterion("ex11_5.t2.delivers_asset_events")
def test_an_asset_unknown_to_airflow_is_given_up_and_logged(webhook, fake_airflow, learner_log):
    learner_log.set_level(logging.INFO)
    hook = webhook(asset_uri="s3://landing/not/parsed/yet", retry_delays=(0.01,))
    payload = generic_notification("crm", "updated", id="evt-orphan")
    assert hook.sender.send(payload)[0] == 202
    hook.wait_for(lambda: any("evt-orphan" in m for m in logged(learner_log)),
                  "a log line naming event evt-orphan (no such asset in Airflow)")
    assert not fake_airflow.deliveries, f"no asset with that uri: expected nothing posted, got {fake_airflow.deliveries!r}"
    hook.wait_for(lambda: hook.sender.send(payload)[0] == 202,
                  "evt-orphan re-sent after the receiver gave up on it: expected 202 (accepted again)")


@pytest.mark.criterion("ex11_5.t2.delivers_asset_events")
def test_the_asset_is_found_among_many(webhook, fake_airflow):
    fake_airflow.decoys = 60  # more assets than one page of GET /api/v2/assets
    hook = webhook()
    assert hook.sender.send(minio_notification("landing/bronze/sales/a.parquet"))[0] == 202
    hook.wait_for(lambda: len(fake_airflow.deliveries) >= 1, f"an asset event for {ASSET_URI} among 61 assets")
    assert fake_airflow.deliveries[0]["json"].get("asset_id") == 7, (
        f"Airflow holds 61 assets, {ASSET_URI} (id 7) listed after the first page: expected the event posted to "
        f"asset 7, got {fake_airflow.deliveries!r}")


@pytest.mark.criterion("ex11_5.t2.delivers_asset_events")
def test_a_dag_target_gets_one_run_per_event(webhook, fake_airflow):
    hook = webhook(asset_uri=None, dag_id="ex11_5_sales_refresh")
    for event_id in ("evt-1", "evt-2", "evt-3"):
        assert hook.sender.send(generic_notification("ci-pipeline", "deploy_complete", id=event_id))[0] == 202
    hook.wait_for(lambda: len(fake_airflow.deliveries) >= 3, "three DAG runs created")
    ids = [(p["json"].get("conf") or {}).get("event_id") for p in fake_airflow.deliveries]
    assert sorted(ids) == ["evt-1", "evt-2", "evt-3"], f"three events for a DAG target: expected three runs, got {ids}"


@pytest.mark.criterion("ex11_5.t2.delivers_asset_events")
def test_an_airflow_url_with_a_trailing_slash_works(webhook, fake_airflow):
    hook = webhook(airflow_url=fake_airflow.url + "/")
    assert hook.sender.send(minio_notification("landing/bronze/sales/a.parquet"))[0] == 202
    hook.wait_for(lambda: len(fake_airflow.deliveries) >= 1, f"delivered with airflow_url={fake_airflow.url + '/'!r}")
    paths = [r["path"] for r in fake_airflow.requests]
    assert all(not p.startswith("//") for p in paths), f"airflow_url ending in '/': expected /api/v2/..., got {paths}"


@pytest.mark.criterion("ex11_5.t2.delivers_asset_events")
def test_the_default_endpoint_is_the_seeds(event_driven, fake_airflow):
    receiver = event_driven.WebhookReceiver(secret=SECRET, airflow_url=fake_airflow.url, airflow_token=TOKEN,
                                            asset_uri=ASSET_URI)
    server = start_server(receiver.make_app)
    try:
        status, body = WebhookSender(f"{server.url}/webhooks/bronze-sales", SECRET).send(
            minio_notification("landing/bronze/sales/a.parquet"))
    finally:
        server.stop()
    assert status == 202, (
        f"WebhookReceiver(...) without path=, POST /webhooks/bronze-sales (the seed's endpoint): expected 202, got "
        f"{status} {body!r}")


@pytest.mark.criterion("ex11_5.t2.rejects_bad_requests")
def test_a_chunked_body_is_judged_like_any_other(webhook, fake_airflow):
    hook = webhook(max_body_bytes=4096)
    url = f"{hook.server.url}{hook.receiver.path}"
    small = json.dumps(generic_notification("crm", "updated", id="evt-chunked")).encode()
    big = json.dumps(generic_notification("crm", "updated", id="evt-big", padding="z" * 8000)).encode()
    statuses = {"small": post_chunked(url, small, signature(small, SECRET)),
                "big": post_chunked(url, big, signature(big, SECRET)), "small unsigned": post_chunked(url, small, "")}
    assert statuses == {"small": 202, "big": 413, "small unsigned": 401}, (
        f"max_body_bytes=4096, signed bodies of {len(small)} and {len(big)} bytes and an unsigned one, sent chunked "
        f"(no Content-Length): expected {{'small': 202, 'big': 413, 'small unsigned': 401}}, got {statuses}")
    hook.wait_for(lambda: len(fake_airflow.deliveries) >= 1, "the small chunked event delivered")
    assert len(fake_airflow.deliveries) == 1, f"expected only the small event delivered, got {fake_airflow.deliveries!r}"


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t2.delivers_asset_events")
async def test_the_app_starts_and_stops_its_delivery_cleanly(event_driven, fake_airflow, learner_log):
    receiver = event_driven.WebhookReceiver(secret=SECRET, airflow_url=fake_airflow.url, airflow_token=TOKEN,
                                            asset_uri=ASSET_URI, retry_delays=(0.01,))
    # The app runs on the event loop beside the learner's code; what comes back is the tasks it saw.
    tasks = await app_lifecycle(receiver)
    started, left = tasks["started"], tasks["left"]
    assert started and not left, (
        f"make_app(), run, then AppRunner.cleanup(): expected the delivery task started with the app and stopped "
        f"with it, got started {started!r}, still running after cleanup {left!r}")
    errors = logged(learner_log, logging.ERROR)
    assert not errors, f"a clean stop with nothing pending: expected no error logged, got {errors}"


@pytest.mark.criterion("ex11_5.t2.rejects_bad_requests")
def test_notifications_that_only_look_like_one_are_an_unknown_format(event_driven):
    minio = {"EventName": "s3:ObjectCreated:Put", "Key": "landing/bronze/a.parquet"}
    odd = {"Records [null]": {**minio, "Records": [None]}, "Records ['x']": {**minio, "Records": ["x"]},
           "Records[0].s3 a string": {**minio, "Records": [{"s3": "x"}]},
           "Records[0].s3.object null": {**minio, "Records": [{"s3": {"object": None}}]}}
    for label, payload in odd.items():
        body = json.dumps(payload).encode()
        try:
            event = event_driven.parse_notification(payload, body)
        except Exception as exc:  # noqa: BLE001 (anything but UnknownFormat is a 500, not a 422)
            if isinstance(exc, event_driven.UnknownFormat):  # the learner's class: an isinstance check works in both modes
                continue
            pytest.fail(f"parse_notification() of a MinIO notification with {label}: expected an event or "
                        f"UnknownFormat (422), got {type(exc).__name__}: {exc}")
        assert event.source == "minio" and event.key == "bronze/a.parquet", (
            f"parse_notification() of a MinIO notification with {label}: got {event!r}")
    for payload in ({"source": "crm"}, {"event": "updated"}, {"source": "crm", "event": 7}, {"source": 7, "event": "x"}):
        with raises_learners(event_driven.UnknownFormat):
            event_driven.parse_notification(payload, json.dumps(payload).encode())
            pytest.fail(f"parse_notification({payload!r}): a generic webhook needs both source and event as "
                        f"strings; expected UnknownFormat (422)")


@pytest.mark.criterion("ex11_5.t2.replay_delivered_once")
def test_the_last_remember_events_are_recognised_as_replays(webhook, fake_airflow):
    hook = webhook(remember=2)
    for n, event_id in enumerate(("evt-a", "evt-b", "evt-c"), start=1):
        assert hook.sender.send(generic_notification("crm", "updated", id=event_id))[0] == 202
        hook.wait_for(lambda n=n: len(fake_airflow.deliveries) >= n, f"{event_id} delivered")
    replays = {event_id: hook.sender.send(generic_notification("crm", "updated", id=event_id))[0]
               for event_id in ("evt-b", "evt-c")}
    assert replays == {"evt-b": 200, "evt-c": 200}, (
        f"remember=2, events evt-a, evt-b, evt-c accepted and delivered, then evt-b and evt-c replayed: expected "
        f"both recognised as replays (200) among the last 2, got {replays}")
    assert len(fake_airflow.deliveries) == 3, f"expected three deliveries, got {fake_airflow.deliveries!r}"
