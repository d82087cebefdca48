"""Exercise 11.5, Event-driven DAGs: run a pipeline because something happened, exactly once.

Read exercises/ex11_5_event_driven.md first. You build:

- `NewObjectTrigger` (Task 1): an object-store watcher for an `AssetWatcher`, one event per new object,
  never twice (its memory lives in a state file, written atomically);
- `WebhookReceiver` (Task 2): a signed webhook endpoint that turns notifications into Airflow asset events;
- `ConditionTrigger` and its three subclasses, with `ActivationAudit` (Task 3): poll, skip or fire with a
  context, deduplicate by context hash, audit every activation;
- `cron_schedule`, `freshness_schedule`, `check_freshness` (Task 4): schedules from presets and SLAs.

The constructors and the small data classes are done (so the DAG files parse); every function or method
that says "TODO" is yours. Airflow 3 imports only: `airflow.sdk`, `airflow.triggers.base`,
`airflow.sdk.exceptions`.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pendulum
from aiohttp import web
from airflow.sdk import CronTriggerTimetable
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from starters._todo import todo

log = logging.getLogger(__name__)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """TODO: write `obj` as JSON so that a reader, or a restart after a crash, sees the old file or the new
    one, never half of one: a temp file in the same folder, flushed, then `os.replace()`d into place."""
    raise todo("11.5", 1, "implement atomic_write_json", "ex11_5_event_driven.md#task-1")


# ---- Task 1: the object-store watcher -------------------------------------------------------------------
@dataclass(frozen=True)
class StoredObject:
    key: str  # the object's full URL, e.g. file:///data/landing/sales/a.csv or s3://bucket/sales/a.csv
    size: int
    modified: float  # seconds since the epoch

    @property
    def version(self) -> str:
        """A rewritten object (new modification time) is a new object; the same one is never new again."""
        return f"{self.modified:.6f}"

    def as_event(self) -> dict[str, Any]:
        return {"key": self.key, "size": self.size,
                "modified": datetime.fromtimestamp(self.modified, tz=pendulum.UTC).isoformat()}


class SeenObjects:
    """What a watcher has already reported, as `{key: version}` in a JSON file that outlives the trigger."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = path

    def load(self) -> dict[str, str]:
        """TODO: `{}` when the file does not exist; ValueError when it is unreadable (never "start over")."""
        raise todo("11.5", 1, "implement SeenObjects.load", "ex11_5_event_driven.md#task-1")

    def save(self, seen: dict[str, str]) -> None:
        """TODO: write `{"seen": seen}` atomically."""
        raise todo("11.5", 1, "implement SeenObjects.save", "ex11_5_event_driven.md#task-1")


def list_objects(prefix: str, pattern: str) -> list[StoredObject]:
    """TODO: the objects under `prefix` (an `ObjectStoragePath` URL) whose name matches `pattern`, sorted by
    key, without dot-files (unfinished uploads) or directories; a missing prefix lists as empty.
    Blocking: call it in a thread from async code."""
    raise todo("11.5", 1, "implement list_objects", "ex11_5_event_driven.md#task-1")


class NewObjectTrigger(BaseEventTrigger):
    """Yield one event (`StoredObject.as_event()`: key, size, modified) per new object under `prefix`
    matching `pattern`, forever; never the same object (key and version) twice, also after the trigger is
    rebuilt: what was reported lives in `state_path`."""

    def __init__(self, prefix: str, state_path: str, pattern: str = "*", poll_interval: float = 60.0) -> None:
        super().__init__()
        self.prefix = prefix
        self.state_path = state_path
        self.pattern = pattern
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """TODO: (classpath derived from the class, every constructor argument)."""
        raise todo("11.5", 1, "implement NewObjectTrigger.serialize", "ex11_5_event_driven.md#task-1")

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """TODO: poll every `poll_interval` s; list and read state in a thread; record an object as seen
        before you yield its event; log listing errors and keep polling."""
        raise todo("11.5", 1, "implement NewObjectTrigger.run", "ex11_5_event_driven.md#task-1")
        yield  # an async generator


