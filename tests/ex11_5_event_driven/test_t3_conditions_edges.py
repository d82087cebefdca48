"""Task 3 at its edges: the signature's defaults, the poll interval, the audit row's context, and
the seed's three conditions at their boundaries (an empty inbox, a 5xx with a depth, a hanging or non-2xx
service, one failure required)."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Iterator

import pytest
from aiohttp import web

from fixtures.http import BackgroundServer
from tests.ex11_5_event_driven.conftest import is_queue_context, no_event, take_events
from tests.ex11_5_event_driven.probes import counting_trigger_class


class Answers:
    """An HTTP endpoint whose status and JSON body the test sets."""

    def __init__(self) -> None:
        self.status, self.body = 200, {}

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        return web.json_response(self.body, status=self.status)


@pytest.fixture
def answers() -> Iterator[tuple[Answers, str]]:
    endpoint = Answers()
    with BackgroundServer(endpoint.make_app) as server:
        yield endpoint, f"{server.url}/probe"


@pytest.mark.criterion("ex11_5.t3.skip_or_fire")
def test_the_defaults_of_the_signature(event_driven, tmp_path):
    trigger = event_driven.ServiceHealthTrigger(name="service_health", audit_db=str(tmp_path / "a.sqlite"),
                                                health_url="http://127.0.0.1:1/api/health")
    _, kwargs = trigger.serialize()
    expected = {"poll_interval": 2.0, "poll_timeout": 10.0, "allow_concurrent": False, "failures_required": 3}
    got = {k: kwargs.get(k) for k in expected}
    assert got == expected, (
        f"ServiceHealthTrigger(name, audit_db, health_url) without the optional arguments: expected serialize() to "
        f"carry the signature's defaults {expected}, got {kwargs!r}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.skip_or_fire")
async def test_polls_come_every_poll_interval_not_faster(tmp_path):
    CountingTrigger = counting_trigger_class()  # noqa: N806 (skips every poll and counts them)
    CountingTrigger.polls = 0
    trigger = CountingTrigger(name="counting", audit_db=str(tmp_path / "a.sqlite"), poll_interval=0.1,
                              poll_timeout=1)
    await no_event(trigger, within=1.0)
    assert 3 <= CountingTrigger.polls <= 1.0 / 0.1 + 3, (
        f"poll_interval=0.1, every poll a skip, for 1 s: expected about 10 polls (polling goes on, one per "
        f"poll_interval), got {CountingTrigger.polls}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.audit_trail")
async def test_the_row_keeps_the_context(event_driven, tmp_path):
    db = tmp_path / "audit.sqlite"
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "data_file_7.csv").write_text("id\n1\n")
    trigger = event_driven.InboxFileTrigger(name="file_watcher", audit_db=str(db), inbox=str(inbox), poll_interval=0.005)
    event = (await take_events(trigger, 1))[0]
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        rows = [dict(r) for r in connection.execute("SELECT * FROM trigger_executions")]
    assert len(rows) == 1 and rows[0].get("id") == event.get("activation_id"), (
        f"one fire: expected one row in trigger_executions, for activation {event.get('activation_id')}, got {rows!r}")
    assert "data_file_7.csv" in str(rows[0].get("context")), (
        f"the row of an activation with context {event.get('context')!r}: expected its context column to hold "
        f"it, got {rows[0]!r}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.inbox_trigger")
async def test_an_empty_inbox_is_a_skip_and_a_file_is_named_with_its_inbox(event_driven, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    trigger = event_driven.InboxFileTrigger(name="file_watcher", audit_db=str(tmp_path / "a.sqlite"), inbox=str(inbox))
    result = await trigger.poll()
    assert result.fire is False, f"poll() of an empty inbox: expected a skip, got {result!r}"
    (inbox / "b.csv").write_text("id\n")
    (inbox / "a.csv").write_text("id\n")
    result = await trigger.poll()
    assert result.fire is True and result.context == {"inbox": str(inbox), "filename": "a.csv"}, (
        f"poll() of an inbox holding a.csv and b.csv: expected fire with {{'inbox': {str(inbox)!r}, 'filename': "
        f"'a.csv'}}, got {result!r}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.queue_depth_trigger")
async def test_an_error_answer_is_no_depth_reading(event_driven, tmp_path, answers):
    endpoint, url = answers
    endpoint.status, endpoint.body = 503, {"name": "orders", "depth": 50}
    trigger = event_driven.QueueDepthTrigger(name="queue_monitor", audit_db=str(tmp_path / "a.sqlite"), queue_url=url,
                                             threshold=10, poll_interval=0.005, poll_timeout=2, allow_concurrent=True)
    await no_event(trigger, within=0.15)
    endpoint.status = 200
    event = (await take_events(trigger, 1))[0]
    assert is_queue_context(event.get("context"), url, 50), (
        f"HTTP 503 with a body saying depth 50, then HTTP 200 with depth 50: expected no fire on the 503 and one "
        f"on the 200, got {event!r}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.service_health_trigger")
async def test_one_failure_is_enough_when_one_is_required(event_driven, tmp_path, answers):
    endpoint, url = answers
    endpoint.status = 503
    trigger = event_driven.ServiceHealthTrigger(name="service_health", audit_db=str(tmp_path / "a.sqlite"), health_url=url,
                                                failures_required=1, poll_interval=0.005, poll_timeout=2)
    result = await trigger.poll()
    assert result.fire is True, f"failures_required=1, the service answers 503: expected the first check to fire, got {result!r}"


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.service_health_trigger")
async def test_only_a_2xx_answer_is_a_healthy_check(event_driven, tmp_path, answers):
    endpoint, url = answers
    trigger = event_driven.ServiceHealthTrigger(name="service_health", audit_db=str(tmp_path / "a.sqlite"), health_url=url,
                                                failures_required=2, poll_interval=0.005, poll_timeout=2)
    seen = {}
    for status in (204, 300, 404, 500):
        endpoint.status = status
        seen[status] = [(await trigger.poll()).fire for _ in range(2)]
        endpoint.status = 200
        await trigger.poll()  # a success resets the count
    expected = {204: [False, False], 300: [False, True], 404: [False, True], 500: [False, True]}
    assert seen == expected, (
        f"failures_required=2, two checks answered with each status (then one 200): expected 2xx healthy and every "
        f"other status a failed check, {expected}, got {seen}")


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_5.t3.service_health_trigger")
async def test_a_service_that_hangs_fails_its_checks(event_driven, tmp_path):
    with socket.socket() as hanging:  # accepts connections (the kernel's backlog) and never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(16)
        url = f"http://127.0.0.1:{hanging.getsockname()[1]}/api/health"
        trigger = event_driven.ServiceHealthTrigger(name="service_health", audit_db=str(tmp_path / "a.sqlite"),
                                                    health_url=url, failures_required=2, poll_interval=0.005,
                                                    poll_timeout=0.2)
        events = await take_events(trigger, 1, within=3)
    assert events[0].get("context") == {"service": url}, (
        f"a service that never answers, poll_timeout=0.2, failures_required=2: expected the checks to fail (a "
        f"timeout is a failed check) and fire, got {events!r}")


@pytest.mark.criterion("ex11_5.t3.audit_trail")
def test_rows_gives_every_activation_as_a_dict_oldest_first(event_driven, tmp_path):
    audit = event_driven.ActivationAudit(tmp_path / "audit.sqlite")
    first = audit.start_unless_running("file_watcher", {"filename": "a.csv"}, False)
    second = audit.start_unless_running("file_watcher", {"filename": "b.csv"}, False)
    audit.complete(first, "success")
    rows = audit.rows()
    got = [(r.get("id"), r.get("trigger_name"), r.get("outcome")) for r in rows] if all(
        isinstance(r, dict) for r in rows) else rows
    expected = [(first, "file_watcher", "success"), (second, "file_watcher", None)]
    assert got == expected, (
        f"ActivationAudit.rows() after two activations, the first completed: expected every row as a dict, oldest "
        f"first, (id, trigger_name, outcome) {expected}, got {rows!r}")
