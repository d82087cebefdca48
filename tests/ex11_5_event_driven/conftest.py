"""Fixtures of Exercise 11.5: the target's module, the simulators (landing zone, queue, webhook sender), a
stand-in for Airflow's REST API that the webhook receiver talks to, and helpers to drive event triggers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from aiohttp import web

from fixtures.clock import SimClock
from fixtures.http import BackgroundServer
from fixtures.landing_zone import LandingZone
from fixtures.queue_sim import QueueSimulator
from fixtures.webhook_sender import WebhookSender
from tests.ex11_5_event_driven.probes import start_server
from tests.harness.output import learner_log  # noqa: F401  (what the learner's code printed and logged)
from tests.harness.remote import subject_module

SECRET = "my-shared-secret"
TOKEN = "workbook-test-token-7f3a"
ASSET_URI = "s3://landing/bronze/sales"


@pytest.fixture(scope="session")
def event_driven(target) -> ModuleType:
    """The target's `event_driven` module (starters/ or solutions/)."""
    return target.module("event_driven")


@pytest.fixture
def landing(tmp_path: Path) -> Iterator[LandingZone]:
    zone = LandingZone(tmp_path / "landing" / "bronze" / "sales", clock=SimClock(time_scale=0))
    yield zone
    zone.stop()


@pytest.fixture
def queue_sim() -> Iterator[QueueSimulator]:
    with QueueSimulator(clock=SimClock(time_scale=0), arrival_rate=0) as server:
        yield server


@contextlib.contextmanager
def raises_learners(exception_class: Any) -> Generator[None, None, None]:
    """`pytest.raises` for an exception class of the learner's module: in a graded run that class lives in the
    subject, and what its code raised comes back as a stand-in that `isinstance` recognises by the class."""
    try:
        yield
    except BaseException as error:
        if isinstance(error, exception_class):
            return
        raise
    pytest.fail(f"DID NOT RAISE {exception_class!r}")


# ---- driving an event trigger -------------------------------------------------------------------------
async def take_events(trigger: Any, count: int, within: float = 5.0, settle: float = 0.0) -> list[Any]:
    """The payloads of the trigger's first `count` events; with `settle`, keep running that long afterwards
    and fail if more arrive. The generator is closed afterwards, as the triggerer does."""
    payloads: list[Any] = []
    agen = trigger.run()
    try:
        async with asyncio.timeout(within):
            while len(payloads) < count:
                payloads.append((await anext(agen)).payload)
        if settle:
            try:
                async with asyncio.timeout(settle):
                    extra = (await anext(agen)).payload
                raise AssertionError(f"expected {count} event(s), got another one: {extra!r} (after {payloads!r})")
            except TimeoutError:
                pass
    except TimeoutError:
        raise AssertionError(f"expected {count} event(s) within {within:g} s, got {len(payloads)}: {payloads!r}") \
            from None
    finally:
        await agen.aclose()
    return payloads


async def no_event(trigger: Any, within: float) -> None:
    await take_events(trigger, 0, settle=within)


# ---- a stand-in for Airflow's REST API -----------------------------------------------------------------
@dataclass
class FakeAirflow(BackgroundServer):
    """Answers `GET /api/v2/assets`, `POST /api/v2/assets/events` and `POST /api/v2/dags/{id}/dagRuns` like
    Airflow does, records every request, and can fail the next `fail_next` requests with `fail_status`
    (503 unless told), or drop the connection of the next `drop_next` requests without an answer. With
    `decoys`, that many other assets are listed before the real one, `limit` (50, Airflow's default) a page."""

    token: str = TOKEN
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0
    fail_status: int = 503
    drop_next: int = 0
    decoys: int = 0

    def __post_init__(self) -> None:
        super().__init__(self._make_app)
        self._lock = threading.Lock()

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        """The successful POSTs: asset events and DAG runs created."""
        return [r for r in self.requests if r["method"] == "POST" and r["status"] < 300]

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.text()
        with self._lock:
            drop = self.drop_next > 0
            self.drop_next -= drop
        if drop:  # the api-server goes away mid-request: the client sees the connection closed, no answer
            with self._lock:
                self.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                                      "auth": request.headers.get("Authorization"), "json": None, "status": 0,
                                      "at": time.time()})
            request.transport.close()
            return web.Response(status=500)
        status, answer = self._answer(request, body)
        with self._lock:
            self.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                                  "auth": request.headers.get("Authorization"),
                                  "json": json.loads(body) if body else None, "status": status,
                                  "at": time.time()})
        return web.json_response(answer, status=status)

    def _answer(self, request: web.Request, body: str) -> tuple[int, Any]:
        with self._lock:
            if self.fail_next > 0:
                self.fail_next -= 1
                return self.fail_status, {"detail": f"failed on purpose with HTTP {self.fail_status}"}
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {"detail": "Not authenticated"}
        if request.method == "GET" and request.path == "/api/v2/assets":
            assets = [*({"id": 100 + i, "name": f"other_{i}", "uri": f"s3://other/{i:03d}"} for i in range(self.decoys)),
                      {"id": 7, "name": "bronze_sales", "uri": ASSET_URI}]
            pattern = request.query.get("uri_pattern", "")
            matching = [a for a in assets if pattern in a["uri"]]
            offset, limit = int(request.query.get("offset", 0)), int(request.query.get("limit", 50))
            return 200, {"assets": matching[offset:offset + limit], "total_entries": len(matching)}
        if request.method == "POST" and request.path == "/api/v2/assets/events":
            data = json.loads(body)
            if data.get("asset_id") != 7:
                return 404, {"detail": f"Asset with ID: `{data.get('asset_id')}` was not found"}
            return 200, {"id": len(self.requests) + 1, "asset_id": 7, "extra": {**data.get("extra", {}),
                                                                                   "from_rest_api": True}}
        if request.method == "POST" and request.path.startswith("/api/v2/dags/") and request.path.endswith("/dagRuns"):
            data = json.loads(body)
            if "logical_date" not in data:
                return 422, {"detail": "logical_date: Field required"}
            return 200, {"dag_run_id": f"manual__{len(self.requests)}", "conf": data.get("conf")}
        return 404, {"detail": "Not Found"}


