"""Exercise 11.3, Custom Trigger: wait in the triggerer instead of in a worker slot.

- `HttpPollingTrigger` polls an HTTP endpoint until a JSON field has the expected value (aiohttp, one
  client session per run, a monotonic deadline, exactly one event).
- `HttpPollingOperator` checks once in the worker, then defers to the trigger (or, with
  `deferrable=False`, waits in the worker with the same semantics).
- `FilePatternTrigger` waits until a glob pattern matches at least `min_files` files, globbing in a
  thread; `FilePatternSensor` is the deferrable sensor that uses it.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

import aiohttp
from airflow.sdk import BaseOperator, BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout
from airflow.triggers.base import BaseTrigger, TriggerEvent
from yarl import URL

# 4xx answers that may go away by themselves: not there *yet*, request timeout, rate limited.
RETRYABLE_CLIENT_ERRORS = frozenset({404, 408, 429})
# One request never holds the trigger longer than this (nor past the trigger's own deadline).
REQUEST_TIMEOUT = 30.0
# Headers whose values are credentials: never logged, never shown in repr().
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"})
# How much longer than the trigger's own timeout Airflow waits before it fails the deferral itself:
# the trigger should report its timeout first (with the last status seen), Airflow is the backstop.
DEFERRAL_GRACE = timedelta(seconds=60)


def masked_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {k: "***" if k.lower() in SECRET_HEADERS else v for k, v in (headers or {}).items()}


def masked_url(url: str) -> str:
    """`url` without a password in its user-info part (`https://user:***@host/...`)."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


# ---- the pure part: what one HTTP answer means ---------------------------------------------------------
def parse_json_path(expression: str) -> tuple[str, ...]:
    """`"data.state"` -> `("data", "state")`; raises ValueError for an expression no answer can satisfy."""
    if not isinstance(expression, str) or not expression.strip():
        raise ValueError(f"response_check must be a dotted JSON path such as 'data.state', got {expression!r}")
    parts = tuple(expression.split("."))
    if any(not part or part != part.strip() for part in parts):
        raise ValueError(f"response_check {expression!r} has an empty or padded segment")
    return parts


_MISSING = object()


def lookup(document: Any, path: tuple[str, ...]) -> Any:
    """The value at `path` (a digit segment indexes a list), or `_MISSING` when the document has none."""
    value = document
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


def matches(value: Any, expected: Any) -> bool:
    """JSON `true` matches "true" and `3` matches "3": expected values arrive as strings from DAG files."""
    if value is _MISSING:
        return False
    if value == expected:
        return True
    return not isinstance(value, str) and isinstance(expected, str) and json.dumps(value) == expected


@dataclass(frozen=True)
class PollResult:
    """
    What one answer (or a failed request) means for the wait.

    :param outcome: `ready` (stop, success), `waiting` (poll again) or `fatal` (polling cannot fix it).
    :param http_status: The answer's HTTP status; None when no answer came.
    :param value: The `response_check` field of the answer, None when it has none.
    :param detail: Why the wait goes on or ends, for the log and the `error` event.
    """

    outcome: Literal["ready", "waiting", "fatal"]
    http_status: int | None
    value: Any = None
    detail: str = ""


def classify(http_status: int, body: str, path: tuple[str, ...], expected: Any) -> PollResult:
    if 200 <= http_status < 300:
        try:
            document = json.loads(body)
        except ValueError:
            return PollResult("waiting", http_status, detail=f"malformed JSON: {body[:80]!r}")
        value = lookup(document, path)
        shown = None if value is _MISSING else value
        if matches(value, expected):
            return PollResult("ready", http_status, shown)
        return PollResult("waiting", http_status, shown, f"{'.'.join(path)}={shown!r}, want {expected!r}")
    if 400 <= http_status < 500 and http_status not in RETRYABLE_CLIENT_ERRORS:
        return PollResult("fatal", http_status, detail=f"HTTP {http_status}: {body[:200]}")
    # Not an answer to match, but its field (e.g. "maintenance") says more than the status code.
    return PollResult("waiting", http_status, _peek(body, path), f"HTTP {http_status}")


def _peek(body: str, path: tuple[str, ...]) -> Any:
    try:
        value = lookup(json.loads(body), path)
    except ValueError:
        return None
    return None if value is _MISSING else value


