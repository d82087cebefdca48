"""Task 3: poll-and-fire triggers, deduplication by context hash, the audit trail, the seed's examples."""

from __future__ import annotations

import socket
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.ex11_5_event_driven import concurrent_audit
from tests.ex11_5_event_driven.conftest import is_queue_context, no_event, take_events
from tests.harness import roundtrip
from tests.harness.remote import subject_module


def scripted(tmp_path: Path, steps: list, **kwargs) -> Any:
    """A ScriptedTrigger (tests.ex11_5_event_driven.team_triggers): each poll plays the next step ("skip",
    "error", "hang", or a context dict to fire)."""
    options = {"name": "scripted", "audit_db": str(tmp_path / "audit.sqlite"), "poll_interval": 0.005,
               "poll_timeout": 0.2, **kwargs}
    return subject_module("tests.ex11_5_event_driven.team_triggers").scripted_trigger(steps, **options)


def audit_rows(path: Path) -> list[dict]:
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(r) for r in connection.execute("SELECT * FROM trigger_executions ORDER BY rowid")]


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.skip_or_fire")
async def test_run_goes_on_polling_after_a_fire(event_driven, tmp_path):
    trigger = scripted(tmp_path, [{"n": 1}, "skip", {"n": 2}])
    events = await take_events(trigger, 2, within=3)
    contexts = [e.get("context") for e in events]
    assert contexts == [{"n": 1}, {"n": 2}], (
        f"fire, skip, fire in one run() (a watcher's run() never ends): expected two events, got {contexts}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.skip_or_fire")
async def test_skips_then_fires_with_its_context(event_driven, tmp_path):
    trigger = scripted(tmp_path, ["skip", "skip", {"filename": "a.csv"}])
    event = (await take_events(trigger, 1))[0]
    assert event.get("trigger") == "scripted" and event.get("context") == {"filename": "a.csv"}, (
        f"skip, skip, fire({{'filename': 'a.csv'}}): expected an event with trigger and context, got {event!r}"
    )
    assert event.get("context_hash") == event_driven.context_hash({"filename": "a.csv"}), (
        f"event context_hash: got {event!r}")
    assert isinstance(event.get("activation_id"), int), f"event activation_id (the audit row): got {event!r}"
    assert event_driven.context_hash({"a": 1, "b": 2}) == event_driven.context_hash({"b": 2, "a": 1}), (
        "context_hash depends on key order")
    assert event_driven.context_hash({"a": 1}) != event_driven.context_hash({"a": 2}), (
        "context_hash is the same for different contexts")


@pytest.mark.criterion("ex11_5.t3.skip_or_fire")
def test_subclass_serializes_base_and_own_arguments(event_driven, target, tmp_path):
    trigger = event_driven.QueueDepthTrigger(name="queue_monitor", audit_db=str(tmp_path / "a.sqlite"),
                                             queue_url="http://127.0.0.1:1/queues/orders", threshold=10, poll_interval=3,
                                             poll_timeout=10, allow_concurrent=True)
    classpath, kwargs = trigger.serialize()
    assert classpath == f"{target.package}.event_driven.QueueDepthTrigger", f"classpath: got {classpath!r}"
    expected = {"name": "queue_monitor", "audit_db": str(tmp_path / "a.sqlite"), "poll_interval": 3.0,
                "poll_timeout": 10.0, "allow_concurrent": True, "queue_url": "http://127.0.0.1:1/queues/orders",
                "threshold": 10}
    assert kwargs == expected, f"serialize() kwargs: expected {expected!r}, got {kwargs!r}"
    roundtrip(trigger)


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.poll_errors_and_timeout")
async def test_errors_and_slow_polls_are_logged_and_polling_goes_on(event_driven, tmp_path, learner_log):
    trigger = scripted(tmp_path, ["error", "hang", "error", {"n": 1}], poll_timeout=0.05)
    event = (await take_events(trigger, 1, within=3))[0]
    assert event.get("context") == {"n": 1}, f"error, hang past poll_timeout, error, fire: got {event!r}"
    text = "".join(learner_log.output())
    assert "unreachable" in text or "error" in text.lower(), (
        f"a failing poll must be logged; log was:\n{text[-1500:]}"
    )


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.dedup_by_context")
async def test_same_context_in_progress_is_suppressed_other_contexts_fire(event_driven, tmp_path):
    a, b = {"filename": "a.csv"}, {"filename": "b.csv"}
    trigger = scripted(tmp_path, [a, a, a, b, a], allow_concurrent=False)
    events = await take_events(trigger, 2, settle=0.1)
    assert [e.get("context") for e in events] == [a, b], (
        f"fires a, a, a, b, a with a's run still in progress: expected events for a then b, got {events!r}"
    )
    audit = event_driven.ActivationAudit(tmp_path / "audit.sqlite")
    audit.complete(events[0]["activation_id"], "success")
    events = await take_events(scripted(tmp_path, [a, b], allow_concurrent=False), 1, settle=0.1)
    assert [e.get("context") for e in events] == [a], (
        f"after a's run completed (b's still running), fires a, b: expected only a, got {events!r}"
    )


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.dedup_by_context")
async def test_allow_concurrent_fires_every_time(event_driven, tmp_path):
    a = {"queue": "orders"}
    events = await take_events(scripted(tmp_path, [a, a, a], allow_concurrent=True), 3)
    assert len({e.get("activation_id") for e in events}) == 3, f"allow_concurrent=True: expected 3 activations, got {events!r}"


