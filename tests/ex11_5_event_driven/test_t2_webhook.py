"""Task 2: the signed webhook receiver (signature, status codes, delivery to Airflow, replays, retries)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging

import pytest

from fixtures.webhook_sender import generic_notification, minio_notification, signature
from tests.ex11_5_event_driven.conftest import SECRET, TOKEN, raises_learners
from tests.harness.remote import subject_module


def assert_object_keys(keys: list, bucket: str, expected: list[str]) -> None:
    """A MinIO `Key` is `bucket/object`: the event's key is the object's name, without the bucket."""
    with_bucket = [k for k in keys if isinstance(k, str) and k.startswith(f"{bucket}/")]
    assert not with_bucket, (
        f"asset event extra 'key' of MinIO notifications with Key '{bucket}/<object>': expected the object's name "
        f"inside bucket {bucket!r} ({expected}), got the whole Key {with_bucket} (split it at the first '/')"
    )


@pytest.mark.criterion("ex11_5.t2.signature")
def test_sign_and_verify(event_driven):
    body = b'{"source": "ci-pipeline", "event": "deploy_complete"}'
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert event_driven.sign(body, SECRET) == expected, (
        f"sign(): expected {expected!r}, got {event_driven.sign(body, SECRET)!r}")
    assert event_driven.verify_signature(body, expected, SECRET) is True, (
        "verify_signature() of a correct signature: not True")
    wrong = {
        "missing": None, "empty": "", "no scheme": expected.removeprefix("sha256="),
        "other scheme": "sha1=" + expected.removeprefix("sha256="), "other secret": event_driven.sign(body, "guess"),
        "truncated": expected[:-2], "other body": event_driven.sign(body + b" ", SECRET),
    }
    for what, header in wrong.items():
        assert event_driven.verify_signature(body, header, SECRET) is False, (
            f"verify_signature() with {what} {header!r}: not False")


@pytest.mark.criterion("ex11_5.t2.signature")
def test_the_comparison_is_constant_time(event_driven, monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(subject_module("hmac"), "compare_digest", spy)  # the one the learner's code calls
    body = b'{"source": "x", "event": "y"}'
    good = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    event_driven.verify_signature(body, good, SECRET)
    event_driven.verify_signature(body, "sha256=" + "0" * 64, SECRET)
    assert len(calls) >= 2, (
        "verify_signature() must compare with hmac.compare_digest (a == comparison returns at the first differing "
        f"byte, so its timing tells an attacker how much of a forged signature is right); calls seen: {calls!r}"
    )


@pytest.mark.criterion("ex11_5.t2.delivers_asset_events")
def test_a_minio_notification_without_records_is_delivered(webhook, fake_airflow):
    hook = webhook()
    payload = {"EventName": "s3:ObjectCreated:Put", "Key": "landing/bronze/sales/b.parquet"}  # the seed's shape
    status, body = hook.sender.send(payload)
    assert status == 202, f"a signed MinIO notification with EventName and Key only: expected 202, got {status} {body!r}"
    hook.wait_for(lambda: len(fake_airflow.deliveries) >= 1, "the MinIO event delivered")
    delivered = json.dumps(fake_airflow.deliveries[0]["json"])
    assert "bronze/sales/b.parquet" in delivered, (
        f"MinIO Key landing/bronze/sales/b.parquet: expected the object's key in the asset event, got {delivered}")


@pytest.mark.criterion("ex11_5.t2.rejects_bad_requests")
def test_bad_requests_get_their_status_and_are_not_delivered(webhook, fake_airflow):
    hook = webhook()
    payload = minio_notification("landing/bronze/sales/a.parquet")
    raw = json.dumps(payload).encode()
    cases = {
        "unsigned": (hook.sender.send(payload, sign=False), 401),
        "bad signature": (hook.sender.send(payload, signature_value="sha256=" + "ab" * 32), 401),
        "signed with another secret": (hook.sender.send(raw=raw, signature_value=signature(raw, "guess")), 401),
        "malformed JSON": (hook.sender.send(raw=b'{"EventName": "s3:ObjectCreated:Put", '), 400),
        "unknown format": (hook.sender.send({"hello": "world"}), 422),
        "a JSON list": (hook.sender.send([1, 2]), 422),
        "oversized body": (hook.sender.send(generic_notification("x", "y", padding="z" * 70_000)), 413),
        # The size is judged first: an oversized body is never read whole to check its signature.
        "oversized unsigned body": (hook.sender.send(generic_notification("x", "y", padding="z" * 70_000),
                                                     sign=False), 413),
    }
    for what, ((status, body), expected) in cases.items():
        assert status == expected, f"POST {hook.receiver.path} with {what}: expected HTTP {expected}, got {status} {body!r}"
    status, body = hook.sender.send(payload)
    assert status == 202, f"then a correctly signed MinIO notification: expected 202, got {status} {body!r}"
    hook.wait_for(lambda: len(fake_airflow.deliveries) >= 1, "the accepted event delivered")
    assert len(fake_airflow.deliveries) == 1, (
        f"one accepted event among 8 requests: expected one delivery to Airflow, got {fake_airflow.deliveries!r}"
    )


@pytest.mark.criterion("ex11_5.t2.rejects_bad_requests")
def test_a_body_of_exactly_max_body_bytes_is_accepted(webhook, fake_airflow):
    hook = webhook(max_body_bytes=4096)

    def sized(size: int, event_id: str) -> dict:
        bare = generic_notification("crm", "updated", id=event_id, padding="")
        return {**bare, "padding": "z" * (size - len(json.dumps(bare)))}

    at_limit, over = sized(4096, "at-limit"), sized(4097, "over")
    assert (len(json.dumps(at_limit)), len(json.dumps(over))) == (4096, 4097)
    statuses = [hook.sender.send(at_limit)[0], hook.sender.send(over)[0]]
    assert statuses == [202, 413], (
        f"max_body_bytes=4096, bodies of 4096 and 4097 bytes: expected [202, 413] ('over max_body_bytes' is "
        f"413), got {statuses}")


@pytest.mark.criterion("ex11_5.t2.rejects_bad_requests")
def test_the_signature_is_checked_before_the_body_is_parsed(webhook, fake_airflow):
    hook = webhook()
    cases = {
        "unsigned malformed JSON": hook.sender.send(raw=b'{"EventName": ', sign=False),
        "badly signed malformed JSON": hook.sender.send(raw=b'{"EventName": ', signature_value="sha256=" + "cd" * 32),
        "unsigned body of an unknown format": hook.sender.send({"hello": "world"}, sign=False),
    }
    for what, (status, body) in cases.items():
        assert status == 401, (
            f"POST {hook.receiver.path} with {what}: expected HTTP 401 (the signature is checked before anything "
            f"is parsed), got {status} {body!r}"
        )
    assert not fake_airflow.deliveries, f"unsigned requests: expected no delivery, got {fake_airflow.deliveries!r}"


@pytest.mark.criterion("ex11_5.t2.delivers_asset_events")
def test_minio_and_generic_events_become_asset_events(webhook, fake_airflow):
    hook = webhook()
    status, body = hook.sender.send(minio_notification("warehouse/bronze/sales/data.parquet"))
    assert status == 202, f"signed MinIO notification: expected 202, got {status} {body!r}"
    status, body = hook.sender.send(generic_notification("airflow", "data_ready", bucket="landing",
                                                         key="sales/2024-01-15.csv"))
    assert status == 202, f"signed generic webhook: expected 202, got {status} {body!r}"
    hook.wait_for(lambda: len(fake_airflow.deliveries) >= 2, "two asset events posted")
    posts = fake_airflow.deliveries
    assert [p["path"] for p in posts] == ["/api/v2/assets/events"] * 2, f"expected POST /api/v2/assets/events: {posts!r}"
    assert all(p["auth"] == f"Bearer {TOKEN}" for p in fake_airflow.requests), (
        f"every call to Airflow must carry Authorization: Bearer <token>; got {[r['auth'] for r in fake_airflow.requests]}"
    )
    extras = [p["json"].get("extra", {}) for p in posts]
    assert all(p["json"].get("asset_id") == 7 for p in posts), f"asset_id: expected 7 (looked up by uri), got {posts!r}"
    expected = [("minio", "s3:ObjectCreated:Put", "warehouse", "bronze/sales/data.parquet"),
                ("airflow", "data_ready", "landing", "sales/2024-01-15.csv")]
    got = [(e.get("source"), e.get("event"), e.get("bucket"), e.get("key")) for e in extras]
    assert_object_keys([got[0][3]], "warehouse", ["bronze/sales/data.parquet"])
    assert got == expected, f"asset event extras (source, event, bucket, key): expected {expected}, got {got}"


@pytest.mark.criterion("ex11_5.t2.delivers_asset_events")
def test_a_dag_target_gets_a_dag_run(webhook, fake_airflow):
    hook = webhook(asset_uri=None, dag_id="ex11_5_sales_refresh")
    status, body = hook.sender.send(generic_notification("ci-pipeline", "deploy_complete"))
    assert status == 202, f"signed generic webhook: expected 202, got {status} {body!r}"
    hook.wait_for(lambda: len(fake_airflow.deliveries) >= 1, "a DAG run created")
    post = fake_airflow.deliveries[0]
    assert post["path"] == "/api/v2/dags/ex11_5_sales_refresh/dagRuns", f"expected POST .../dagRuns, got {post!r}"
    conf = post["json"].get("conf") or {}
    assert conf.get("source") == "ci-pipeline" and conf.get("event") == "deploy_complete", (
        f"the DAG run's conf must carry the event: got {post['json']!r}"
    )


@pytest.mark.criterion("ex11_5.t2.replay_delivered_once")
def test_the_event_id_is_the_senders_own_when_it_has_one(event_driven):
    def parsed(payload):
        body = json.dumps(payload).encode()
        return event_driven.parse_notification(payload, body), hashlib.sha256(body).hexdigest()

    with_sequencer = minio_notification("landing/bronze/a.parquet", sequencer="0055AED6DCD90281E5")
    later = {**with_sequencer, "EventTime": "2025-01-15T10:00:01Z"}  # another body, the same S3 event
    cases = [
        ("MinIO with Records[0].s3.object.sequencer", with_sequencer, "0055AED6DCD90281E5"),
        ("the same MinIO event in another body", later, "0055AED6DCD90281E5"),
        ("MinIO without a sequencer", minio_notification("landing/bronze/a.parquet"), None),
        ("MinIO without Records", {"EventName": "s3:ObjectCreated:Put", "Key": "landing/b.parquet"}, None),
        ("a generic webhook with an id", generic_notification("crm", "updated", id="evt-42"), "evt-42"),
        ("a generic webhook without one", generic_notification("crm", "updated"), None),
    ]
    for label, payload, own_id in cases:
        event, body_hash = parsed(payload)
        expected = own_id or body_hash
        assert event.event_id == expected, (
            f"parse_notification() of {label} ({payload!r}): expected event_id {expected!r} "
            f"({'the sender' + chr(39) + 's id' if own_id else 'the SHA-256 of the body'}), got {event.event_id!r}")
    for payload in ({"EventName": "s3:ObjectCreated:Put", "Key": 7}, {"EventName": 7, "Key": "landing/a"}, ["x"]):
        with raises_learners(event_driven.UnknownFormat):
            parsed(payload)


@pytest.mark.criterion("ex11_5.t2.replay_delivered_once")
def test_a_replayed_event_is_delivered_once(webhook, fake_airflow):
    hook = webhook()
    payload = minio_notification("landing/bronze/sales/a.parquet")
    statuses = [hook.sender.send(payload)[0] for _ in range(3)]
    assert statuses[0] == 202 and all(s in (200, 202) for s in statuses), (
        f"the same signed notification three times: expected accepted each time (202, then 200/202), got {statuses}"
    )
    hook.sender.send(minio_notification("landing/bronze/sales/b.parquet"))
    # Deliveries keep the order of acceptance: once b.parquet is in, a queued replay of a.parquet would be too.
    hook.wait_for(lambda: any("b.parquet" in json.dumps(p["json"]) for p in fake_airflow.deliveries),
                  "b.parquet delivered")
    keys = [p["json"]["extra"].get("key") for p in fake_airflow.deliveries]
    assert_object_keys(keys, "landing", ["bronze/sales/a.parquet", "bronze/sales/b.parquet"])
    assert sorted(keys) == ["bronze/sales/a.parquet", "bronze/sales/b.parquet"], (
        f"a.parquet sent three times and b.parquet once: expected one delivery each, got keys {keys}"
    )


@pytest.mark.criterion("ex11_5.t2.retries_when_airflow_is_down")
def test_nothing_accepted_is_lost_while_airflow_is_briefly_down(webhook, fake_airflow):
    hook = webhook()
    fake_airflow.fail_next = 3  # the api-server restarts
    status, body = hook.sender.send(minio_notification("landing/bronze/sales/a.parquet"))
    assert status == 202, f"accepted while Airflow is down: expected 202, got {status} {body!r}"
    hook.wait_for(lambda: len(fake_airflow.deliveries) >= 1, "the event delivered after Airflow came back")
    failed = [r for r in fake_airflow.requests if r["status"] == 503]
    assert len(failed) == 3 and len(fake_airflow.deliveries) == 1, (
        f"3 answers of 503 then OK: expected 3 failed calls then one delivery, got {fake_airflow.requests!r}"
    )


@pytest.mark.criterion("ex11_5.t2.retries_when_airflow_is_down")
def test_a_delivery_that_gives_up_is_logged_and_can_be_sent_again(webhook, fake_airflow, learner_log):
    learner_log.set_level(logging.INFO)
    hook = webhook(retry_delays=(0.01,))
    fake_airflow.fail_next = 10
    payload = minio_notification("landing/bronze/sales/a.parquet")
    assert hook.sender.send(payload)[0] == 202
    hook.wait_for(lambda: sum(r["status"] == 503 for r in fake_airflow.requests) >= 2, "two attempts")
    last_attempt = fake_airflow.requests[-1]["at"]
    hook.wait_for(lambda: any(r["created"] >= last_attempt for r in learner_log.records()),
                  "the outcome logged after the last attempt failed (at any level)")
    fake_airflow.fail_next = 0
    # The outcome line may come just before the receiver forgets the event: re-send until it is accepted again.
    hook.wait_for(lambda: hook.sender.send(payload)[0] == 202,
                  "re-sent after the receiver gave up: expected 202 (accepted again)")
    hook.wait_for(lambda: len(fake_airflow.deliveries) == 1, "the re-sent event delivered")
    assert "a.parquet" in json.dumps(fake_airflow.deliveries[0]["json"]), (
        f"the re-sent event: expected a.parquet delivered, got {fake_airflow.deliveries!r}"
    )