async def poll_once(
    session: aiohttp.ClientSession,
    endpoint: str,
    headers: Mapping[str, str],
    path: tuple[str, ...],
    expected: Any,
    request_timeout: float,
) -> PollResult:
    """One GET; a connection problem is `waiting` (the next poll may get through)."""
    try:
        timeout = aiohttp.ClientTimeout(total=max(request_timeout, 0.001))
        async with session.get(endpoint, headers=dict(headers), timeout=timeout) as response:
            body = await response.text(errors="replace")
            return classify(response.status, body, path, expected)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return PollResult("waiting", None, detail=f"{type(exc).__name__}: {exc}")


# ---- Task 1: the HTTP polling trigger ------------------------------------------------------------------
class HttpPollingTrigger(BaseTrigger):
    """
    Poll an HTTP endpoint until a field of its JSON answer has the expected value.

    One aiohttp session for the whole run, a monotonic deadline, exactly one event. Its `status` is one of:

    - `success`: `value`, `attempts`, `elapsed`;
    - `timeout`: `last_http_status`, `last_value`, `attempts`, `elapsed`;
    - `error`: `message` (a 4xx other than 404/408/429, or a `response_check` no answer can satisfy).

    Every event carries the `endpoint`, its password masked.

    :param endpoint: The URL to poll with GET; a password in it is masked in events and logs.
    :param headers: HTTP headers sent with every request; never logged (they may carry a token).
    :param response_check: Dotted path of the JSON field to compare, such as `status` or `data.state`;
        a digit segment indexes a list.
    :param expected_value: The value the field must have; JSON `true` matches `"true"` and `3` matches `"3"`.
    :param poll_interval: Seconds between two polls.
    :param timeout: Seconds to wait, measured on a monotonic clock, before the `timeout` event.
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
        if poll_interval <= 0 or timeout < 0:
            raise ValueError(f"need poll_interval > 0 and timeout >= 0, got {poll_interval}, {timeout}")
        self.endpoint = endpoint
        self.headers = dict(headers or {})
        self.response_check = response_check
        self.expected_value = expected_value
        self.poll_interval = float(poll_interval)
        self.timeout = float(timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        # Trigger kwargs are stored encrypted (Fernet) in the metadata DB, so headers may carry a token.
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "endpoint": self.endpoint,
            "headers": self.headers,
            "response_check": self.response_check,
            "expected_value": self.expected_value,
            "poll_interval": self.poll_interval,
            "timeout": self.timeout,
        }

    def __repr__(self) -> str:
        # BaseTrigger's repr prints every kwarg; keep the credentials out of logs.
        classpath, kwargs = self.serialize()
        return self.repr(classpath, {**kwargs, "endpoint": masked_url(self.endpoint),
                                     "headers": masked_headers(self.headers)})

    async def run(self) -> AsyncIterator[TriggerEvent]:
        event = await self._wait()
        yield TriggerEvent(event)

    async def check_once(self) -> dict[str, Any] | None:
        """One request in a session of its own: the event this answer fires, or None if not ready yet."""
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            return self._outcome(await self._poll(session, REQUEST_TIMEOUT), 1, started)

    async def _wait(self) -> dict[str, Any]:
        started = time.monotonic()
        deadline = started + self.timeout
        attempts, last = 0, PollResult("waiting", None)
        # One session (one connection pool) for the whole wait; `async with` also closes it when the
        # triggerer cancels this coroutine (trigger moved, task cleared, triggerer stopping).
        # The operator checked just before it deferred, so the first poll is due within an interval
        # anyway. A random phase spreads a batch of triggers deferred together (a thundering herd
        # against the endpoint, and connection setup stalling the triggerer's event loop) over it.
        await asyncio.sleep(min(random.uniform(0, self.poll_interval), self.timeout))
        async with aiohttp.ClientSession() as session:
            while (remaining := deadline - time.monotonic()) > 0:
                attempts += 1
                result = await self._poll(session, min(REQUEST_TIMEOUT, remaining))
                if (event := self._outcome(result, attempts, started)) is not None:
                    return event
                if result.http_status is not None:
                    # The timeout event reports the last real answer, not the request the deadline cut off.
                    last = result
                await asyncio.sleep(min(self.poll_interval, max(deadline - time.monotonic(), 0)))
        where = masked_url(self.endpoint)
        self.log.warning("%s: not ready after %g s (%d attempts)", where, self.timeout, attempts)
        return {"status": "timeout", "endpoint": where, "last_http_status": last.http_status,
                "last_value": last.value, "attempts": attempts, "elapsed": _since(started)}

    async def _poll(self, session: aiohttp.ClientSession, request_timeout: float) -> PollResult:
        try:
            path = parse_json_path(self.response_check)
        except ValueError as exc:
            return PollResult("fatal", None, detail=str(exc))
        return await poll_once(session, self.endpoint, self.headers, path, self.expected_value, request_timeout)

    def _outcome(self, result: PollResult, attempts: int, started: float) -> dict[str, Any] | None:
        """The event `result` ends the wait with, or None to poll again."""
        where = masked_url(self.endpoint)
        if result.outcome == "ready":
            self.log.info("%s: %s=%r after %d attempt(s)", where, self.response_check, result.value, attempts)
            return {"status": "success", "endpoint": where, "value": result.value, "attempts": attempts,
                    "elapsed": _since(started)}
        if result.outcome == "fatal":
            self.log.error("%s: giving up, %s", where, result.detail)
            return {"status": "error", "endpoint": where, "http_status": result.http_status,
                    "message": result.detail, "attempts": attempts, "elapsed": _since(started)}
        self.log.info("%s: not ready (%s), next poll in %g s", where, result.detail, self.poll_interval)
        return None


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)


# ---- Task 2: the deferrable operator --------------------------------------------------------------------
class HttpPollingOperator(BaseOperator):
    """
    Wait until an HTTP endpoint reports the expected value; return the trigger's success payload (XCom).

    Checks once in the worker; if not ready, frees the worker slot by deferring to `HttpPollingTrigger`
    (`deferrable=True`) or keeps polling in the worker with the same semantics (`deferrable=False`).
    A timeout fails with `AirflowSensorTimeout`, an error polling cannot fix with `AirflowFailException`.

    :param endpoint: The URL to poll with GET (templated).
    :param headers: HTTP headers sent with every request.
    :param response_check: Dotted path of the JSON field to compare, such as `status` or `data.state`.
    :param expected_value: The value the field must have (templated).
    :param poll_interval: Seconds between two polls.
    :param timeout: Seconds to wait before failing with `AirflowSensorTimeout`. The deferral's own timeout
        is a little longer, so that the trigger reports its timeout (with the last status seen) first.
    :param deferrable: Wait in the triggerer (the default) rather than in a worker slot.
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

    def _trigger(self) -> HttpPollingTrigger:
        return HttpPollingTrigger(
            endpoint=self.endpoint,
            headers=self.headers,
            response_check=self.response_check,
            expected_value=self.expected_value,
            poll_interval=self.poll_interval,
            timeout=self.timeout,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        trigger = self._trigger()
        if (event := asyncio.run(trigger.check_once())) is not None:
            return self.execute_complete(context, event)
        if not self.deferrable:
            # The trigger's own loop, run in the worker: the same answers, the same deadline.
            return self.execute_complete(context, asyncio.run(_first_payload(trigger)))
        self.log.info("%s not ready yet; deferring to the triggerer", masked_url(self.endpoint))
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) + DEFERRAL_GRACE,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        status = event.get("status") if isinstance(event, dict) else None
        if status == "success":
            return event
        if status == "timeout":
            raise AirflowSensorTimeout(
                f"{event.get('endpoint')}: {self.response_check} was not {self.expected_value!r} within "
                f"{self.timeout:g} s ({event.get('attempts')} attempts, last HTTP status "
                f"{event.get('last_http_status')}, last value {event.get('last_value')!r})"
            )
        if status == "error":
            # Retrying cannot fix a bad token or a bad path expression.
            raise AirflowFailException(f"{event.get('endpoint')}: {event.get('message')}")
        raise AirflowException(f"HttpPollingTrigger sent an event this operator does not know: {event!r}")