@pytest.mark.criterion("ex11_5.t3.dedup_by_context")
def test_the_same_context_of_another_trigger_is_not_suppressed(event_driven, tmp_path):
    audit = event_driven.ActivationAudit(tmp_path / "audit.sqlite")
    context = {"queue": "orders"}
    first = audit.start_unless_running("queue_monitor", context, False)
    other = audit.start_unless_running("backlog_alarm", context, False)
    again = audit.start_unless_running("queue_monitor", context, False)
    assert first is not None and other is not None and again is None, (
        f"start_unless_running for queue_monitor, then backlog_alarm, then queue_monitor again, one context, "
        f"nothing completed: expected an id, an id (another trigger), None (same trigger and context), got "
        f"{first!r}, {other!r}, {again!r}")


@pytest.mark.criterion("ex11_5.t3.dedup_by_context")
def test_a_row_older_than_stale_after_no_longer_blocks(event_driven, tmp_path):
    db = tmp_path / "audit.sqlite"
    audit = event_driven.ActivationAudit(db, stale_after=3600)
    context = {"queue": "orders"}
    first = audit.start_unless_running("queue_monitor", context, False)
    assert first is not None and audit.start_unless_running("queue_monitor", context, False) is None, (
        "a row in progress: expected the same context blocked")
    # Instead of waiting an hour: the row (the starter's trigger_executions columns) started two hours ago, in
    # whatever form the audit keeps its times (an ISO string or epoch seconds).
    with sqlite3.connect(db) as connection:
        started = connection.execute("SELECT started_at FROM trigger_executions WHERE id = ?", (first,)).fetchone()[0]
        if isinstance(started, int | float):
            earlier = started - 7200
        else:
            when = datetime.fromisoformat(str(started).replace("Z", "+00:00")) - timedelta(hours=2)
            earlier = when.isoformat().replace("+00:00", "Z") if str(started).endswith("Z") else when.isoformat()
        connection.execute("UPDATE trigger_executions SET started_at = ? WHERE id = ?", (earlier, first))
    again = audit.start_unless_running("queue_monitor", context, False)
    assert again is not None, (
        f"stale_after=3600, a row never completed that started 2 h ago ({started!r} moved to {earlier!r}): expected "
        f"a new activation (a row without its completion blocks only until stale_after), got {again!r}")


@pytest.mark.criterion("ex11_5.t3.dedup_by_context")
def test_two_threads_checking_at_once_start_the_context_once(event_driven, tmp_path, monkeypatch):
    db = tmp_path / "audit.sqlite"
    audit = event_driven.ActivationAudit(db)
    # The connections the learner's code opens, where it runs; the four calls come from four threads here.
    monkeypatch.setattr(subject_module("sqlite3"), "connect",
                        subject_module(concurrent_audit.__name__).holding_the_check_open(parties=2))
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda _: audit.start_unless_running(
            concurrent_audit.TRIGGER, concurrent_audit.CONTEXT, False), range(4)))
    rows = concurrent_audit.running_rows(db)
    assert len(rows) == 1 and sum(i is not None for i in ids) == 1, (
        f"start_unless_running({concurrent_audit.TRIGGER!r}, same context, allow_concurrent=False) from 4 threads "
        f"at once, each paused after its duplicate check: expected one activation (check and insert in one "
        f"transaction, e.g. BEGIN IMMEDIATE before the SELECT), got ids {ids} and {len(rows)} running rows"
    )


