"""Exercise 11.3, Custom Trigger: wait in the triggerer instead of in a worker slot.

Read exercises/ex11_3_custom_trigger.md first. You build:

- `HttpPollingTrigger` (Task 1): polls an HTTP endpoint until a JSON field has the expected value;
- `HttpPollingOperator` (Task 2): checks once in the worker, then defers to the trigger;
- `FilePatternTrigger` and `FilePatternSensor` (Task 3): wait for files matching a glob pattern.

The constructors are done (they store their arguments, so the DAG files parse); every method that says
"TODO" is yours. Airflow 3 imports only: `airflow.sdk`, `airflow.triggers.base`, `airflow.sdk.exceptions`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from airflow.sdk import BaseOperator, BaseSensorOperator, Context, PokeReturnValue
from airflow.triggers.base import BaseTrigger, TriggerEvent

from starters._todo import todo


# ---- Task 1: the HTTP polling trigger ------------------------------------------------------------------
class HttpPollingTrigger(BaseTrigger):
    """Poll `endpoint` every `poll_interval` s until the JSON field `response_check` (a dotted path such
    as `status` or `data.state`) equals `expected_value`, for at most `timeout` s.

    `run()` yields exactly ONE `TriggerEvent` and returns. Its payload's `status` is one of:

    - `"success"` with `value` (what the field held), `attempts` and `elapsed` (seconds);
    - `"timeout"` with `last_http_status`, `last_value`, `attempts` and `elapsed`;
    - `"error"` with `message`, for what polling cannot fix: a 4xx other than 404/408/429, or a
      `response_check` that is not a valid dotted path.

    Connection errors, 5xx and malformed JSON are logged (`self.log`) and polled again.
    """

    def __init__(
        self,
        endpoint: str,
        headers: dict[str, str] | None = None,
        response_check: str = "status",
        expected_value: str = "ready",
        poll_interval: float = 30.0,
        timeout: float = 3600.0,
    ) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.headers = dict(headers or {})
        self.response_check = response_check
        self.expected_value = expected_value
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """TODO: return (classpath, kwargs).

        The classpath is where the triggerer imports this class from: derive it from the class
        (`type(self).__module__`, `type(self).__qualname__`), never a hard-coded string. The kwargs are
        every constructor argument, so that `HttpPollingTrigger(**kwargs)` rebuilds an equal trigger.
        """
        raise todo("11.3", 1, "implement HttpPollingTrigger.serialize", "ex11_3_custom_trigger.md#task-1")

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """TODO: poll with aiohttp (one `ClientSession` for the whole run, closed even when cancelled),
        measure the timeout on a monotonic clock, `yield` one TriggerEvent, then return.

        Never block the event loop: no `requests`, no `time.sleep`.
        """
        raise todo("11.3", 1, "implement HttpPollingTrigger.run", "ex11_3_custom_trigger.md#task-1")
        yield  # makes this an async generator; remove when you implement it

    async def check_once(self) -> dict[str, Any] | None:
        """TODO: make ONE request (in a session of its own) and return the event payload that answer would
        fire (`success` or `error`), or None when the endpoint is not ready yet. The operator calls it
        before it defers."""
        raise todo("11.3", 1, "implement HttpPollingTrigger.check_once", "ex11_3_custom_trigger.md#task-1")


# ---- Task 2: the deferrable operator --------------------------------------------------------------------
class HttpPollingOperator(BaseOperator):
    """Wait until `endpoint` reports `response_check == expected_value`; return the success payload.

    `deferrable=True` (the default): check once in the worker, return at once if ready, otherwise
    `self.defer(...)` to `HttpPollingTrigger` with a `timeout=`. `deferrable=False`: wait in the worker
    with the same semantics.
    """

    template_fields = ("endpoint", "expected_value")

    def __init__(
        self,
        *,
        endpoint: str,
        headers: dict[str, str] | None = None,
        response_check: str = "status",
        expected_value: str = "ready",
        poll_interval: float = 30.0,
        timeout: float = 3600.0,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.endpoint = endpoint
        self.headers = headers
        self.response_check = response_check
        self.expected_value = expected_value
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.deferrable = deferrable

    def execute(self, context: Context) -> dict[str, Any]:
        """TODO: check once; return the payload if ready; otherwise defer (with `timeout=`) or, when
        `deferrable=False`, poll here until success, timeout or error."""
        raise todo("11.3", 2, "implement HttpPollingOperator.execute", "ex11_3_custom_trigger.md#task-2")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """TODO: runs on a NEW operator instance when the trigger fires. Return the payload on success
        (it becomes the XCom); raise a clear Airflow error on timeout or error."""
        raise todo("11.3", 2, "implement HttpPollingOperator.execute_complete", "ex11_3_custom_trigger.md#task-2")


# ---- Task 3: the file pattern trigger and its deferrable sensor ----------------------------------------
class FilePatternTrigger(BaseTrigger):
    """Fire once at least `min_files` regular files match the absolute glob `pattern`. The event's payload:
    `{"status": "success", "files": [sorted paths], ...}`, or `"timeout"` after `timeout` seconds (None
    waits forever)."""

    def __init__(
        self,
        pattern: str,
        min_files: int = 1,
        poll_interval: float = 10.0,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        # TODO (Task 3): a relative `pattern` is a ValueError naming it (the triggerer runs elsewhere).
        self.pattern = pattern
        self.min_files = min_files
        self.poll_interval = poll_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """TODO: (classpath derived from the class, every constructor argument)."""
        raise todo("11.3", 3, "implement FilePatternTrigger.serialize", "ex11_3_custom_trigger.md#task-3")

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """TODO: glob in a thread (`asyncio.to_thread`), yield one event, return."""
        raise todo("11.3", 3, "implement FilePatternTrigger.run", "ex11_3_custom_trigger.md#task-3")
        yield  # makes this an async generator; remove when you implement it


class FilePatternSensor(BaseSensorOperator):
    """Wait until at least `min_files` files match `pattern`; return their sorted paths (XCom).

    Deferrable by default: check once with `poke()`, then defer to `FilePatternTrigger` (its poll interval
    is `poke_interval`, and the sensor's `timeout` must bound the deferral). `deferrable=False` is a
    classic poke-mode sensor.
    """

    template_fields = ("pattern",)

    def __init__(self, *, pattern: str, min_files: int = 1, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pattern = pattern
        self.min_files = min_files
        self.deferrable = deferrable

    def poke(self, context: Context) -> PokeReturnValue:
        """TODO: PokeReturnValue(is_done=enough files?, xcom_value=the sorted paths)."""
        raise todo("11.3", 3, "implement FilePatternSensor.poke", "ex11_3_custom_trigger.md#task-3")

    def execute(self, context: Context) -> Any:
        """TODO: poke once; return the files if enough, else defer to FilePatternTrigger (with timeout=)."""
        raise todo("11.3", 3, "implement FilePatternSensor.execute", "ex11_3_custom_trigger.md#task-3")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[str]:
        """TODO: the files on success; AirflowSensorTimeout on timeout."""
        raise todo("11.3", 3, "implement FilePatternSensor.execute_complete", "ex11_3_custom_trigger.md#task-3")
