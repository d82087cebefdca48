"""Exercise 4, Custom Sensors: the reference solution.

Five sensors that wait well on systems we do not control: an order database, a flapping health API,
several data feeds at once, a partner drop folder with an adaptive poll interval, and any check behind a
circuit breaker whose state survives reschedule mode.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Collection, Generator, Mapping
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from airflow.sdk import BaseHook, BaseSensorOperator, Context, PokeReturnValue, timezone
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout
from airflow.sdk.log import mask_secret

JsonDict = dict[str, Any]


# ---- shared helpers --------------------------------------------------------------------------------------
def default_state_dir() -> Path:
    """Where sensors keep state that must outlive one poke: `$AIRFLOW_HOME/sensor_state`."""
    return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "sensor_state"


@contextlib.contextmanager
def _locked(path: Path) -> Generator[None]:
    """Serialize read-modify-write of `path` between processes (a sidecar lock file; the data file
    itself is replaced atomically, so readers never need the lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON so that a reader (another worker, the next poke) sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _attempt(context: Context, pokes_here: int) -> int:
    """The poke number across reschedules: each reschedule is a new instance that pokes once."""
    return int(context.get("task_reschedule_count", 0) or 0) + pokes_here


# ---- Task 1 ------------------------------------------------------------------------------------------
class OrderStatusSensor(BaseSensorOperator):
    """
    Wait until an order reaches `expected_status`; return the order record (XCom).

    A database that is missing, torn mid-write or locked is a reason to look again, not to fail, and so is
    an order not in it yet. An order that reached one of `terminal_statuses` other than the one we wait for
    fails the task at once: it will never ship.

    :param order_id: The order to wait for (templated).
    :param expected_status: The status that ends the wait (templated).
    :param db_path: The order database (templated): a folder holding `orders.json`, a `.json` file (a list of
        orders or `{"orders": [...]}`), or a SQLite file (`.sqlite`/`.db`, table `orders`).
    :param terminal_statuses: Statuses an order never leaves: reaching one that is not `expected_status`
        fails the task at once; `()` turns this off.
    :param sqlite_lock_timeout: Seconds to wait for a writer's lock on a SQLite database before looking
        again at the next poke.
    """

    template_fields = ("order_id", "expected_status", "db_path")

    def __init__(
        self,
        order_id: int,
        expected_status: str,
        db_path: str = "/tmp/mock-ecommerce-db",
        *,
        terminal_statuses: Collection[str] = ("cancelled", "refunded"),
        sqlite_lock_timeout: float = 1.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.order_id = order_id
        self.expected_status = expected_status
        self.db_path = db_path
        self.terminal_statuses = frozenset(terminal_statuses)
        self.sqlite_lock_timeout = sqlite_lock_timeout
        self._pokes = 0

    def poke(self, context: Context) -> bool | PokeReturnValue:
        self._pokes += 1
        attempt = _attempt(context, self._pokes)
        order = self._find_order()
        if order is None:
            return False  # why was logged where we found out
        status = order.get("status")
        self.log.info("Order %s: status %r, waiting for %r (attempt %d)",
                      self.order_id, status, self.expected_status, attempt)
        if status == self.expected_status:
            return PokeReturnValue(is_done=True, xcom_value=order)
        if status in self.terminal_statuses:
            raise AirflowFailException(
                f"Order {self.order_id} is {status!r}, a final status: it will never become "
                f"{self.expected_status!r}"
            )
        return False

    def _find_order(self) -> JsonDict | None:
        path = Path(self.db_path)
        if path.is_dir():
            path = path / "orders.json"
        try:
            if path.suffix in {".sqlite", ".sqlite3", ".db"}:
                order = self._read_sqlite(path)
            else:
                order = self._read_json(path)
        except FileNotFoundError:
            self.log.warning("Order database %s does not exist (yet); will look again", path)
            return None
        except (OSError, sqlite3.Error) as exc:
            self.log.warning("Order database %s could not be read (%s: %s); will look again",
                             path, type(exc).__name__, exc)
            return None
        except ValueError as exc:  # torn or foreign JSON, wrong shape
            self.log.warning("Order database %s is not a valid orders file (%s); will look again", path, exc)
            return None
        if order is None:
            self.log.warning("Order %s is not in %s (yet); will look again", self.order_id, path)
        return order

    def _read_json(self, path: Path) -> JsonDict | None:
        document = json.loads(path.read_text(encoding="utf-8"))
        orders = document.get("orders") if isinstance(document, dict) else document
        if not isinstance(orders, list):
            raise ValueError('expected a list of orders or {"orders": [...]}')
        wanted = str(self.order_id)
        return next((o for o in orders if isinstance(o, dict) and str(o.get("id")) == wanted), None)

    def _read_sqlite(self, path: Path) -> JsonDict | None:
        if not path.exists():  # connect() would create an empty database
            raise FileNotFoundError(path)
        uri = f"file:{path}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=self.sqlite_lock_timeout)) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM orders WHERE id = ?", (self.order_id,)).fetchone()
        if row is None:
            return None
        order = dict(row)
        extra = order.pop("extra", None)
        if extra:
            order.update(json.loads(extra))
        return order


# ---- Task 2 ------------------------------------------------------------------------------------------
_SENSITIVE_HEADERS = re.compile(r"authorization|api[-_]?key|token|cookie|secret", re.IGNORECASE)
_RETRY_LATER_STATUSES = {408, 425, 429}


def _subset(expected: Any, actual: Any) -> bool:
    """True when every key of `expected` is in `actual` with the same value (recursively for dicts)."""
    if isinstance(expected, Mapping):
        return isinstance(actual, Mapping) and all(
            key in actual and _subset(value, actual[key]) for key, value in expected.items()
        )
    return expected == actual


def _redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: ("***" if _SENSITIVE_HEADERS.search(k) else v) for k, v in headers.items()}