@pytest.mark.integration
@pytest.mark.criterion("ex11_5.t3.dedup_by_context")
def test_two_processes_checking_at_once_start_the_context_once(event_driven, tmp_path):
    db = tmp_path / "audit.sqlite"
    exit_codes = concurrent_audit.start_in_processes(db, workers=2)
    assert exit_codes == [0, 0], f"2 processes calling start_unless_running(): expected exit codes 0, got {exit_codes}"
    rows = concurrent_audit.running_rows(db)
    assert len(rows) == 1, (
        f"start_unless_running({concurrent_audit.TRIGGER!r}, same context, allow_concurrent=False) from 2 processes "
        f"at once, each paused after its duplicate check: expected one running row, got {len(rows)}: {rows!r}"
    )


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.audit_trail")
async def test_every_activation_is_audited_until_completed(event_driven, tmp_path):
    event = (await take_events(scripted(tmp_path, [{"filename": "a.csv"}]), 1))[0]
    rows = audit_rows(tmp_path / "audit.sqlite")
    assert len(rows) == 1, f"one activation: expected one row in trigger_executions, got {rows!r}"
    row = rows[0]
    assert row.get("trigger_name") == "scripted" and row.get("context_hash") == event["context_hash"], f"row: {row!r}"
    assert row.get("started_at") and row.get("completed_at") is None and row.get("run_id") is None, (
        f"a fired activation: expected started_at set, run_id and completed_at empty, got {row!r}"
    )
    audit = event_driven.ActivationAudit(tmp_path / "audit.sqlite")
    audit.attach_run(event["activation_id"], "asset_triggered__2025-01-01")
    audit.complete(event["activation_id"], "success")
    row = audit_rows(tmp_path / "audit.sqlite")[0]
    assert row.get("run_id") == "asset_triggered__2025-01-01" and row.get("completed_at"), (
        f"after attach_run() and complete(): expected run_id and completed_at, got {row!r}"
    )
    assert row["completed_at"] >= row["started_at"], f"completed before it started: {row!r}"


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.inbox_trigger")
async def test_inbox_trigger_fires_with_the_file_name(event_driven, tmp_path):
    inbox = tmp_path / "inbox"
    trigger = event_driven.InboxFileTrigger(name="file_watcher", audit_db=str(tmp_path / "a.sqlite"), inbox=str(inbox),
                                            poll_interval=0.005)
    await no_event(trigger, within=0.05)  # the inbox does not even exist yet
    inbox.mkdir()
    (inbox / ".data_file_2.csv.part").write_text("id\n")  # an upload in progress
    await no_event(trigger, within=0.05)
    (inbox / "processed").mkdir()  # where the DAG moves what it has processed: a folder, not a file
    (inbox / "processed" / "data_file_0.csv").write_text("id\n0\n")
    await no_event(trigger, within=0.5)  # many polls, even on a loaded machine
    (inbox / "data_file_1.csv").write_text("id\n1\n")
    event = (await take_events(trigger, 1, settle=0.05))[0]
    assert (event.get("context") or {}).get("filename") == "data_file_1.csv", f"inbox event: got {event!r}"


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.queue_depth_trigger")
async def test_an_error_answer_from_the_queue_is_an_error_that_is_logged(event_driven, tmp_path, queue_sim, learner_log):
    trigger = event_driven.QueueDepthTrigger(name="queue_monitor", audit_db=str(tmp_path / "a.sqlite"),
                                             queue_url=queue_sim.queue_url, threshold=10, poll_interval=0.005,
                                             poll_timeout=2, allow_concurrent=True)
    queue_sim.set_depth(50)
    queue_sim.fail_next(10_000)  # every answer in this test is an HTTP 500
    await no_event(trigger, within=0.1)
    text = "".join(learner_log.output())
    assert "500" in text or "error" in text.lower(), (
        f"QueueDepthTrigger polling a queue that answers HTTP 500: expected each answer treated as an error "
        f"(logged, polling goes on), nothing was logged:\n{text[-1500:]}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.queue_depth_trigger")
