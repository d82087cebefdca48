"""Hidden criteria of Exercise 11.3 (instructors only; the learner release drops this file)."""

from __future__ import annotations

import asyncio

import pytest

from tests.ex11_3_custom_trigger.conftest import wait_until
from tests.harness import first_event
from tests.harness.resources import resource_warnings


@pytest.mark.criterion("ex11_3.t1.cancellation_cleanup")
@pytest.mark.parametrize("while_", ["a request is in flight", "it sleeps between polls"])
def test_cancelling_run_alone_closes_its_session_and_propagates(custom_trigger, health_server, sessions, learner_log,
                                                                 while_):
    """The chapter: cancelling run() closes the session (held in `async with`), without cleanup()'s help, and
    the cancellation is never swallowed."""
    health_server.force("maintenance")
    if while_ == "a request is in flight":
        health_server.latency = 30
        trigger = custom_trigger.HttpPollingTrigger(health_server.health_url, expected_value="healthy", poll_interval=0.02,
                                                    timeout=60)
    else:
        trigger = custom_trigger.HttpPollingTrigger(health_server.health_url, expected_value="healthy", poll_interval=30,
                                                    timeout=60)

    async def cancel_mid_wait() -> object:
        agen = trigger.run()
        task = asyncio.create_task(anext(agen))
        if while_ == "a request is in flight":
            await wait_until(lambda: len(health_server.requests) >= 1, "the first poll", task, within=40)
        await asyncio.sleep(0.5)  # in flight: the answer takes 30 s; else asleep (a start phase or between polls)
        task.cancel()
        try:
            return await task
        except asyncio.CancelledError:
            return asyncio.CancelledError

    with resource_warnings() as unclosed:  # a garbage collection at its end: what is left open warns
        outcome = asyncio.run(cancel_mid_wait())
    assert outcome is asyncio.CancelledError, (
        f"run() cancelled while {while_}: expected the CancelledError to propagate (never swallow the "
        f"cancellation), got {outcome!r}")
    unclosed += [m for m in learner_log.messages() if "Unclosed" in m]
    assert all(s.closed for s in sessions) and (sessions or while_ != "a request is in flight"), (
        f"run() cancelled while {while_}, cleanup() not called: expected its aiohttp.ClientSession closed, "
        f"{sum(not s.closed for s in sessions)} of {len(sessions)} still open")
    assert not unclosed, f"run() cancelled while {while_} left resources open: {unclosed[:3]}"


@pytest.mark.criterion("ex11_3.t1.cancellation_cleanup")
def test_cancelling_the_trigger_closes_its_session(custom_trigger, health_server, sessions, learner_log):
    """The triggerer cancels run() when the trigger moves or the task is cleared: nothing may stay open."""
    health_server.force("maintenance")
    trigger = custom_trigger.HttpPollingTrigger(health_server.health_url, expected_value="healthy", poll_interval=0.02,
                                                timeout=30)

    async def cancel_mid_wait() -> None:
        task = asyncio.create_task(first_event(trigger, within=30))
        await wait_until(lambda: len(health_server.requests) >= 3, "three polls", task)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with resource_warnings() as unclosed:  # a garbage collection at its end: what is left open warns
        asyncio.run(cancel_mid_wait())
    unclosed += [m for m in learner_log.messages() if "Unclosed" in m]
    assert sessions, "run() polled without an aiohttp.ClientSession"
    assert all(s.closed for s in sessions), (
        f"cancelled after 3 polls: expected every aiohttp.ClientSession closed, "
        f"{sum(not s.closed for s in sessions)} of {len(sessions)} still open"
    )
    assert not unclosed, f"cancelled run() left resources open: {unclosed[:3]}"


@pytest.mark.asyncio
@pytest.mark.criterion("ex11_3.t3.ignores_partial_files")
async def test_uploads_in_progress_and_directories_do_not_count(custom_trigger, landing_zone):
    landing_zone.drop("a.csv")
    landing_zone.drop_partial("b.csv")  # hidden `.b.csv`, still being written
    (landing_zone.root / "archive.csv").mkdir()  # a directory that happens to match
    trigger = custom_trigger.FilePatternTrigger(pattern=landing_zone.pattern(), min_files=2, poll_interval=0.02, timeout=0.3)
    payload = (await first_event(trigger, within=5)).payload
    assert payload.get("status") == "timeout", (
        f"a.csv, an upload in progress (.b.csv) and a directory archive.csv with min_files=2: expected "
        f"'timeout', got {payload!r}"
    )
    landing_zone.drop("b.csv")
    trigger = custom_trigger.FilePatternTrigger(pattern=landing_zone.pattern(), min_files=2, poll_interval=0.02, timeout=5)
    payload = (await first_event(trigger, within=5)).payload
    expected = [str(landing_zone.root / "a.csv"), str(landing_zone.root / "b.csv")]
    assert payload.get("files") == expected, f"expected only the regular files {expected!r}, got {payload!r}"
