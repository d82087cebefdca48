"""A minimal deferrable operator and trigger that exercise the harness itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException
from airflow.triggers.base import BaseTrigger, TriggerEvent


class WaitTrigger(BaseTrigger):
    def __init__(self, seconds: float, label: str = "wait") -> None:
        super().__init__()
        self.seconds = seconds
        self.label = label

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {"seconds": self.seconds, "label": self.label}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await asyncio.sleep(self.seconds)
        yield TriggerEvent({"status": "success", "label": self.label, "waited": self.seconds})


class WaitOperator(BaseOperator):
    def __init__(self, *, seconds: float, defer_timeout: float | None = 30.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seconds = seconds
        self.defer_timeout = defer_timeout

    def execute(self, context: Context) -> Any:
        if self.seconds <= 0:
            return {"status": "immediate"}
        self.marker = "set in execute"  # gone on the resumed instance
        timeout = timedelta(seconds=self.defer_timeout) if self.defer_timeout is not None else None
        self.defer(trigger=WaitTrigger(self.seconds, label=self.task_id), method_name="execute_complete",
                   timeout=timeout)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("status") != "success":
            raise AirflowException(f"trigger failed: {event}")
        return {**event, "had_marker": hasattr(self, "marker")}


class DropsArgumentTrigger(WaitTrigger):
    """A classic mistake: serialize() forgets an argument."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {"seconds": self.seconds}


class ReturnsInsteadOfYieldingTrigger(WaitTrigger):
    async def run(self):  # type: ignore[override]
        return TriggerEvent({"status": "success"})


class NoTimeoutOperator(WaitOperator):
    def execute(self, context: Context) -> Any:
        self.defer(trigger=WaitTrigger(self.seconds), method_name="execute_complete")