async def test_queue_depth_fires_above_the_threshold(event_driven, tmp_path, queue_sim):
    trigger = event_driven.QueueDepthTrigger(name="queue_monitor", audit_db=str(tmp_path / "a.sqlite"),
                                             queue_url=queue_sim.queue_url, threshold=10, poll_interval=0.005,
                                             poll_timeout=2, allow_concurrent=True)
    queue_sim.set_depth(10)
    await no_event(trigger, within=0.1)
    queue_sim.fail_next(2)
    queue_sim.set_depth(11)
    event = (await take_events(trigger, 1))[0]
    assert is_queue_context(event.get("context"), queue_sim.queue_url, 11), (
        f"depth 11 > threshold 10 after two HTTP 500s: expected context {{'queue': <the queue's name 'orders' or its "
        f"url>, 'depth': 11}}, got {event!r}"
    )


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.service_health_trigger")
async def test_service_health_fires_after_three_failures_in_a_row(event_driven, tmp_path, health_server):
    url = health_server.health_url
    # 2 failures, a success (the count resets), then 3 failures.
    trigger = event_driven.ServiceHealthTrigger(name="service_health", audit_db=str(tmp_path / "b.sqlite"), health_url=url,
                                                failures_required=3, poll_interval=0.005, poll_timeout=2)
    for _ in range(2):
        health_server.force("maintenance")
        assert (await trigger.poll()).fire is False, "after 1-2 failed checks: expected skip"
    health_server.force("healthy")
    assert (await trigger.poll()).fire is False, "a healthy check: expected skip"
    health_server.force("maintenance")
    results = [(await trigger.poll()).fire for _ in range(3)]
    assert results == [False, False, True], (
        f"2 failures, 1 success, then 3 failures: expected the 3rd failure in a row to fire, got {results}"
    )
    event = (await take_events(trigger, 1))[0]
    assert event.get("context") == {"service": url}, f"health event context: expected {{'service': {url!r}}}, got {event!r}"


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.service_health_trigger")
async def test_a_service_that_does_not_answer_fails_its_checks(event_driven, tmp_path):
    with socket.socket() as probe:  # a port nothing listens on: every check is refused
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/api/health"
    trigger = event_driven.ServiceHealthTrigger(name="service_health", audit_db=str(tmp_path / "c.sqlite"), health_url=url,
                                                failures_required=2, poll_interval=0.005, poll_timeout=2)
    results = [(await trigger.poll()).fire for _ in range(2)]
    assert results == [False, True], (
        f"a service whose port refuses connections, failures_required=2: expected the 2nd refused check to fire "
        f"(a check that gets no answer failed), got {results}")


@pytest.mark.integration
@pytest.mark.criterion("ex11_5.t3.dag_completes_audit")
def test_the_inbox_dag_attaches_its_run_and_completes_the_row(event_driven, run_dag, tmp_path):
    inbox, db = tmp_path / "inbox", tmp_path / "audit.sqlite"
    inbox.mkdir()
    (inbox / "data_file_1.csv").write_text("id\n1\n2\n")
    audit = event_driven.ActivationAudit(db)
    ok = audit.start_unless_running("file_watcher", {"inbox": str(inbox), "filename": "data_file_1.csv"}, False)
    broken = audit.start_unless_running("file_watcher", {"inbox": str(inbox), "filename": "gone.csv"}, False)
    env = {"WORKBOOK_INBOX_DIR": str(inbox), "WORKBOOK_AUDIT_DB": str(db)}
    activation = {"activation_id": ok, "context": {"inbox": str(inbox), "filename": "data_file_1.csv"}}
    result = run_dag("ex11_5_inbox", env=env, conf={"activations": [activation]}).assert_success()
    row = next(r for r in audit_rows(db) if r["id"] == ok)
    assert row["run_id"] == result.run_id and row["completed_at"] and row["outcome"] == "success", (
        f"after a successful run {result.run_id!r}: expected the row's run_id, completed_at, outcome 'success', got {row!r}"
    )
    assert (inbox / "processed" / "data_file_1.csv").exists() and not (inbox / "data_file_1.csv").exists(), (
        "the processed file must leave the inbox (into processed/), or the trigger fires for it again"
    )
    activation = {"activation_id": broken, "context": {"inbox": str(inbox), "filename": "gone.csv"}}
    result = run_dag("ex11_5_inbox", env=env, conf={"activations": [activation]})
    row = next(r for r in audit_rows(db) if r["id"] == broken)
    assert result.state == "failed" and row["completed_at"] and row["outcome"] == "failed", (
        f"a run whose processing fails (file gone): expected run failed and the row completed with outcome 'failed' "
        f"(else it blocks its context forever), got run {result.state!r}, row {row!r}"
    )
