"""The least a trigger can do, as the baseline of `real_triggerer.py --baseline`: sleep until a moment, then
fire. Whatever the triggerer spends on 1000 of these (memory, blocked loops, time to write the events) is
Airflow's own cost of running a trigger, not the cost of what the trigger does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class SleepUntilTrigger(BaseTrigger):
    def __init__(self, fire_at: float) -> None:
        super().__init__()
        self.fire_at = fire_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "baseline_trigger.SleepUntilTrigger", {"fire_at": self.fire_at}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self.log.info("sleeping until %.3f", self.fire_at)  # one line, as a real trigger logs its start
        await asyncio.sleep(max(0.0, self.fire_at - time.time()))
        yield TriggerEvent({"fired_at": time.time()})
