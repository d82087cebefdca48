"""Fixtures of Exercise 11.4: the module under test, the fake vector store on a free port, and what the
trigger printed, logged and opened (observed where it runs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from fixtures.clock import SimClock
from fixtures.vector_store import VectorStore
from tests.harness.output import learner_log  # noqa: F401  (what the code under test printed and logged)
from tests.harness.resources import sessions  # noqa: F401  (the aiohttp sessions the trigger made)

MODULE = "vector_store_sensor"


@pytest.fixture(scope="session")
def vector_store_sensor(target) -> ModuleType:
    """`starters.vector_store_sensor` or `solutions.vector_store_sensor`."""
    return target.module(MODULE)


@pytest.fixture
def make_store() -> Iterator[Callable[..., VectorStore]]:
    """`make_store(backend="qdrant", index_rate=50, time_scale=0)`: a started store on a free port, stopped
    after the test. `time_scale=0` freezes indexing until the test calls `store.clock.advance()`."""
    started: list[VectorStore] = []

    def make(backend: str = "qdrant", *, index_rate: float = 50.0, time_scale: float = 0.0) -> VectorStore:
        store = VectorStore(backend=backend, clock=SimClock(time_scale=time_scale), index_rate=index_rate)
        started.append(store.start())
        return store

    yield make
    for store in started:
        store.stop()


@pytest.fixture(params=["qdrant", "chroma"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param
