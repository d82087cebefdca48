"""Fixtures of Exercise 4: the order database, the ML data sources, the module under test, log capture.

The flapping health server and the frozen `sim_clock` come from `fixtures.pytest_plugin`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from fixtures.clock import SimClock
from fixtures.ml_data import MLDataSources
from fixtures.order_db import OrderDB
from tests.harness.logs import captured_logs


@pytest.fixture(scope="session")
def custom_sensors(target) -> ModuleType:
    """The exercise module of the side under test (`starters.custom_sensors` or `solutions.custom_sensors`)."""
    return target.module("custom_sensors")


@pytest.fixture
def order_db(tmp_path: Path, sim_clock: SimClock) -> Iterator[OrderDB]:
    """The seed's orders in `tmp_path/db/orders.json` (a JSON list); time moves with `order_db.advance()`."""
    db = OrderDB(tmp_path / "db", clock=sim_clock)
    yield db
    db.stop()


@pytest.fixture
def ml_data(tmp_path: Path, sim_clock: SimClock) -> Iterator[MLDataSources]:
    """The three ML feeds under `tmp_path/ml-data`, catalog API on a free port; time moves with `advance()`."""
    with MLDataSources(tmp_path / "ml-data", clock=sim_clock) as sources:
        yield sources


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "sensor-state"


def _line(event: dict) -> str:
    fields = " ".join(f"{key}={value}" for key, value in event.items() if key not in ("event", "log_level"))
    return f"{event.get('event', '')} {fields}".rstrip()


class SensorLog:
    """What a sensor logged through `self.log` during the test (Airflow 3 task loggers are structlog)."""

    def __init__(self, events: list[dict]) -> None:
        self.events = events

    @property
    def messages(self) -> list[str]:
        """Each line as the task log shows it: the message, then any structured fields as key=value."""
        return [_line(e) for e in self.events]

    @property
    def text(self) -> str:
        return "\n".join(self.messages)

    def at_least(self, level: str) -> list[str]:
        """Messages at `level` ("warning", "error", ...) or above."""
        order = ["debug", "info", "warning", "error", "critical"]
        floor = order.index(level)
        return [_line(e) for e in self.events
                if e.get("log_level") in order and order.index(e["log_level"]) >= floor]

    def clear(self) -> None:
        self.events.clear()


@pytest.fixture
def sensor_log() -> Iterator[SensorLog]:
    with captured_logs() as events:
        yield SensorLog(events)
