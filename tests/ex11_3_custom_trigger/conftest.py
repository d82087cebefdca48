"""Fixtures of Exercise 11.3: the exercise module of the target, a landing zone for files, fixtures that
watch the trigger where it runs (its aiohttp sessions, its output, the start of its run()), and the real
Airflow deployment for the e2e tests (one triggerer; the failover test starts a second one)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from fixtures.atomic import atomic_write_text
from fixtures.clock import SimClock
from fixtures.health_server import HealthServer
from tests.harness.airflow_processes import airflow_processes  # noqa: F401  (the e2e fixture)
from tests.harness.infrastructure import scaled
from tests.harness.output import learner_log  # noqa: F401  (what the trigger printed and logged)
from tests.harness.remote import SubjectGone
from tests.harness.resources import sessions  # noqa: F401  (the aiohttp sessions the trigger made)


@pytest.fixture(scope="session")
def custom_trigger(target) -> ModuleType:
    """The target's `custom_trigger` module (starters/ or solutions/)."""
    return target.module("custom_trigger")


# ---- the landing zone: an upstream system dropping files ----------------------------------------------
class LandingZone:
    """A directory an upstream system drops CSV files into. Finished files are written atomically (a
    hidden temp file renamed into place); `drop_partial` leaves what an upload in progress looks like."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._threads: list[threading.Thread] = []

    def pattern(self, glob: str = "*.csv") -> str:
        return str(self.root / glob)

    def drop(self, name: str, rows: int = 3) -> Path:
        lines = ["id,amount"] + [f"{i},{i * 10}" for i in range(1, rows + 1)]
        return atomic_write_text(self.root / name, "\n".join(lines) + "\n")

    def drop_partial(self, name: str) -> Path:
        """An upload in progress: a hidden file that becomes `name` when it is complete."""
        path = self.root / f".{name}"
        path.write_text("id,amount\n1,")
        return path

    def drop_when(self, signal: threading.Event, names: Iterable[str], timeout: float = 60.0,
                  or_after: float | None = None) -> None:
        """Drop `names` from a background thread as soon as `signal` is set (e.g. a trigger started); with
        `or_after`, also when it is not set after that many seconds (code that never signals still finishes)."""
        def work() -> None:
            if signal.wait(timeout if or_after is None else or_after) or or_after is not None:
                for name in names:
                    self.drop(name)

        thread = threading.Thread(target=work, name="landing-zone", daemon=True)
        thread.start()
        self._threads.append(thread)

    def close(self) -> None:
        for thread in self._threads:
            thread.join(timeout=5)


@pytest.fixture
def landing_zone(tmp_path: Path) -> Iterator[LandingZone]:
    zone = LandingZone(tmp_path / "landing")
    yield zone
    zone.close()


# ---- watching the trigger where it runs: the start of its run() ---------------------------------------
@pytest.fixture
def run_started() -> Iterator[Callable[[type], Any]]:
    """`run_started(TriggerClass)`: an event set when a run() of that class starts (undone after the test)."""
    # Imported here: a conftest loads before the session configures Airflow, and the probes import Airflow.
    from tests.ex11_3_custom_trigger.probes import signal_run_start

    made: list[Any] = []

    def observe(trigger_class: type) -> Any:
        made.append(signal_run_start(trigger_class))
        return made[-1]

    yield observe
    for observed in reversed(made):
        with contextlib.suppress(SubjectGone):
            observed.undo()


async def wait_until(condition: Callable[[], bool], what: str, task: asyncio.Task | None = None,
                     within: float = 10.0) -> None:
    """Yield to the loop until `condition()` holds (a state to reach, not a delay to sit out). If `task`
    (the trigger under test) ends first, its result or exception is raised at once."""
    try:
        async with asyncio.timeout(within):
            while not condition():
                if task is not None and task.done():
                    raise AssertionError(f"run() ended before {what}: {task.result()!r}")
                await asyncio.sleep(0.005)
    except TimeoutError:
        raise AssertionError(f"{what}: not within {within:g} s") from None


# ---- the e2e deployment ---------------------------------------------------------------------------------
FAILOVER_THRESHOLD = 8  # seconds on an idle machine (scaled): [triggerer] triggerer_health_check_threshold


@pytest.fixture(scope="module")
def e2e_health_server() -> Iterator[HealthServer]:
    """The health server the real triggerer polls: pinned to maintenance until the test flips it."""
    with HealthServer(clock=SimClock(time_scale=0)) as server:
        server.force("maintenance")
        yield server


@pytest.fixture(scope="module")
def airflow_extra_env(custom_trigger: ModuleType, e2e_health_server: HealthServer) -> dict[str, str]:
    """What the DAG files read, for every Airflow process. First, in this process, the parts of the module
    the e2e run needs: an unimplemented starter fails here in seconds, before any process starts."""
    e2e_health_server.force("healthy")
    try:
        trigger = custom_trigger.HttpPollingTrigger(e2e_health_server.health_url, expected_value="healthy", poll_interval=1)
        trigger.serialize()
        asyncio.run(anext(trigger.run()))
        custom_trigger.HttpPollingOperator(task_id="check", endpoint=e2e_health_server.health_url,
                                           expected_value="healthy").execute_complete({}, {"status": "success"})
    finally:
        e2e_health_server.force("maintenance")
    return {
        "WORKBOOK_HEALTH_URL": e2e_health_server.health_url,
        "WORKBOOK_POLL_INTERVAL": "1",
        # A triggerer whose heartbeat (every 1 s here) is older than this is dead: its triggers move to
        # another (default 30 s). Not much lower: a live but starved triggerer would lose its triggers too.
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(round(scaled(FAILOVER_THRESHOLD))),
    }
