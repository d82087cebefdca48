"""Exercise 4, Custom Sensors: wait well on systems you do not control.

Read exercises/ex04_custom_sensors.md first. You build:

- `OrderStatusSensor` (Task 1): waits for an order to reach a status in a JSON or SQLite order database;
- `APIHealthSensor` (Task 2): waits for a health endpoint to answer the right status and body;
- `MultiSourceReadinessSensor` and three condition factories (Task 3): waits for several feeds at once;
- `AdaptiveFileSensor` (Task 4): waits for a file, learning how often to look;
- `CircuitBreakerSensor` (Task 5): stops hammering a broken system, and remembers it across reschedules.

The constructors are done (they store their arguments, so the DAG files parse); every method that raises
`todo(...)` is yours. Airflow 3 imports only: `airflow.sdk` and `airflow.sdk.exceptions`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection
from datetime import date
from pathlib import Path
from typing import Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue

from starters._todo import todo

JsonDict = dict[str, Any]
Condition = Callable[[], bool]


def default_state_dir() -> Path:
    """Where sensors keep state that must outlive one poke: `$AIRFLOW_HOME/sensor_state` (given)."""
    return Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "sensor_state"


# ---- Task 1 ------------------------------------------------------------------------------------------
class OrderStatusSensor(BaseSensorOperator):
    """Wait until order `order_id` has `expected_status`; return the order record as XCom.

    `db_path` is a folder holding `orders.json`, a `.json` file (a list of orders or
    `{"orders": [...]}`), or a SQLite file (`.sqlite`/`.db`, table `orders`; open it read-only with
    `sqlite_lock_timeout` as the busy timeout).

    - done: `PokeReturnValue(is_done=True, xcom_value=<the order dict>)`;
    - a missing, half-written, corrupt, unreadable or locked database: log a warning, return False;
    - an order that is not there: log a warning naming it, return False;
    - an order in one of `terminal_statuses` that is not `expected_status`: raise AirflowFailException;
    - every poke that read the order logs its id, the status seen and `attempt N`.
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

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Check if the order has reached the expected status."""
        raise todo("4", 1, "implement OrderStatusSensor.poke", "ex04_custom_sensors.md#task-1")


# ---- Task 2 ------------------------------------------------------------------------------------------
class APIHealthSensor(BaseSensorOperator):
    """Wait until `endpoint_url` answers `expected_status` with a JSON object containing `expected_response`
    (extra keys such as `timestamp` are fine).

    - auth: `headers`, `bearer_token`, `basic_auth=(user, password)` or `conn_id` (an Airflow Connection:
      login + password means basic auth, a password alone is a bearer token); at most one of the last three;
    - a connection error is retried inside the poke: `connect_retries` more times, waiting
      `retry_backoff`, then twice that, ... at most `max_retry_backoff` (use `time.sleep`);
    - `request_timeout` bounds each request; a timeout, a 5xx, 408 or 429 means "not yet" (False);
    - 401/403/404, other 4xx, a malformed `endpoint_url` or an unknown `conn_id`: AirflowFailException;
    - log the status, the latency in ms and the body; never a credential.
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
        """Check API health status; done: `PokeReturnValue(True, {"status_code", "body", "latency_ms"})`."""
        raise todo("4", 2, "implement APIHealthSensor.poke", "ex04_custom_sensors.md#task-2")