# ---- Task 2: the signed webhook receiver ----------------------------------------------------------------
SIGNATURE_HEADER = "X-Webhook-Signature"


def sign(body: bytes, secret: str) -> str:
    """TODO: `sha256=<hex HMAC-SHA256 of the raw body with the secret>`."""
    raise todo("11.5", 2, "implement sign", "ex11_5_event_driven.md#task-2")


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """TODO: True only for the right `sha256=...` header, compared in constant time."""
    raise todo("11.5", 2, "implement verify_signature", "ex11_5_event_driven.md#task-2")


class UnknownFormat(ValueError):
    """A well-formed JSON body that is neither a MinIO notification nor a generic webhook."""


@dataclass(frozen=True)
class WebhookEvent:
    event_id: str  # what makes a delivery a replay
    source: str
    event: str
    bucket: str | None
    key: str | None

    def as_extra(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "source": self.source, "event": self.event,
                "bucket": self.bucket, "key": self.key}


def parse_notification(payload: Any, body: bytes) -> WebhookEvent:
    """TODO: MinIO (`EventName` + `Key` = "bucket/object") -> source "minio"; generic (`source` + `event`,
    optional `bucket`, `key`, `id`) -> its source; anything else -> UnknownFormat. The event id is the
    sender's own id when there is one, else the SHA-256 of the signed body."""
    raise todo("11.5", 2, "implement parse_notification", "ex11_5_event_driven.md#task-2")


class AirflowDeliveryError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class WebhookReceiver:
    """Verify, parse, deduplicate and queue notifications; a background task delivers them to Airflow.

    Exactly one of `asset_uri` (an asset event, `POST /api/v2/assets/events`) and `dag_id` (a DAG run)
    is the target. Answers: 401 unsigned or badly signed, 400 not JSON, 422 unknown format, 413 over
    `max_body_bytes`, 202 accepted, 200 for a replay of an accepted event (never delivered twice).
    Deliveries retry after each of `retry_delays` (seconds); the outcome of each event is logged.
    """

    def __init__(self, *, secret: str, airflow_url: str, airflow_token: str, asset_uri: str | None = None,
                 dag_id: str | None = None, path: str = "/webhooks/bronze-sales",
                 max_body_bytes: int = 1 << 20, retry_delays: Sequence[float] = (1, 2, 5, 10, 30),
                 remember: int = 10_000) -> None:
        self.secret = secret
        self.airflow_url = airflow_url.rstrip("/")
        self._token = airflow_token
        self.asset_uri, self.dag_id, self.path = asset_uri, dag_id, path
        self.max_body_bytes = max_body_bytes
        self.retry_delays = tuple(retry_delays)
        self.remember = remember
        self._accepted: OrderedDict[str, str] = OrderedDict()
        self.log = log

    def make_app(self) -> web.Application:
        """TODO: an aiohttp app with `POST self.path` -> `handle`, and a delivery worker started and stopped
        with the app (on_startup / on_cleanup) that holds one aiohttp.ClientSession with the token."""
        raise todo("11.5", 2, "implement WebhookReceiver.make_app", "ex11_5_event_driven.md#task-2")

    async def handle(self, request: web.Request) -> web.Response:
        """TODO: size, then signature, then JSON, then format, then replay check; queue and answer 202."""
        raise todo("11.5", 2, "implement WebhookReceiver.handle", "ex11_5_event_driven.md#task-2")

    async def deliver_with_retries(self, session: Any, event: WebhookEvent) -> bool:
        """TODO: `deliver()`, retried after each of `retry_delays` while the error is retryable; log the
        outcome; forget the event id when you give up (so a re-send is accepted again)."""
        raise todo("11.5", 2, "implement WebhookReceiver.deliver_with_retries", "ex11_5_event_driven.md#task-2")

    async def deliver(self, session: Any, event: WebhookEvent) -> str:
        """TODO: one attempt: look the asset id up by uri and POST the asset event (or POST a DAG run);
        raise AirflowDeliveryError(retryable=...) on failure."""
        raise todo("11.5", 2, "implement WebhookReceiver.deliver", "ex11_5_event_driven.md#task-2")