class APIHealthSensor(BaseSensorOperator):
    """
    Wait until an HTTP endpoint answers the expected status with a JSON body containing the expected keys.

    Returns `{"status_code", "body", "latency_ms"}` (XCom). Connection errors are retried inside one poke;
    5xx, 408/429, timeouts and wrong bodies mean "not yet"; 401/403/404 and the other 4xx fail the task at
    once, since waiting does not fix a wrong URL or a rejected credential.

    :param endpoint_url: The http(s) URL to GET (templated).
    :param expected_status: The HTTP status of a healthy answer.
    :param expected_response: Keys and values the JSON body must contain, nested dicts compared key by key
        (templated); None accepts any JSON body.
    :param headers: HTTP headers sent with every request (templated); secret ones are redacted in the log.
    :param request_timeout: Seconds one request may take; a slower answer means "not yet".
    :param bearer_token: A token sent as `Authorization: Bearer <token>`.
    :param basic_auth: `(user, password)` for HTTP basic auth.
    :param conn_id: An Airflow Connection holding the credentials (templated): login and password are basic
        auth, a password alone is a bearer token. Give at most one of `bearer_token`, `basic_auth` and
        `conn_id`.
    :param connect_retries: How many more times a refused or reset connection is tried within one poke.
    :param retry_backoff: Seconds before the first of those retries, doubled before each next one.
    :param max_retry_backoff: The longest wait between two retries, in seconds.
    """

    template_fields = ("endpoint_url", "expected_response", "headers", "conn_id")

    def __init__(
        self,
        endpoint_url: str,
        expected_status: int = 200,
        expected_response: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        request_timeout: int = 30,
        *,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        conn_id: str | None = None,
        connect_retries: int = 3,
        retry_backoff: float = 1.0,
        max_retry_backoff: float = 30.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if sum(x is not None for x in (bearer_token, basic_auth, conn_id)) > 1:
            raise ValueError("give at most one of bearer_token, basic_auth and conn_id")
        if request_timeout <= 0 or connect_retries < 0 or retry_backoff < 0:
            raise ValueError("request_timeout must be > 0, connect_retries and retry_backoff >= 0")
        self.endpoint_url = endpoint_url
        self.expected_status = expected_status
        self.expected_response = expected_response
        self.headers = headers or {}
        self.request_timeout = request_timeout
        self.bearer_token = bearer_token
        self.basic_auth = basic_auth
        self.conn_id = conn_id
        self.connect_retries = connect_retries
        self.retry_backoff = retry_backoff
        self.max_retry_backoff = max_retry_backoff

    def poke(self, context: Context) -> bool | PokeReturnValue:
        url = self._checked_url()
        headers = {"Accept": "application/json", **self.headers, **self._auth_header()}
        self.log.info("GET %s with headers %s", url, _redact_headers(headers))
        response, latency = self._get(url, headers)
        if response is None:
            return False
        body_text = response.text[:500]
        self.log.info("%s answered %d in %.0f ms: %s", url, response.status_code, latency * 1000, body_text)

        status = response.status_code
        if status in (401, 403):
            raise AirflowFailException(
                f"{url} rejected our credentials ({status}); fix the auth configuration, waiting will not help"
            )
        if 400 <= status < 500 and status not in _RETRY_LATER_STATUSES:
            raise AirflowFailException(f"{url} answered {status}: the request is wrong, waiting will not help")
        if status != self.expected_status:
            self.log.info("Not healthy yet: expected status %d, got %d", self.expected_status, status)
            return False
        try:
            body = response.json()
        except ValueError:
            self.log.warning("Not healthy yet: the body is not JSON: %r", body_text)
            return False
        if self.expected_response is not None and not _subset(self.expected_response, body):
            self.log.info("Not healthy yet: body %s does not contain %s", body, self.expected_response)
            return False
        return PokeReturnValue(
            is_done=True,
            xcom_value={"status_code": status, "body": body, "latency_ms": round(latency * 1000, 1)},
        )

    def _checked_url(self) -> str:
        parts = urlsplit(str(self.endpoint_url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise AirflowFailException(f"endpoint_url must be an http(s) URL, got {self.endpoint_url!r}")
        return str(self.endpoint_url)

    def _auth_header(self) -> dict[str, str]:
        token, basic = self.bearer_token, self.basic_auth
        if self.conn_id:
            try:
                conn = BaseHook.get_connection(self.conn_id)
            except AirflowException as exc:  # AirflowNotFoundException: a typo in the DAG
                raise AirflowFailException(f"connection {self.conn_id!r}: {exc}") from exc
            if conn.login:
                basic = (conn.login, conn.password or "")
            elif conn.password:
                token = conn.password
            else:
                raise AirflowFailException(f"connection {self.conn_id!r} has neither login nor password")
        if token:
            mask_secret(token)
            return {"Authorization": f"Bearer {token}"}
        if basic:
            mask_secret(basic[1])
            encoded = base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode()
            mask_secret(encoded)
            return {"Authorization": f"Basic {encoded}"}
        return {}

    def _get(self, url: str, headers: dict[str, str]) -> tuple[requests.Response | None, float]:
        """One GET, retrying connection errors with a bounded exponential backoff; (None, t) means not yet."""
        for attempt in range(self.connect_retries + 1):
            started = time.monotonic()
            try:
                response = requests.get(url, headers=headers, timeout=self.request_timeout)
                return response, time.monotonic() - started
            except requests.Timeout:
                # A slow API is not failing fast, and retrying at once would only double the wait.
                self.log.warning("%s did not answer within %s s; not healthy yet", url, self.request_timeout)
                return None, time.monotonic() - started
            except requests.ConnectionError as exc:
                if attempt == self.connect_retries:
                    self.log.warning("%s unreachable after %d attempts (%s); not healthy yet",
                                     url, attempt + 1, type(exc).__name__)
                    return None, time.monotonic() - started
                delay = min(self.retry_backoff * 2**attempt, self.max_retry_backoff)
                self.log.warning("%s unreachable (%s); retry %d/%d in %.2f s",
                                 url, type(exc).__name__, attempt + 1, self.connect_retries, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")


# ---- Task 3 ------------------------------------------------------------------------------------------
Condition = Callable[[], bool]


class MultiSourceReadinessSensor(BaseSensorOperator):
    """
    Wait for several readiness conditions: all of them (`require_all=True`) or any one.

    A condition that raises counts as not ready (status "error"). A condition past its own timeout fails
    the sensor by name in all-mode; in any-mode it is dropped, and the sensor fails when every condition is
    out. The per-condition status is logged on each poke and returned as XCom.

    :param conditions: Zero-argument callables returning bool, by name; at least one.
    :param require_all: Done when every condition is ready (True), or when one is (False).
    :param condition_timeouts: Seconds from the first poke after which a condition that is not ready times
        out, by name (each a name of `conditions`): in all-mode it fails the sensor, in any-mode it is
        dropped.
    """

    def __init__(
        self,
        conditions: dict[str, Callable],
        require_all: bool = True,
        condition_timeouts: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not conditions:
            raise ValueError("conditions must name at least one callable")
        unknown = set(condition_timeouts or {}) - set(conditions)
        if unknown:
            raise ValueError(f"condition_timeouts names unknown conditions: {sorted(unknown)}")
        self.conditions = dict(conditions)
        self.require_all = require_all
        self.condition_timeouts = dict(condition_timeouts or {})
        self._started_at: float | None = None
        self._status: dict[str, JsonDict] = {
            name: {"status": "waiting", "checks": 0, "last_error": None, "first_ready_at": None}
            for name in self.conditions
        }

    @property
    def condition_status(self) -> dict[str, JsonDict]:
        return {name: dict(status) for name, status in self._status.items()}

    def poke(self, context: Context) -> bool | PokeReturnValue:
        elapsed = self._elapsed(context)
        for name, condition in self.conditions.items():
            status = self._status[name]
            if status["status"] == "timed_out":
                continue
            status["checks"] += 1
            try:
                ready = bool(condition())
            except Exception as exc:  # a broken source is a source that is not ready
                ready = False
                status["last_error"] = f"{type(exc).__name__}: {exc}"
                status["status"] = "error"
                self.log.warning("Condition %r raised %s", name, status["last_error"])
            else:
                status["status"] = "ready" if ready else "waiting"
            if ready:
                status["first_ready_at"] = status["first_ready_at"] or timezone.utcnow().isoformat()
            elif name in self.condition_timeouts and elapsed > self.condition_timeouts[name]:
                status["status"] = "timed_out"
            self.log.info("Condition %-20s %-9s (checks %d, last error %s)",
                          name, status["status"], status["checks"], status["last_error"])

        states = [s["status"] for s in self._status.values()]
        timed_out = [n for n, s in self._status.items() if s["status"] == "timed_out"]
        if self.require_all and timed_out:
            raise AirflowSensorTimeout(f"condition(s) {', '.join(timed_out)} not ready within their timeout")
        if not self.require_all and len(timed_out) == len(states):
            raise AirflowSensorTimeout(f"every condition timed out: {', '.join(timed_out)}")
        done = all(s == "ready" for s in states) if self.require_all else "ready" in states
        self.log.info("%d/%d conditions ready (%s mode)", states.count("ready"), len(states),
                      "all" if self.require_all else "any")
        return PokeReturnValue(is_done=done, xcom_value=self.condition_status if done else None)

    def _elapsed(self, context: Context) -> float:
        """Seconds since the first poke. In reschedule mode that is the first reschedule's date, since
        every poke runs on a new instance."""
        if self._started_at is None:
            first = context["ti"].get_first_reschedule_date(context) if self.reschedule else None
            self._started_at = first.timestamp() if first else timezone.utcnow().timestamp()
        return timezone.utcnow().timestamp() - self._started_at


def behavior_logs_fresh(folder: str | os.PathLike[str], max_age_minutes: float = 60,
                        pattern: str = "*.log") -> Condition:
    """
    A condition: `folder` holds a file matching `pattern` modified in the last `max_age_minutes`.

    :param folder: The folder the logs land in; a missing folder is not ready.
    :param max_age_minutes: How recent the newest matching file must be.
    :param pattern: Glob pattern of the log files' names.
    """
    root = Path(folder)

    def behavior_logs_fresh() -> bool:
        if not root.is_dir():
            return False
        cutoff = time.time() - max_age_minutes * 60
        return any(p.stat().st_mtime >= cutoff for p in root.glob(pattern) if p.is_file())

    return behavior_logs_fresh


def catalog_version_above(url: str, min_version: int = 100, timeout: float = 10.0) -> Condition:
    """
    A condition: the catalog API at `url` reports a version above `min_version` (errors raise).

    :param url: The catalog API; it answers `{"version": N}`.
    :param min_version: The version the catalog must be above.
    :param timeout: Seconds the request may take.
    """

    def catalog_version_above() -> bool:
        response = requests.get(url, timeout=timeout)
        response.raise_for_status()
        return int(response.json()["version"]) > min_version

    return catalog_version_above


def inventory_snapshot_today(path: str | os.PathLike[str],
                             today: Callable[[], date] | None = None) -> Condition:
    """
    A condition: the JSON snapshot at `path` has `"date"` equal to today.

    :param path: The JSON snapshot file; a missing file is not ready.
    :param today: Returns today's date; default the current UTC date.
    """
    snapshot = Path(path)

    def inventory_snapshot_today() -> bool:
        if not snapshot.exists():
            return False
        day = (today or (lambda: timezone.utcnow().date()))()
        return json.loads(snapshot.read_text(encoding="utf-8")).get("date") == day.isoformat()

    return inventory_snapshot_today


# ---- Task 4 ------------------------------------------------------------------------------------------
class AdaptiveFileSensor(BaseSensorOperator):
    """
    Wait for a file, polling more or less often depending on how this file's arrivals went before.

    Every poke is recorded (success, duration) in a JSON history keyed by the watched path, kept between
    DAG runs in `history_path`. Over the last `history_size` attempts: a success rate above 80 % makes the
    interval 50 % longer, below 30 % makes it 30 % shorter, clamped to [min_interval, max_interval]. A
    manual override wins. The interval computed is the one Airflow waits: `_get_next_poke_interval` returns
    it, in poke and reschedule mode. Returns `metrics()` (XCom) once the file is there.

    :param filepath: The file to wait for; its history is kept under this path.
    :param initial_interval: Seconds between pokes before there is any history; the default `poke_interval`.
    :param min_interval: The shortest interval the rule may set, in seconds; positive.
    :param max_interval: The longest interval the rule may set, in seconds; at least `min_interval`.
    :param history_size: How many of the latest attempts the rule looks at and the history keeps; at least 1.
    :param history_path: The JSON history file, shared by every sensor and keyed by `filepath`; default
        `$AIRFLOW_HOME/sensor_state/adaptive_history.json`.
    :param override_interval: Seconds that win over the adaptive interval, as does the run conf key
        `poll_interval_override`; only a positive number overrides.
    """

    OVERRIDE_CONF_KEY = "poll_interval_override"

    def __init__(
        self,
        filepath: str,
        initial_interval: int = 60,
        min_interval: int = 30,
        max_interval: int = 300,
        history_size: int = 20,
        *,
        history_path: str | None = None,
        override_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", initial_interval)
        super().__init__(**kwargs)
        if not 0 < min_interval <= max_interval:
            raise ValueError(f"need 0 < min_interval <= max_interval, got {min_interval} and {max_interval}")
        if history_size < 1:
            raise ValueError("history_size must be at least 1")
        self.filepath = filepath
        self.initial_interval = initial_interval
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.history_size = history_size
        self.history_path = history_path
        self.override_interval = override_interval
        self._next_interval: float | None = None

    @property
    def _history_file(self) -> Path:
        return Path(self.history_path) if self.history_path else default_state_dir() / "adaptive_history.json"

    def poke(self, context: Context) -> bool | PokeReturnValue:
        started = time.monotonic()
        found = os.path.exists(self.filepath)
        self.record_attempt(found, time.monotonic() - started)
        if found:
            metrics = self.metrics()
            self.log.info("%s arrived; metrics %s", self.filepath, metrics)
            return PokeReturnValue(is_done=True, xcom_value=metrics)
        override = self._override(context)
        if override is not None:
            self._next_interval = override
            self.log.info("%s not there yet; manual override: next poke in %.1f s", self.filepath, override)
        else:
            self._next_interval = self.calculate_adaptive_interval()
            self._save_interval(self._next_interval)
            self.log.info("%s not there yet; adaptive interval now %.1f s", self.filepath, self._next_interval)
        return False

    def _get_next_poke_interval(self, started_at, run_duration, poke_count) -> float:
        # Airflow asks this after every unsuccessful poke, in poke mode (sleep) and reschedule mode
        # (reschedule date): answering with the adaptive interval makes it the one actually waited.
        if self._next_interval is None:
            return super()._get_next_poke_interval(started_at, run_duration, poke_count)
        return self._next_interval

    def _override(self, context: Context) -> float | None:
        conf = (context.get("dag_run") and context["dag_run"].conf) or {}
        value = conf.get(self.OVERRIDE_CONF_KEY, self.override_interval)
        if value is None:
            return None
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            self.log.warning("Ignoring override interval %r: not a number", value)
            return None
        if seconds <= 0:
            self.log.warning("Ignoring override interval %r: must be positive", value)
            return None
        return seconds

    # -- history -----------------------------------------------------------------------------------
    def _load_all(self) -> JsonDict:
        path = self._history_file
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            self.log.warning("Polling history %s is unreadable (%s); starting a new one", path, exc)
            return {}
        if not isinstance(data, dict):
            self.log.warning("Polling history %s has the wrong shape; starting a new one", path)
            return {}
        return data

    def _entry(self, data: JsonDict) -> JsonDict:
        entry = data.get(self.filepath)
        if not isinstance(entry, dict) or not isinstance(entry.get("attempts"), list):
            entry = {"attempts": [], "interval": float(self.initial_interval)}
        return entry

    def _update(self, change: Callable[[JsonDict], None]) -> None:
        with _locked(self._history_file):
            data = self._load_all()
            entry = self._entry(data)
            change(entry)
            data[self.filepath] = entry
            _atomic_write_json(self._history_file, data)

    def history(self) -> list[JsonDict]:
        return self._entry(self._load_all())["attempts"]

    def record_attempt(self, success: bool, duration: float) -> None:
        """Record polling attempt for learning (only the last `history_size` are kept)."""
        attempt = {"success": bool(success), "duration": round(float(duration), 6),
                   "at": timezone.utcnow().isoformat()}

        def add(entry: JsonDict) -> None:
            entry["attempts"] = [*entry["attempts"], attempt][-self.history_size:]

        self._update(add)

    def _save_interval(self, interval: float) -> None:
        self._update(lambda entry: entry.__setitem__("interval", interval))

    def calculate_adaptive_interval(self) -> float:
        """The next interval from the current one and the success rate of the last `history_size` attempts
        (seconds, to the millisecond: compressed-time runs use intervals below one second)."""
        entry = self._entry(self._load_all())
        current = float(entry.get("interval") or self.initial_interval)
        attempts = entry["attempts"][-self.history_size:]
        if attempts:
            rate = sum(a.get("success") is True for a in attempts) / len(attempts)
            if rate > 0.8:
                current *= 1.5
            elif rate < 0.3:
                current *= 0.7
        return round(min(max(current, self.min_interval), self.max_interval), 3)

    def metrics(self) -> JsonDict:
        entry = self._entry(self._load_all())
        attempts = entry["attempts"]
        successes = sum(a.get("success") is True for a in attempts)
        return {
            "attempts": len(attempts),
            "success_rate": successes / len(attempts) if attempts else 0.0,
            "mean_duration": statistics.fmean(a.get("duration", 0.0) for a in attempts) if attempts else 0.0,
            "current_interval": float(entry.get("interval") or self.initial_interval),
        }


# ---- Task 5 ------------------------------------------------------------------------------------------
class CircuitBreakerSensor(BaseSensorOperator):
    """
    Poke `check_condition()` behind a circuit breaker; return the breaker's state (XCom) when it passes.

    `failure_threshold` consecutive errors open the circuit: checks are skipped (the poke answers "not
    yet") until `recovery_timeout` seconds have passed, then one trial check runs (half-open): an answer
    closes the circuit, an error opens it again. The breaker's state lives in a small JSON file keyed by
    dag, task, run and map index, written atomically: in reschedule mode every poke is a new operator
    instance, so state kept on `self` would be forgotten between pokes. Errors are logged, never raised;
    the sensor's own `timeout` ends a wait on a system that stays broken.

    :param failure_threshold: How many check errors in a row open the circuit; at least 1.
    :param recovery_timeout: Seconds the circuit stays open before one trial check; not negative.
    :param condition: The check, a zero-argument callable (a true answer ends the wait); or override
        `check_condition()` in a subclass.
    :param state_dir: The folder of the breaker's state files; default
        `$AIRFLOW_HOME/sensor_state/circuit_breakers`.
    :param clock: Returns the time, in seconds, that `recovery_timeout` is measured on.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        recovery_timeout: int = 300,
        *,
        condition: Condition | None = None,
        state_dir: str | None = None,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if failure_threshold < 1 or recovery_timeout < 0:
            raise ValueError("failure_threshold must be >= 1 and recovery_timeout >= 0")
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.condition = condition
        self.state_dir = state_dir
        self.clock = clock

    def check_condition(self) -> bool:
        """Override in a subclass, or pass `condition=`."""
        if self.condition is None:
            raise NotImplementedError("give CircuitBreakerSensor a condition= or override check_condition()")
        return bool(self.condition())

    def state_path(self, context: Context) -> Path:
        ti = context["ti"]
        key = f"{ti.dag_id}__{ti.task_id}__{ti.run_id}__{ti.map_index}"
        folder = Path(self.state_dir) if self.state_dir else default_state_dir() / "circuit_breakers"
        return folder / (re.sub(r"[^A-Za-z0-9_.-]", "_", key) + ".json")

    def load_state(self, context: Context) -> JsonDict:
        fresh = {"state": "closed", "failure_count": 0, "opened_at": None, "checks": 0, "errors": 0,
                 "total_duration": 0.0, "last_error": None}
        path = self.state_path(context)
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return fresh
        except (OSError, ValueError) as exc:
            self.log.warning("Circuit breaker state %s unreadable (%s); starting closed", path, exc)
            return fresh
        return {**fresh, **stored} if isinstance(stored, dict) else fresh

    def poke(self, context: Context) -> bool | PokeReturnValue:
        path = self.state_path(context)
        state = self.load_state(context)
        now = self.clock()
        if state["state"] == "open":
            waited = now - state["opened_at"]
            if waited < self.recovery_timeout:
                self.log.warning("Circuit open after %d errors; skipping the check (trial in %.0f s)",
                                 state["failure_count"], self.recovery_timeout - waited)
                return False
            state["state"] = "half_open"
            self.log.info("Circuit half-open: one trial check after %.0f s", waited)

        started = time.monotonic()
        try:
            result = self.check_condition()
        except AirflowException:
            raise  # fail/skip decisions made by the check itself
        except Exception as exc:
            self._record(state, time.monotonic() - started, error=exc, now=now)
            _atomic_write_json(path, state)
            return False
        self._record(state, time.monotonic() - started, error=None, now=now)
        if result:
            path.unlink(missing_ok=True)
            return PokeReturnValue(is_done=True, xcom_value=state)
        _atomic_write_json(path, state)
        return False

    def _record(self, state: JsonDict, duration: float, *, error: Exception | None, now: float) -> None:
        state["checks"] += 1
        state["total_duration"] = round(state["total_duration"] + duration, 6)
        if error is None:
            if state["state"] != "closed":
                self.log.info("Circuit closed: the check answered again")
            state.update(state="closed", failure_count=0, opened_at=None)
            return
        state["errors"] += 1
        state["failure_count"] += 1
        state["last_error"] = f"{type(error).__name__}: {error}"
        self.log.warning("Check failed (%d in a row): %s", state["failure_count"], state["last_error"])
        if state["state"] == "half_open" or state["failure_count"] >= self.failure_threshold:
            state.update(state="open", opened_at=now)
            self.log.error("Circuit opened after %d consecutive errors; next trial in %s s",
                           state["failure_count"], self.recovery_timeout)
