"""Exercise 11.5, Event-driven DAGs: run a pipeline because something happened, exactly once.

- Task 1: `NewObjectTrigger` watches an object-store prefix (`ObjectStoragePath`: `file://`, `s3://`, ...)
  and yields one event per new object, never twice: what it has seen lives in a state file outside the
  trigger, written atomically. Wired as `Asset(..., watchers=[AssetWatcher(...)])`.
- Task 2: `WebhookReceiver`, an aiohttp service for MinIO and generic notifications signed with
  `X-Webhook-Signature: sha256=<hmac>`, turns accepted events into Airflow asset events (or DAG runs)
  through the REST API, deduplicated and retried.
- Task 3: `ConditionTrigger` polls a condition (skip, or fire with a context) with a per-poll timeout;
  `allow_concurrent=False` suppresses a fire whose context hash has a run still in progress; every
  activation is audited in SQLite (`ActivationAudit`). The seed's three conditions are subclasses.
- Task 4: cron presets and time zones as timetables, a freshness SLA turned into a schedule and checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import sqlite3
import tempfile
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import aiohttp
import pendulum
from aiohttp import web
from airflow.sdk import CronTriggerTimetable, ObjectStoragePath, timezone
from airflow.sdk.exceptions import AirflowTimetableInvalid
from airflow.triggers.base import BaseEventTrigger, TriggerEvent

log = logging.getLogger(__name__)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write `obj` as JSON so that a reader (or a restart after a crash) sees the old file or the new one."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(obj, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)  # atomic on POSIX within one file system
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---- Task 1: the object-store watcher -------------------------------------------------------------------
@dataclass(frozen=True)
class StoredObject:
    """
    One object under a watched prefix.

    :param key: The object's full URL.
    :param size: Its size in bytes.
    :param modified: Its modification time, in seconds since the epoch.
    """

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
    """
    What a watcher has already reported, as `{key: version}` in a JSON file that outlives the trigger.

    An unreadable file raises (re-reporting everything would break the never-twice promise, so the watcher
    stops firing until a human looks).

    :param path: The JSON state file; a missing file means nothing seen yet.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ValueError(f"watcher state {self.path} is unreadable: {exc}") from exc
        if not isinstance(data, dict) or not isinstance(data.get("seen"), dict):
            raise ValueError(f"watcher state {self.path} is not {{'seen': {{key: version}}}}")
        return {str(k): str(v) for k, v in data["seen"].items()}

    def save(self, seen: dict[str, str]) -> None:
        atomic_write_json(self.path, {"seen": seen})


def list_objects(prefix: str, pattern: str) -> list[StoredObject]:
    """
    List the objects under a prefix whose name matches a glob pattern, sorted by key.

    Blocking: call it in a thread from async code.

    Names starting with a dot are skipped: that is where atomic writers keep their unfinished temp files.
    A prefix that does not exist yet lists as empty (the upstream system has not written anything).

    :param prefix: The `ObjectStoragePath` URL to list (`file://`, `s3://`, ...).
    :param pattern: Glob pattern an object's name must match.
    """
    root = ObjectStoragePath(prefix)
    if not root.exists():
        return []
    found = []
    for path in root.glob(pattern):
        if path.name.startswith("."):
            continue
        info = path.stat()
        if info.get("type", "file") != "file":
            continue
        found.append(StoredObject(key=str(path), size=int(info.st_size), modified=float(info.st_mtime)))
    return sorted(found, key=lambda obj: obj.key)


