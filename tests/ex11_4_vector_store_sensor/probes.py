"""Observations of Exercise 11.4 made where the learner's trigger runs (in a graded run, the subject): how long
its event loop stalls. Returned as data; the tests decide ("measured in the subject")."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests.harness.remote import in_subject, note_measured
from tests.harness.triggers import first_event


def first_event_and_worst_loop_gap(trigger: Any) -> tuple[dict, float]:
    """Run `trigger` to its first event beside a 10 ms heartbeat; the payload and the heartbeat's longest gap."""
    note_measured("event-loop stalls")
    return _first_event_and_worst_loop_gap(trigger)


@in_subject(always=True)
def _first_event_and_worst_loop_gap(trigger: Any) -> tuple[dict, float]:
    async def scenario():
        gaps: list[float] = []

        async def heartbeat():
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        beat = asyncio.create_task(heartbeat())
        try:
            event = await first_event(trigger, within=10)
        finally:
            beat.cancel()
        return event.payload, max(gaps)

    return asyncio.run(scenario())