# ---- Task 3 ------------------------------------------------------------------------------------------
class MultiSourceReadinessSensor(BaseSensorOperator):
    """Wait for all (`require_all=True`) or any of `conditions`, zero-argument callables by name.

    - each poke checks every condition still in play and logs one line per condition with its status:
      "ready", "waiting", "error" (it raised: not ready, warning logged, `last_error` kept) or "timed_out";
    - `condition_timeouts[name]` (seconds since the first poke): in all-mode a condition past it fails the
      sensor naming it; in any-mode it is dropped (never checked again) and the sensor fails once every
      condition is out (raise AirflowSensorTimeout);
    - done: `PokeReturnValue(True, <condition_status>)`.
    """

    def __init__(
        self,
        conditions: dict[str, Callable],
        require_all: bool = True,
        condition_timeouts: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conditions = dict(conditions)
        self.require_all = require_all
        self.condition_timeouts = dict(condition_timeouts or {})

    @property
    def condition_status(self) -> dict[str, JsonDict]:
        """`{name: {"status", "checks", "last_error", "first_ready_at" (ISO time or None)}}`."""
        raise todo("4", 3, "implement MultiSourceReadinessSensor.condition_status", "ex04_custom_sensors.md#task-3")

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Check multiple readiness conditions."""
        raise todo("4", 3, "implement MultiSourceReadinessSensor.poke", "ex04_custom_sensors.md#task-3")


def _not_started(*todo_args: object) -> Condition:
    """What a factory returns until you write it: a condition that raises the todo when it is checked.
    (The DAG file calls the factories when it is parsed; raising there would break every DAG run.)"""
    def condition() -> bool:
        raise todo(*todo_args)

    return condition


def behavior_logs_fresh(folder: str | os.PathLike[str], max_age_minutes: float = 60,
                        pattern: str = "*.log") -> Condition:
    """A condition: `folder` holds a file matching `pattern` modified in the last `max_age_minutes`
    (False while the folder does not exist)."""
    return _not_started("4", 3, "implement behavior_logs_fresh", "ex04_custom_sensors.md#task-3")


def catalog_version_above(url: str, min_version: int = 100, timeout: float = 10.0) -> Condition:
    """A condition: `GET url` answers `{"version": N}` with N > `min_version` (errors raise)."""
    return _not_started("4", 3, "implement catalog_version_above", "ex04_custom_sensors.md#task-3")


def inventory_snapshot_today(path: str | os.PathLike[str],
                             today: Callable[[], date] | None = None) -> Condition:
    """A condition: the JSON file at `path` has `"date"` equal to today (UTC unless `today` says)."""
    return _not_started("4", 3, "implement inventory_snapshot_today", "ex04_custom_sensors.md#task-3")


# ---- Task 4 ------------------------------------------------------------------------------------------
class AdaptiveFileSensor(BaseSensorOperator):
    """Wait for `filepath`, adapting the poll interval to how this file's arrivals went before.

    - every poke records (success, duration) in a JSON history file (`history_path`, default
      `default_state_dir() / "adaptive_history.json"`) keyed by the watched path, kept to the last
      `history_size` attempts, written atomically; a corrupt file is reset with a warning;
    - `calculate_adaptive_interval()`: success rate of the last `history_size` attempts above 80 %:
      current interval + 50 %; below 30 %: - 30 %; clamped to [min_interval, max_interval];
    - a manual override (`override_interval`, or the run conf key `poll_interval_override`) wins;
    - the interval computed is the one Airflow waits, in poke and reschedule mode;
    - done: `PokeReturnValue(True, metrics())`.
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
        self.filepath = filepath
        self.initial_interval = initial_interval
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.history_size = history_size
        self.history_path = history_path
        self.override_interval = override_interval

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Check file existence with adaptive polling."""
        raise todo("4", 4, "implement AdaptiveFileSensor.poke", "ex04_custom_sensors.md#task-4")

    def calculate_adaptive_interval(self) -> float:
        """Calculate the next polling interval (seconds) from the history."""
        raise todo("4", 4, "implement AdaptiveFileSensor.calculate_adaptive_interval",
                   "ex04_custom_sensors.md#task-4")

    def record_attempt(self, success: bool, duration: float) -> None:
        """Record a polling attempt for learning."""
        raise todo("4", 4, "implement AdaptiveFileSensor.record_attempt", "ex04_custom_sensors.md#task-4")

    def history(self) -> list[JsonDict]:
        """The recorded attempts for this path, oldest first: `[{"success", "duration", "at"}, ...]`."""
        raise todo("4", 4, "implement AdaptiveFileSensor.history", "ex04_custom_sensors.md#task-4")

    def metrics(self) -> JsonDict:
        """`{"attempts", "success_rate", "mean_duration", "current_interval"}` for this path."""
        raise todo("4", 4, "implement AdaptiveFileSensor.metrics", "ex04_custom_sensors.md#task-4")


# ---- Task 5 ------------------------------------------------------------------------------------------
class CircuitBreakerSensor(BaseSensorOperator):
    """Poke `check_condition()` behind a circuit breaker whose state survives reschedule mode.

    - closed: run the check; an error is logged and counted (the poke returns False); an answer resets
      the count; `failure_threshold` consecutive errors open the circuit;
    - open: skip the check and return False until `recovery_timeout` seconds (by `clock()`) have passed;
    - half-open: one trial check; an answer closes the circuit, an error opens it again at once;
    - the state lives in a JSON file under `state_dir` (default `default_state_dir() / "circuit_breakers"`),
      one per dag, task, run and map index, written atomically; never on `self` alone.
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
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.condition = condition
        self.state_dir = state_dir
        self.clock = clock

    def check_condition(self) -> bool:
        """Override in a subclass, or pass `condition=`."""
        raise todo("4", 5, "implement CircuitBreakerSensor.check_condition", "ex04_custom_sensors.md#task-5")

    def state_path(self, context: Context) -> Path:
        """The state file of this task run (dag, task, run id, map index)."""
        raise todo("4", 5, "implement CircuitBreakerSensor.state_path", "ex04_custom_sensors.md#task-5")

    def load_state(self, context: Context) -> JsonDict:
        """The stored state, or a closed circuit when there is none (or it is unreadable)."""
        raise todo("4", 5, "implement CircuitBreakerSensor.load_state", "ex04_custom_sensors.md#task-5")

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Check the condition unless the circuit is open."""
        raise todo("4", 5, "implement CircuitBreakerSensor.poke", "ex04_custom_sensors.md#task-5")