class NewObjectTrigger(BaseEventTrigger):
    """
    Yield one event (key, size, modified) per new object under a prefix, for an `AssetWatcher`.

    What has been reported is kept in `state_path`, outside the trigger, so a trigger rebuilt by another
    triggerer (or after a restart) does not report it again. Each object is recorded *before* its event
    is yielded: a crash in between loses at most that one event (the daily catch-up run covers it), where
    recording after the yield would fire it twice.

    :param prefix: The `ObjectStoragePath` URL to watch (`file://`, `s3://`, ...).
    :param state_path: Absolute path of the JSON file that records what was reported (the triggerer has its
        own working directory); it outlives the trigger.
    :param pattern: Glob pattern an object's name must match.
    :param poll_interval: Seconds between two listings that found nothing new.
    """

    def __init__(self, prefix: str, state_path: str, pattern: str = "*", poll_interval: float = 60.0) -> None:
        super().__init__()
        if not os.path.isabs(state_path):
            raise ValueError(f"state_path must be absolute (the triggerer has its own cwd), got {state_path!r}")
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval}")
        self.prefix = prefix
        self.state_path = state_path
        self.pattern = pattern
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "prefix": self.prefix,
            "state_path": self.state_path,
            "pattern": self.pattern,
            "poll_interval": self.poll_interval,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        state = SeenObjects(self.state_path)
        while True:
            try:
                seen = await asyncio.to_thread(state.load)
                listed = await asyncio.to_thread(list_objects, self.prefix, self.pattern)
            except Exception:  # a listing or state error must not end the watch: log it, try again
                self.log.exception("%s: listing %s failed; retrying in %g s", self.prefix, self.pattern,
                                   self.poll_interval)
                await asyncio.sleep(self.poll_interval)
                continue
            # Forget objects that are gone, so the state stays as small as the prefix.
            current = {obj.key for obj in listed}
            kept = {key: version for key, version in seen.items() if key in current}
            new = [obj for obj in listed if kept.get(obj.key) != obj.version]
            if not new and kept != seen:
                await asyncio.to_thread(state.save, kept)
            for obj in new:
                kept[obj.key] = obj.version
                await asyncio.to_thread(state.save, dict(kept))
                self.log.info("new object %s (%d bytes)", obj.key, obj.size)
                yield TriggerEvent(obj.as_event())
            if not new:
                await asyncio.sleep(self.poll_interval)


# ---- Task 2: the signed webhook receiver ----------------------------------------------------------------
SIGNATURE_HEADER = "X-Webhook-Signature"
DELIVERY = web.AppKey("delivery", tuple)  # (client session, worker task) of a running receiver


def sign(body: bytes, secret: str) -> str:
    """The signature header value a sender computes: `sha256=<hex hmac of the raw body>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time check of `X-Webhook-Signature` (a `==` would leak, byte by byte, how much matched)."""
    if not header or not header.startswith("sha256="):
        return False
    return hmac.compare_digest(sign(body, secret).encode(), header.strip().encode())


class UnknownFormat(ValueError):
    """A well-formed JSON body that is neither a MinIO notification nor a generic webhook."""


@dataclass(frozen=True)
class WebhookEvent:
    """
    One notification a sender signed, in words common to both formats.

    :param event_id: What makes a delivery a replay: the sender's own id, else the SHA-256 of the body.
    :param source: `minio` for a MinIO notification, else the generic webhook's `source`.
    :param event: The event's name (`EventName`, or the generic `event`).
    :param bucket: The bucket, when the notification names one.
    :param key: The object's name inside its bucket, when the notification names one.
    """

    event_id: str  # what makes a delivery a replay
    source: str
    event: str
    bucket: str | None
    key: str | None

    def as_extra(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "source": self.source, "event": self.event,
                "bucket": self.bucket, "key": self.key}