# ---- Task 3: poll-and-fire triggers with deduplication and an audit trail -------------------------------
@dataclass(frozen=True)
class PollResult:
    """What one poll decided: skip, or fire with an optional context (the seed's TriggerResult)."""

    fire: bool
    context: dict[str, Any] | None = None

    @classmethod
    def skip(cls) -> PollResult:
        return cls(False)

    @classmethod
    def fire_with(cls, context: dict[str, Any] | None = None) -> PollResult:
        return cls(True, context)


def context_hash(context: dict[str, Any] | None) -> str:
    """TODO: a hex digest of the context that does not depend on key order."""
    raise todo("11.5", 3, "implement context_hash", "ex11_5_event_driven.md#task-3")


class ActivationAudit:
    """The seed's `trigger_executions` table in SQLite (id, trigger_name, context_hash, context, run_id,
    started_at, completed_at, outcome): one row per activation, completed by the DAG run."""

    def __init__(self, db_path: str | os.PathLike[str], stale_after: float = 6 * 3600) -> None:
        self.db_path = str(db_path)
        self.stale_after = stale_after

    def start_unless_running(self, trigger_name: str, context: dict[str, Any] | None,
                             allow_concurrent: bool) -> int | None:
        """TODO: insert a started row and return its id; return None instead when `allow_concurrent` is
        False and a row of the same trigger and context hash is still in progress. One transaction."""
        raise todo("11.5", 3, "implement ActivationAudit.start_unless_running", "ex11_5_event_driven.md#task-3")

    def attach_run(self, activation_id: int, run_id: str) -> None:
        """TODO: set the row's run_id."""
        raise todo("11.5", 3, "implement ActivationAudit.attach_run", "ex11_5_event_driven.md#task-3")

    def complete(self, activation_id: int, outcome: str) -> None:
        """TODO: set the row's completed_at (now, UTC) and outcome."""
        raise todo("11.5", 3, "implement ActivationAudit.complete", "ex11_5_event_driven.md#task-3")

    def rows(self) -> list[dict[str, Any]]:
        """TODO: every row as a dict, oldest first."""
        raise todo("11.5", 3, "implement ActivationAudit.rows", "ex11_5_event_driven.md#task-3")


class ConditionTrigger(BaseEventTrigger):
    """Poll `poll()` every `poll_interval` s, each poll bounded by `poll_timeout`; on a fire, audit the
    activation and yield `{trigger, context, context_hash, activation_id}`. Errors and timeouts are logged
    and polling goes on. Subclasses implement `poll()` and `condition_kwargs()`."""

    def __init__(self, name: str, audit_db: str, poll_interval: float = 2.0, poll_timeout: float = 10.0,
                 allow_concurrent: bool = False) -> None:
        super().__init__()
        self.name = name
        self.audit_db = audit_db
        self.poll_interval = float(poll_interval)
        self.poll_timeout = float(poll_timeout)
        self.allow_concurrent = bool(allow_concurrent)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """TODO: the base arguments plus `condition_kwargs()`."""
        raise todo("11.5", 3, "implement ConditionTrigger.serialize", "ex11_5_event_driven.md#task-3")

    def condition_kwargs(self) -> dict[str, Any]:
        """The subclass's own constructor arguments."""
        return {}

    async def poll(self) -> PollResult:
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """TODO: the poll loop (asyncio.timeout per poll; the audit's SQLite calls in a thread)."""
        raise todo("11.5", 3, "implement ConditionTrigger.run", "ex11_5_event_driven.md#task-3")
        yield  # an async generator