@pytest.fixture
def fake_airflow() -> Iterator[FakeAirflow]:
    with FakeAirflow() as server:
        yield server


@dataclass
class RunningReceiver:
    receiver: Any
    server: Any  # the learner's app's BackgroundServer (in a graded run, a reference to the subject's)
    sender: WebhookSender

    def wait_for(self, condition: Callable[[], bool], what: str, within: float = 5.0) -> None:
        import time

        deadline = time.monotonic() + within
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {within:g} s")
            time.sleep(0.01)


@pytest.fixture
def webhook(event_driven: ModuleType, fake_airflow: FakeAirflow) -> Iterator[Callable[..., RunningReceiver]]:
    """`webhook(**overrides)` starts the target's WebhookReceiver (asset target, fast retries) on a free
    port in front of `fake_airflow`, with a signing sender for its endpoint."""
    servers: list[Any] = []

    def start(**overrides: Any) -> RunningReceiver:
        options = {"secret": SECRET, "airflow_url": fake_airflow.url, "airflow_token": TOKEN,
                   "asset_uri": ASSET_URI, "retry_delays": (0.01, 0.02, 0.04), "max_body_bytes": 64 * 1024,
                   **overrides}
        receiver = event_driven.WebhookReceiver(**options)
        server = start_server(receiver.make_app)  # beside the learner's code: the judge only sends requests
        servers.append(server)
        sender = WebhookSender(f"{server.url}{receiver.path}", SECRET)
        return RunningReceiver(receiver, server, sender)

    yield start
    for server in servers:
        server.stop()


def is_queue_context(context: Any, queue_url: str, depth: int) -> bool:
    """`{"queue", "depth"}` naming the queue by its name (the simulator's is "orders") or by its URL: the
    chapter fixes the keys, not which of the two identifies the queue."""
    return (isinstance(context, dict) and set(context) == {"queue", "depth"} and context["depth"] == depth
            and context["queue"] in ("orders", queue_url, queue_url.rstrip("/")))


def assets_in(condition: Any) -> list[Any]:
    """The Asset objects of a DAG's asset condition (Asset, AssetAll/AssetAny nested), in order."""
    Asset = subject_module("airflow.sdk").Asset  # noqa: N806 (the class the DAG's objects are instances of)
    if isinstance(condition, Asset):
        return [condition]
    return [asset for part in getattr(condition, "objects", ()) for asset in assets_in(part)]


# ---- the e2e deployment ---------------------------------------------------------------------------------
from tests.harness.airflow_processes import airflow_processes  # noqa: E402, F401  (the e2e fixture)


@pytest.fixture(scope="module")
def e2e_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("ex11_5-e2e")
    dirs = {"landing": root / "landing" / "bronze" / "sales", "state": root / "state", "inbox": root / "inbox"}
    dirs["landing"].mkdir(parents=True)
    return dirs


@pytest.fixture(scope="module")
def watcher_ready(event_driven: ModuleType, e2e_dirs: dict[str, Path]) -> None:
    """Task 1's part of the module, checked in this process before the deployment starts: an unstarted
    starter fails here in seconds. (Each e2e test asks for its own task's check only.)"""
    url = e2e_dirs["landing"].as_uri() + "/"
    event_driven.NewObjectTrigger(prefix=url, pattern="*.csv", state_path=str(e2e_dirs["state"] / "probe.json")).serialize()
    event_driven.list_objects(url, "*.csv")


@pytest.fixture(scope="module")
def receiver_ready(event_driven: ModuleType) -> None:
    """Task 2's part of the module, checked before the deployment starts."""
    event_driven.verify_signature(b"{}", event_driven.sign(b"{}", SECRET), SECRET)


@pytest.fixture(scope="module")
def airflow_extra_env(e2e_dirs: dict[str, Path]) -> dict[str, str]:
    """What the DAG files read, for every Airflow process."""
    e2e_dirs["landing"].mkdir(parents=True, exist_ok=True)
    url = e2e_dirs["landing"].as_uri() + "/"
    return {"WORKBOOK_LANDING_URL": url, "WORKBOOK_WATCHER_STATE": str(e2e_dirs["state"] / "landing.json"),
            "WORKBOOK_POLL_INTERVAL": "1", "WORKBOOK_BRONZE_ASSET_URI": ASSET_URI,
            "WORKBOOK_INBOX_DIR": str(e2e_dirs["inbox"]), "WORKBOOK_AUDIT_DB": str(e2e_dirs["state"] / "audit.sqlite")}