def parse_notification(payload: Any, body: bytes) -> WebhookEvent:
    """MinIO (`EventName` + `Key`, or S3-style `Records`) or generic (`source` + `event`) -> WebhookEvent.

    The event id is the sender's own id when it has one, else the hash of the signed body: a replayed
    body cannot pass as new without a new signature.
    """
    if not isinstance(payload, dict):
        raise UnknownFormat(f"expected a JSON object, got {type(payload).__name__}")
    body_id = hashlib.sha256(body).hexdigest()
    if isinstance(payload.get("EventName"), str) and isinstance(payload.get("Key"), str):
        records = payload.get("Records") or [{}]
        s3 = records[0].get("s3", {}) if isinstance(records[0], dict) else {}
        bucket, _, key = payload["Key"].partition("/")
        sequencer = (s3.get("object") or {}).get("sequencer") if isinstance(s3, dict) else None
        return WebhookEvent(str(sequencer or body_id), "minio", payload["EventName"], bucket or None, key or None)
    if isinstance(payload.get("source"), str) and isinstance(payload.get("event"), str):
        bucket, key = payload.get("bucket"), payload.get("key")
        return WebhookEvent(str(payload.get("id") or body_id), payload["source"], payload["event"],
                            bucket if isinstance(bucket, str) else None, key if isinstance(key, str) else None)
    raise UnknownFormat(f"neither a MinIO notification (EventName, Key) nor a generic webhook (source, event): "
                        f"keys {sorted(payload)[:10]}")