class InboxFileTrigger(ConditionTrigger):
    """Fire with `{"inbox", "filename"}` for the first (by name) regular, non-hidden file in `inbox`."""

    def __init__(self, inbox: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inbox = inbox

    def condition_kwargs(self) -> dict[str, Any]:
        return {"inbox": self.inbox}

    async def poll(self) -> PollResult:
        """TODO: skip when the inbox is empty or missing."""
        raise todo("11.5", 3, "implement InboxFileTrigger.poll", "ex11_5_event_driven.md#task-3")


class QueueDepthTrigger(ConditionTrigger):
    """Fire with `{"queue", "depth"}` while the queue at `queue_url` holds more than `threshold` messages."""

    def __init__(self, queue_url: str, threshold: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.queue_url = queue_url
        self.threshold = int(threshold)

    def condition_kwargs(self) -> dict[str, Any]:
        return {"queue_url": self.queue_url, "threshold": self.threshold}

    async def poll(self) -> PollResult:
        """TODO: GET queue_url -> {"name", "depth"}; a bad answer is an error (raise)."""
        raise todo("11.5", 3, "implement QueueDepthTrigger.poll", "ex11_5_event_driven.md#task-3")


class ServiceHealthTrigger(ConditionTrigger):
    """Fire with `{"service": health_url}` once `health_url` failed `failures_required` checks in a row."""

    def __init__(self, health_url: str, failures_required: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.health_url = health_url
        self.failures_required = int(failures_required)
        self.consecutive_failures = 0

    def condition_kwargs(self) -> dict[str, Any]:
        return {"health_url": self.health_url, "failures_required": self.failures_required}

    async def poll(self) -> PollResult:
        """TODO: a non-2xx answer, an error or a timeout is a failure; a success resets the count."""
        raise todo("11.5", 3, "implement ServiceHealthTrigger.poll", "ex11_5_event_driven.md#task-3")


# ---- Task 4: schedules ----------------------------------------------------------------------------------
CRON_PRESETS: dict[str, str] = {
    "hourly": "0 * * * *",
    "daily": "0 0 * * *",
    "daily_6am": "0 6 * * *",
    "weekly": "0 0 * * 0",
    "monthly": "0 0 1 * *",
    "every_15min": "*/15 * * * *",
    "every_30min": "*/30 * * * *",
}


def cron_schedule(cron: str, timezone_name: str = "UTC") -> CronTriggerTimetable:
    """TODO: a preset or a 5-field cron, in an IANA time zone, as a CronTriggerTimetable; ValueError for an
    unknown preset, a bad cron or an unknown zone."""
    raise todo("11.5", 4, "implement cron_schedule", "ex11_5_event_driven.md#task-4")


@dataclass(frozen=True)
class FreshnessPolicy:
    warn_after: timedelta
    error_after: timedelta

    def __post_init__(self) -> None:
        if not timedelta(0) < self.warn_after <= self.error_after:
            raise ValueError(f"need 0 < warn_after <= error_after, got {self.warn_after}, {self.error_after}")


def freshness_schedule(policy: FreshnessPolicy, timezone_name: str = "UTC") -> CronTriggerTimetable:
    """TODO: the seed's table (1 h hourly, 6 h every 3 hours, 12 h twice daily, 24 h+ daily)."""
    raise todo("11.5", 4, "implement freshness_schedule", "ex11_5_event_driven.md#task-4")


FreshnessState = Literal["fresh", "warn", "error"]


def check_freshness(last_updated: datetime, now: datetime, policy: FreshnessPolicy) -> tuple[FreshnessState, timedelta]:
    """TODO: `("fresh" | "warn" | "error", age)`: warn when older than warn_after, error when older than
    error_after; ValueError for a naive datetime."""
    raise todo("11.5", 4, "implement check_freshness", "ex11_5_event_driven.md#task-4")