async def _first_payload(trigger: BaseTrigger) -> dict[str, Any]:
    """The payload of the trigger's first event (the generator is closed, as the triggerer does)."""
    events = trigger.run()
    try:
        event = await anext(events)
    finally:
        await events.aclose()
    return event.payload


# ---- Task 3: the file pattern trigger and its deferrable sensor ----------------------------------------
def matching_files(pattern: str) -> list[str]:
    """Sorted regular files matching `pattern` (`**` recurses). Blocking: call it in a thread from async
    code. Dot-files are not matched, so the hidden temp file of an atomic write is never seen."""
    return sorted(path for path in glob.iglob(pattern, recursive=True) if os.path.isfile(path))


class FilePatternTrigger(BaseTrigger):
    """
    Fire once at least `min_files` regular files match a glob pattern.

    Globs in a thread, off the triggerer's event loop. Dot-files (an upload in progress) and directories do
    not count. One event: `success` with the sorted `files`, or `timeout` with the files that did match;
    both carry the `pattern` and the `elapsed` seconds.

    :param pattern: Absolute glob pattern (`**` recurses); a relative one is a ValueError, since the
        triggerer runs in another process with another working directory.
    :param min_files: How many matching files end the wait.
    :param poll_interval: Seconds between two globs.
    :param timeout: Seconds to wait before the `timeout` event; None waits forever.
    """

    def __init__(
        self,
        pattern: str,
        min_files: int = 1,
        poll_interval: float = 10.0,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        # The triggerer runs in another process with another working directory.
        if not os.path.isabs(pattern):
            raise ValueError(f"pattern must be an absolute path, got {pattern!r}")
        if min_files < 1 or poll_interval <= 0 or (timeout is not None and timeout < 0):
            raise ValueError(
                f"need min_files >= 1, poll_interval > 0, timeout >= 0 or None; "
                f"got {min_files}, {poll_interval}, {timeout}"
            )
        self.pattern = pattern
        self.min_files = int(min_files)
        self.poll_interval = float(poll_interval)
        self.timeout = None if timeout is None else float(timeout)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "pattern": self.pattern,
            "min_files": self.min_files,
            "poll_interval": self.poll_interval,
            "timeout": self.timeout,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        started = time.monotonic()
        deadline = None if self.timeout is None else started + self.timeout
        while True:
            # Globbing a network mount or a large directory can take seconds: never on the event loop.
            files = await asyncio.to_thread(matching_files, self.pattern)
            if len(files) >= self.min_files:
                self.log.info("%s: %d file(s) match, %d needed", self.pattern, len(files), self.min_files)
                yield TriggerEvent({"status": "success", "pattern": self.pattern, "files": files,
                                    "elapsed": _since(started)})
                return
            if deadline is not None and time.monotonic() >= deadline:
                self.log.warning("%s: %d of %d file(s) after %g s", self.pattern, len(files), self.min_files,
                                 self.timeout)
                yield TriggerEvent({"status": "timeout", "pattern": self.pattern, "files": files,
                                    "elapsed": _since(started)})
                return
            self.log.info("%s: %d of %d file(s), next check in %g s", self.pattern, len(files), self.min_files,
                          self.poll_interval)
            pause = self.poll_interval if deadline is None else min(self.poll_interval, deadline - time.monotonic())
            await asyncio.sleep(max(pause, 0))


class FilePatternSensor(BaseSensorOperator):
    """
    Wait until at least `min_files` files match a glob pattern; return their sorted paths (XCom).

    Deferrable by default: checks once in the worker, then waits in the triggerer on `FilePatternTrigger`.
    `poke_interval` is the trigger's poll interval and the sensor's `timeout` bounds the deferral too.

    :param pattern: Absolute glob pattern of the files to wait for (templated).
    :param min_files: How many matching files end the wait.
    :param deferrable: Wait in the triggerer (the default) rather than in a worker slot.
    """

    template_fields = ("pattern",)

    def __init__(self, *, pattern: str, min_files: int = 1, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pattern = pattern
        self.min_files = min_files
        self.deferrable = deferrable

    def poke(self, context: Context) -> PokeReturnValue:
        files = matching_files(self.pattern)
        self.log.info("%s: %d of %d file(s)", self.pattern, len(files), self.min_files)
        return PokeReturnValue(is_done=len(files) >= self.min_files, xcom_value=files)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        self.defer(
            trigger=FilePatternTrigger(
                pattern=self.pattern,
                min_files=self.min_files,
                poll_interval=self.poke_interval,
                timeout=self.timeout,
            ),
            method_name="execute_complete",
            # Without it the sensor's timeout would not bound the time spent deferred.
            timeout=timedelta(seconds=self.timeout) + DEFERRAL_GRACE,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[str]:
        status = event.get("status") if isinstance(event, dict) else None
        if status == "success":
            return event["files"]
        if status == "timeout":
            raise AirflowSensorTimeout(
                f"{self.pattern}: {len(event.get('files', []))} of {self.min_files} file(s) after {self.timeout:g} s"
            )
        raise AirflowException(f"FilePatternTrigger sent an event this sensor does not know: {event!r}")