class AirflowDeliveryError(Exception):
    """
    One attempt to deliver an event to Airflow failed.

    :param message: What failed: the call, and Airflow's answer or the transport error.
    :param retryable: Whether the same call may succeed later (a connection error, a 5xx, 408 or 429).
    """

    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class WebhookReceiver:
    """
    Verify, parse, deduplicate and queue signed notifications; a background task delivers them to Airflow.

    Exactly one of `asset_uri` (an asset event, `POST /api/v2/assets/events`) and `dag_id` (a DAG run)
    is the target. Accepted events answer 202 at once and are delivered with retries; a replay of an event
    already accepted answers 200 and is not delivered again.

    :param secret: The secret senders sign bodies with (HMAC-SHA256); required, never logged.
    :param airflow_url: The Airflow API server's base URL.
    :param airflow_token: The bearer token for Airflow's REST API; never logged.
    :param asset_uri: The asset whose events notifications become.
    :param dag_id: The DAG whose runs notifications start, instead of an asset's events.
    :param path: The URL path served (`POST`).
    :param max_body_bytes: Larger bodies are refused with 413.
    :param retry_delays: Seconds to wait before each retry of a delivery that may succeed later.
    :param remember: How many of the latest accepted event ids are kept to recognise a replay.
    """

    def __init__(self, *, secret: str, airflow_url: str, airflow_token: str, asset_uri: str | None = None,
                 dag_id: str | None = None, path: str = "/webhooks/bronze-sales",
                 max_body_bytes: int = 1 << 20, retry_delays: Sequence[float] = (1, 2, 5, 10, 30),
                 remember: int = 10_000) -> None:
        if not secret:
            raise ValueError("a webhook without a secret accepts anyone's events: secret is required")
        if (asset_uri is None) == (dag_id is None):
            raise ValueError("give exactly one target: asset_uri or dag_id")
        self.secret = secret
        self.airflow_url = airflow_url.rstrip("/")
        self._token = airflow_token
        self.asset_uri, self.dag_id, self.path = asset_uri, dag_id, path
        self.max_body_bytes = max_body_bytes
        self.retry_delays = tuple(retry_delays)
        self.remember = remember
        self._accepted: OrderedDict[str, str] = OrderedDict()  # event id -> "queued" | "delivered"
        self._queue: asyncio.Queue[WebhookEvent] = asyncio.Queue()
        self.outcomes: list[dict[str, Any]] = []  # one per event: delivered or gave up, after how many attempts
        self.log = log

    def __repr__(self) -> str:  # the secret and the token stay out of logs and tracebacks
        return f"WebhookReceiver(path={self.path!r}, airflow_url={self.airflow_url!r}, target={self.target!r})"

    @property
    def target(self) -> str:
        return f"asset {self.asset_uri}" if self.asset_uri else f"dag {self.dag_id}"

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)  # larger bodies: 413 from aiohttp
        app.router.add_post(self.path, self.handle)
        app.on_startup.append(self._start_delivery)
        app.on_cleanup.append(self._stop_delivery)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > self.max_body_bytes:
            return web.json_response({"error": "body too large"}, status=413)
        body = await request.read()  # raises HTTPRequestEntityTooLarge (413) past client_max_size
        if not verify_signature(body, request.headers.get(SIGNATURE_HEADER), self.secret):
            self.log.warning("rejected a delivery from %s: missing or bad signature", request.remote)
            return web.json_response({"error": "missing or bad signature"}, status=401)
        try:
            payload = json.loads(body)
        except ValueError:
            return web.json_response({"error": "body is not JSON"}, status=400)
        try:
            event = parse_notification(payload, body)
        except UnknownFormat as exc:
            return web.json_response({"error": str(exc)}, status=422)
        if event.event_id in self._accepted:
            self.log.info("replay of event %s ignored (%s)", event.event_id, self._accepted[event.event_id])
            return web.json_response({"status": "duplicate", "event_id": event.event_id}, status=200)
        self._remember(event.event_id, "queued")
        await self._queue.put(event)
        return web.json_response({"status": "accepted", "event_id": event.event_id}, status=202)

    def _remember(self, event_id: str, state: str) -> None:
        self._accepted[event_id] = state
        self._accepted.move_to_end(event_id)
        while len(self._accepted) > self.remember:
            self._accepted.popitem(last=False)

    async def _start_delivery(self, app: web.Application) -> None:
        # The queue belongs to the server's event loop: make it there.
        self._queue = asyncio.Queue()
        session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {self._token}"},
                                        timeout=aiohttp.ClientTimeout(total=15))
        app[DELIVERY] = (session, asyncio.create_task(self._deliver_forever(session)))

    async def _stop_delivery(self, app: web.Application) -> None:
        session, worker = app[DELIVERY]
        worker.cancel()
        try:
            await worker
        except asyncio.CancelledError:
            pass
        await session.close()
        if not self._queue.empty():
            self.log.error("%d accepted event(s) not delivered at shutdown", self._queue.qsize())

    async def _deliver_forever(self, session: aiohttp.ClientSession) -> None:
        while True:
            event = await self._queue.get()
            await self.deliver_with_retries(session, event)

    async def deliver_with_retries(self, session: aiohttp.ClientSession, event: WebhookEvent) -> bool:
        for attempt, delay in enumerate((*self.retry_delays, None), start=1):
            try:
                reference = await self.deliver(session, event)
            except AirflowDeliveryError as exc:
                if not exc.retryable or delay is None:
                    self.log.error("event %s not delivered to %s after %d attempt(s): %s", event.event_id,
                                   self.target, attempt, exc)
                    self._accepted.pop(event.event_id, None)  # a re-send may try again
                    self.outcomes.append({"event_id": event.event_id, "outcome": "failed", "attempts": attempt,
                                          "error": str(exc)})
                    return False
                self.log.warning("event %s: attempt %d failed (%s); retrying in %g s", event.event_id, attempt,
                                 exc, delay)
                await asyncio.sleep(delay)
                continue
            self._remember(event.event_id, "delivered")
            self.log.info("event %s delivered to %s as %s (attempt %d)", event.event_id, self.target, reference,
                          attempt)
            self.outcomes.append({"event_id": event.event_id, "outcome": "delivered", "attempts": attempt,
                                  "reference": reference})
            return True
        return False

    async def deliver(self, session: aiohttp.ClientSession, event: WebhookEvent) -> str:
        """One attempt: an asset event (its id) or a DAG run (its run id). Raises AirflowDeliveryError."""
        if self.dag_id is not None:
            body = {"logical_date": None, "conf": event.as_extra()}
            answer = await self._call(session, "POST", f"/api/v2/dags/{self.dag_id}/dagRuns", json=body)
            return str(answer["dag_run_id"])
        assets = await self._call(session, "GET", "/api/v2/assets", params={"uri_pattern": self.asset_uri})
        ids = [a["id"] for a in assets.get("assets", []) if a.get("uri") == self.asset_uri]
        if not ids:  # not parsed yet, or a typo: worth a few retries, then the outcome says which
            raise AirflowDeliveryError(f"no asset with uri {self.asset_uri!r} in Airflow", retryable=True)
        answer = await self._call(session, "POST", "/api/v2/assets/events",
                                  json={"asset_id": ids[0], "extra": event.as_extra()})
        return f"asset event {answer.get('id')}"

    async def _call(self, session: aiohttp.ClientSession, method: str, path: str, **kwargs: Any) -> Any:
        try:
            async with session.request(method, self.airflow_url + path, **kwargs) as response:
                text = await response.text()
                if response.status >= 500 or response.status in (408, 429):
                    raise AirflowDeliveryError(f"{method} {path}: HTTP {response.status}", retryable=True)
                if response.status >= 400:
                    raise AirflowDeliveryError(f"{method} {path}: HTTP {response.status} {text[:200]}",
                                               retryable=False)
                return json.loads(text) if text else {}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise AirflowDeliveryError(f"{method} {path}: {type(exc).__name__}: {exc}", retryable=True) from None


# ---- Task 3: poll-and-fire triggers with deduplication and an audit trail -------------------------------
@dataclass(frozen=True)
class PollResult:
    """
    What one poll decided: skip, or fire with an optional context (the seed's TriggerResult).

    :param fire: Whether the condition fired.
    :param context: What the fire is about; deduplication compares contexts by their hash.
    """

    fire: bool
    context: dict[str, Any] | None = None

    @classmethod
    def skip(cls) -> PollResult:
        return cls(False)

    @classmethod
    def fire_with(cls, context: dict[str, Any] | None = None) -> PollResult:
        return cls(True, context)


def context_hash(context: dict[str, Any] | None) -> str:
    """The same context, however its keys are ordered, hashes the same."""
    canonical = json.dumps(context, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ActivationAudit:
    """
    The seed's `trigger_executions` table in SQLite: one row per activation, completed by the DAG run.

    A row without `completed_at` is an execution still in progress, unless it is older than
    `stale_after` seconds (a run that died without completing must not block its context forever).

    :param db_path: The SQLite database file; it and its folder are created when missing.
    :param stale_after: Seconds after which an activation never completed stops blocking its context.
    """

    SCHEMA = """CREATE TABLE IF NOT EXISTS trigger_executions (
        id INTEGER PRIMARY KEY AUTOINCREMENT, trigger_name TEXT NOT NULL, context_hash TEXT NOT NULL,
        context TEXT, run_id TEXT, started_at TEXT NOT NULL, completed_at TEXT, outcome TEXT)"""

    def __init__(self, db_path: str | os.PathLike[str], stale_after: float = 6 * 3600) -> None:
        self.db_path = str(db_path)
        self.stale_after = stale_after

    def _connect(self) -> sqlite3.Connection:
        Path(self.db_path).parent.mkdir(parents=True, exist_ok=True)
        # The triggerer and the workers write concurrently: wait for the lock instead of failing.
        connection = sqlite3.connect(self.db_path, timeout=30, isolation_level="IMMEDIATE")
        connection.row_factory = sqlite3.Row
        connection.execute(self.SCHEMA)
        return connection

    def _run(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        connection = self._connect()
        try:
            with connection:  # one transaction, committed or rolled back
                return connection.execute(sql, params).fetchall()
        finally:
            connection.close()

    def start_unless_running(self, trigger_name: str, context: dict[str, Any] | None,
                             allow_concurrent: bool) -> int | None:
        """Record an activation and return its id; None when deduplication suppresses it.

        Check and insert happen in one transaction, so two triggers cannot both start the same context.
        """
        digest = context_hash(context)
        now = timezone.utcnow()
        stale_before = (now - timedelta(seconds=self.stale_after)).isoformat()
        connection = self._connect()
        try:
            with connection:
                # Python's sqlite3 would begin the transaction only before the INSERT, leaving the SELECT
                # in autocommit: two triggers could both see no running row and both insert. BEGIN
                # IMMEDIATE takes the write lock first, so the check and the insert are one step.
                connection.execute("BEGIN IMMEDIATE")
                if not allow_concurrent and connection.execute(
                    "SELECT 1 FROM trigger_executions WHERE trigger_name = ? AND context_hash = ? "
                    "AND completed_at IS NULL AND started_at > ?", (trigger_name, digest, stale_before),
                ).fetchone():
                    return None
                cursor = connection.execute(
                    "INSERT INTO trigger_executions (trigger_name, context_hash, context, started_at) "
                    "VALUES (?, ?, ?, ?)", (trigger_name, digest, json.dumps(context, default=str), now.isoformat()),
                )
                return int(cursor.lastrowid)
        finally:
            connection.close()

    def attach_run(self, activation_id: int, run_id: str) -> None:
        self._run("UPDATE trigger_executions SET run_id = ? WHERE id = ?", (run_id, activation_id))

    def complete(self, activation_id: int, outcome: str) -> None:
        self._run("UPDATE trigger_executions SET completed_at = ?, outcome = ? WHERE id = ?",
                  (timezone.utcnow().isoformat(), outcome, activation_id))

    def rows(self) -> list[dict[str, Any]]:
        return [dict(row) for row in self._run("SELECT * FROM trigger_executions ORDER BY id")]


class ConditionTrigger(BaseEventTrigger):
    """
    Poll a condition forever; on a fire, audit the activation and yield an event for it.

    Each poll is bounded by `poll_timeout`; errors and timeouts are logged and polling goes on. The event is
    `{trigger, context, context_hash, activation_id}`; with `allow_concurrent=False` a fire whose context
    has an activation still in progress is suppressed. Subclasses implement `poll()` and add their own
    arguments (`condition_kwargs()`).

    :param name: The trigger's name, in the audit table and its events.
    :param audit_db: Path of the SQLite audit database (`ActivationAudit`).
    :param poll_interval: Seconds between two polls.
    :param poll_timeout: Seconds one poll may take before it counts as a skip.
    :param allow_concurrent: Fire again for a context whose activation is still in progress.
    """

    def __init__(self, name: str, audit_db: str, poll_interval: float = 2.0, poll_timeout: float = 10.0,
                 allow_concurrent: bool = False) -> None:
        super().__init__()
        if poll_interval <= 0 or poll_timeout <= 0:
            raise ValueError(f"poll_interval and poll_timeout must be > 0, got {poll_interval}, {poll_timeout}")
        self.name = name
        self.audit_db = audit_db
        self.poll_interval = float(poll_interval)
        self.poll_timeout = float(poll_timeout)
        self.allow_concurrent = bool(allow_concurrent)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "name": self.name,
            "audit_db": self.audit_db,
            "poll_interval": self.poll_interval,
            "poll_timeout": self.poll_timeout,
            "allow_concurrent": self.allow_concurrent,
            **self.condition_kwargs(),
        }

    def condition_kwargs(self) -> dict[str, Any]:
        """The subclass's own constructor arguments."""
        return {}

    async def poll(self) -> PollResult:
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        audit = ActivationAudit(self.audit_db)
        while True:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.poll_timeout):
                    result = await self.poll()
            except TimeoutError:
                self.log.warning("%s: poll took longer than %g s; skipped", self.name, self.poll_timeout)
                result = PollResult.skip()
            except Exception:
                self.log.exception("%s: poll failed; polling goes on", self.name)
                result = PollResult.skip()
            if result.fire:
                activation = await asyncio.to_thread(audit.start_unless_running, self.name, result.context,
                                                     self.allow_concurrent)
                if activation is None:
                    self.log.info("%s: fire suppressed, a run with the same context is in progress", self.name)
                else:
                    self.log.info("%s: fired activation %d with %s", self.name, activation, result.context)
                    yield TriggerEvent({"trigger": self.name, "context": result.context,
                                        "context_hash": context_hash(result.context), "activation_id": activation})
            await asyncio.sleep(max(self.poll_interval - (time.monotonic() - started), 0))


class InboxFileTrigger(ConditionTrigger):
    """
    Fire with `{"inbox", "filename"}` for the first file, by name, in a folder; the DAG moves it away.

    Hidden files (an upload in progress) and directories do not count.

    :param inbox: The folder to watch; a missing one is empty.
    :param kwargs: `ConditionTrigger`'s arguments: `name`, `audit_db`, `poll_interval`, ...
    """

    def __init__(self, inbox: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inbox = inbox

    def condition_kwargs(self) -> dict[str, Any]:
        return {"inbox": self.inbox}

    async def poll(self) -> PollResult:
        def first_file() -> str | None:
            names = sorted(e.name for e in os.scandir(self.inbox) if e.is_file() and not e.name.startswith("."))
            return names[0] if names else None

        try:
            name = await asyncio.to_thread(first_file)
        except FileNotFoundError:
            return PollResult.skip()
        return PollResult.fire_with({"inbox": self.inbox, "filename": name}) if name else PollResult.skip()


async def _get_json(url: str) -> tuple[int, Any]:
    """One GET; the caller bounds it (the poll's timeout)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            return response.status, await response.json(content_type=None)


class QueueDepthTrigger(ConditionTrigger):
    """
    Fire with `{"queue", "depth"}` while the queue at `queue_url` holds more than `threshold` messages.

    :param queue_url: The queue's URL; it answers `{"name", "depth"}`, and any other answer is a poll error.
    :param threshold: Fire while the depth is above this.
    :param kwargs: `ConditionTrigger`'s arguments: `name`, `audit_db`, `poll_interval`, ...
    """

    def __init__(self, queue_url: str, threshold: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.queue_url = queue_url
        self.threshold = int(threshold)

    def condition_kwargs(self) -> dict[str, Any]:
        return {"queue_url": self.queue_url, "threshold": self.threshold}

    async def poll(self) -> PollResult:
        status, body = await _get_json(self.queue_url)
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("depth"), int):
            raise ValueError(f"{self.queue_url}: unexpected answer HTTP {status} {str(body)[:200]}")
        if body["depth"] > self.threshold:
            return PollResult.fire_with({"queue": body.get("name", self.queue_url), "depth": body["depth"]})
        return PollResult.skip()


class ServiceHealthTrigger(ConditionTrigger):
    """
    Fire with `{"service": health_url}` once `health_url` failed `failures_required` checks in a row.

    :param health_url: The health endpoint; an error, a timeout or an answer other than 2xx is a failed
        check, and a success resets the count.
    :param failures_required: How many failed checks in a row fire; at least 1.
    :param kwargs: `ConditionTrigger`'s arguments: `name`, `audit_db`, `poll_interval`, ...
    """

    def __init__(self, health_url: str, failures_required: int = 3, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if failures_required < 1:
            raise ValueError(f"failures_required must be >= 1, got {failures_required}")
        self.health_url = health_url
        self.failures_required = int(failures_required)
        self.consecutive_failures = 0

    def condition_kwargs(self) -> dict[str, Any]:
        return {"health_url": self.health_url, "failures_required": self.failures_required}

    async def poll(self) -> PollResult:
        try:
            # Inside the poll's own timeout, so that a hanging service counts as a failed check.
            async with asyncio.timeout(self.poll_timeout * 0.8):
                status, _ = await _get_json(self.health_url)
            healthy = 200 <= status < 300
        except (aiohttp.ClientError, TimeoutError, ValueError):
            healthy = False
        self.consecutive_failures = 0 if healthy else self.consecutive_failures + 1
        if self.consecutive_failures >= self.failures_required:
            # The context names the service only: every further failure during a recovery hashes the same.
            return PollResult.fire_with({"service": self.health_url})
        return PollResult.skip()


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
    """
    Turn a preset name or a cron expression, in an IANA time zone, into a timetable (runs at the cron times).

    An unknown preset, a bad cron or an unknown zone is a ValueError naming it.

    :param cron: A preset name (`hourly`, `daily`, `daily_6am`, `weekly`, `monthly`, `every_15min`,
        `every_30min`) or a 5-field cron expression.
    :param timezone_name: The IANA time zone the cron times are in.
    """
    expression = CRON_PRESETS.get(cron, cron)
    if len(expression.split()) != 5:
        raise ValueError(f"{cron!r} is neither a preset ({', '.join(CRON_PRESETS)}) nor a 5-field cron")
    try:
        zone = pendulum.timezone(timezone_name)
    except Exception as exc:  # pendulum raises its own InvalidTimezone
        raise ValueError(f"unknown time zone {timezone_name!r}") from exc
    timetable = CronTriggerTimetable(expression, timezone=zone)
    try:
        timetable.validate()
    except AirflowTimetableInvalid as exc:
        raise ValueError(f"invalid cron {cron!r}: {exc}") from exc
    return timetable


@dataclass(frozen=True)
class FreshnessPolicy:
    """
    A freshness SLA: how old data may get.

    :param warn_after: Data older than this is late (a warning); positive.
    :param error_after: Data older than this is too old (an error); at least `warn_after`.
    """

    warn_after: timedelta
    error_after: timedelta

    def __post_init__(self) -> None:
        if not timedelta(0) < self.warn_after <= self.error_after:
            raise ValueError(f"need 0 < warn_after <= error_after, got {self.warn_after}, {self.error_after}")


# The seed's table, tightest first: the schedule of the largest threshold that warn_after reaches.
FRESHNESS_TABLE: tuple[tuple[timedelta, str], ...] = (
    (timedelta(hours=24), "0 0 * * *"),     # daily
    (timedelta(hours=12), "0 0,12 * * *"),  # twice daily
    (timedelta(hours=6), "0 */3 * * *"),    # every 3 hours
    (timedelta(hours=1), "0 * * * *"),      # hourly
    (timedelta(minutes=30), "*/15 * * * *"),  # below the table: the tightest preset, still inside warn_after
)


def freshness_schedule(policy: FreshnessPolicy, timezone_name: str = "UTC") -> CronTriggerTimetable:
    """
    A timetable that runs often enough for data never to get older than `warn_after` between two runs.

    A `warn_after` under 30 minutes is a ValueError: that wants an event trigger, not a schedule.

    :param policy: The SLA; its `warn_after` picks the schedule.
    :param timezone_name: The IANA time zone of the schedule.
    """
    for threshold, expression in FRESHNESS_TABLE:
        if policy.warn_after >= threshold:
            return cron_schedule(expression, timezone_name)
    raise ValueError(f"warn_after {policy.warn_after} is tighter than any schedule should poll: use an event "
                     f"trigger (Task 1) instead")


FreshnessState = Literal["fresh", "warn", "error"]


def check_freshness(last_updated: datetime, now: datetime, policy: FreshnessPolicy) -> tuple[FreshnessState, timedelta]:
    """
    Judge data's age by a freshness SLA: `("fresh" | "warn" | "error", age)`.

    Strictly older than `warn_after` warns, strictly older than `error_after` is an error.

    :param last_updated: When the data was last updated (time-zone aware).
    :param now: The time to measure the age at (time-zone aware).
    :param policy: The SLA to judge the age by.
    """
    if last_updated.tzinfo is None or now.tzinfo is None:
        raise ValueError("check_freshness needs time-zone-aware datetimes (a naive one is ambiguous)")
    age = now - last_updated
    if age > policy.error_after:
        return "error", age
    if age > policy.warn_after:
        return "warn", age
    return "fresh", age
