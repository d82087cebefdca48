"""Exercise 11.4 (your starter): wait for a vector store to finish indexing, then prove it answers.

Read exercises/ex11_4_vector_store_sensor.md. The plumbing is given (errors, `IndexStatus`, request builders,
the sync and async transports, `ingest_documents`, `query_collection`); every `raise todo(...)` is yours.

- `QdrantBackend`, `ChromaBackend`: one adapter per API dialect; each turns its store's own status fields
  into one `IndexStatus` (`indexing` / `ready` / `failed`, counts, dimension, reason).
- `VectorStoreIndexTrigger`: polls the status from the triggerer's event loop (aiohttp) until the index is
  ready with the expected documents, the build fails, or the time is up; exactly one event.
- `VectorStoreSensor`: checks the collection exists, returns at once if it is already ready, else defers to
  the trigger (or, with `deferrable=False`, pokes in the worker with the same rules).
- `validate_index_health`: the index answers a test query, holds the expected documents, has the
  embedding model's dimension; returns its statistics.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, ClassVar, Literal

import aiohttp
import requests
from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.triggers.base import BaseTrigger, TriggerEvent

from starters._todo import todo

# You will also want: asyncio, time (time.monotonic), and from airflow.sdk.exceptions AirflowException,
# AirflowFailException, AirflowSensorTimeout.

DEFAULT_URL = "http://127.0.0.1:8086"  # `python -m fixtures vector-store`
EMBEDDING_DIMENSION = 384  # what the store's embedding model produces
REQUEST_TIMEOUT = 10.0  # seconds for one HTTP call
# The trigger reports its own, detailed timeout; Airflow's deferral timeout is only the backstop for a
# triggerer that died, so it must not win the race against the trigger.
DEFERRAL_GRACE = timedelta(seconds=60)
HEALTH_QUERY = "How does a sensor wait for a condition?"

IndexState = Literal["indexing", "ready", "failed"]


class VectorStoreError(Exception):
    """The store refused a request (a 4xx other than 404): retrying the same request will not help."""


class CollectionNotFound(VectorStoreError):
    pass


class TransientStoreError(VectorStoreError):
    """Unreachable, too slow, or a 429/5xx answer: worth asking again."""


@dataclass(frozen=True)
class IndexStatus:
    collection: str
    state: IndexState
    document_count: int
    indexed_count: int
    dimension: int
    reason: str | None = None

    @property
    def percent(self) -> float:
        return 100.0 * self.indexed_count / self.document_count if self.document_count else 100.0

    def describe(self) -> str:
        """`indexing, 12/40 documents indexed (30%)`, plus the reason of a failure."""
        text = f"{self.state}, {self.indexed_count}/{self.document_count} documents indexed ({self.percent:.0f}%)"
        return f"{text}: {self.reason}" if self.reason else text

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "percent": round(self.percent, 1)}


@dataclass(frozen=True)
class ApiRequest:
    method: str
    path: str
    body: Any = None


# ---- one adapter per API dialect ----------------------------------------------------------------------
class Backend(ABC):
    """What differs between vector stores: paths, request shapes, status fields, error bodies."""

    name: ClassVar[str]

    @abstractmethod
    def status_request(self, collection: str) -> ApiRequest: ...

    @abstractmethod
    def parse_status(self, collection: str, body: Any) -> IndexStatus: ...

    @abstractmethod
    def create_request(self, collection: str, dimension: int) -> ApiRequest: ...

    @abstractmethod
    def upsert_request(self, collection: str, documents: list[dict[str, Any]]) -> ApiRequest: ...

    @abstractmethod
    def query_request(self, collection: str, text: str, k: int) -> ApiRequest: ...

    @abstractmethod
    def parse_query(self, body: Any) -> list[dict[str, Any]]:
        """Hits as `{"id", "score", "payload"}`, best first (higher score is more similar)."""

    @abstractmethod
    def error_message(self, body: Any) -> str: ...


class QdrantBackend(Backend):
    """Qdrant's shape: `result.status` green/yellow/red, `optimizer_status.error` says why it is red."""

    name = "qdrant"
    _STATES: ClassVar[dict[str, IndexState]] = {"green": "ready", "yellow": "indexing", "grey": "indexing",
                                                "red": "failed"}

    def status_request(self, collection: str) -> ApiRequest:
        return ApiRequest("GET", f"/collections/{collection}")

    def parse_status(self, collection: str, body: Any) -> IndexStatus:
        """Map `{"result": {"status": "green"|"yellow"|"grey"|"red", "optimizer_status": "ok"|{"error": ...},
        "points_count", "indexed_vectors_count", "config": {"params": {"vectors": {"size"}}}}}` (see `_STATES`)."""
        raise todo("11.4", 1, "implement QdrantBackend.parse_status", "ex11_4_vector_store_sensor.md#task-1")

    def create_request(self, collection: str, dimension: int) -> ApiRequest:
        return ApiRequest("PUT", f"/collections/{collection}", {"vectors": {"size": dimension, "distance": "Cosine"}})

    def upsert_request(self, collection: str, documents: list[dict[str, Any]]) -> ApiRequest:
        points = [{"id": d["id"], "text": d["text"], "payload": _payload(d) | {"text": d["text"]}} for d in documents]
        return ApiRequest("PUT", f"/collections/{collection}/points", {"points": points})

    def query_request(self, collection: str, text: str, k: int) -> ApiRequest:
        return ApiRequest("POST", f"/collections/{collection}/points/query", {"query": {"text": text}, "limit": k})

    def parse_query(self, body: Any) -> list[dict[str, Any]]:
        return [{"id": p["id"], "score": p["score"], "payload": p.get("payload") or {}}
                for p in body["result"]["points"]]

    def error_message(self, body: Any) -> str:
        status = body.get("status") if isinstance(body, dict) else None
        return status.get("error", str(body)) if isinstance(status, dict) else str(body)


class ChromaBackend(Backend):
    """Chroma's shape: `index.state` building/complete/error, `count`, `index.indexed`, `index.error`."""

    name = "chroma"
    _STATES: ClassVar[dict[str, IndexState]] = {"building": "indexing", "complete": "ready", "error": "failed"}

    def status_request(self, collection: str) -> ApiRequest:
        return ApiRequest("GET", f"/api/v1/collections/{collection}")

    def parse_status(self, collection: str, body: Any) -> IndexStatus:
        """Map `{"count", "dimension", "index": {"state": "building"|"complete"|"error", "indexed", "error"}}`."""
        raise todo("11.4", 1, "implement ChromaBackend.parse_status", "ex11_4_vector_store_sensor.md#task-1")

    def create_request(self, collection: str, dimension: int) -> ApiRequest:
        body = {"name": collection, "dimension": dimension, "metadata": {"hnsw:space": "cosine"}}
        return ApiRequest("POST", "/api/v1/collections", body)

    def upsert_request(self, collection: str, documents: list[dict[str, Any]]) -> ApiRequest:
        body = {
            "ids": [d["id"] for d in documents],
            "documents": [d["text"] for d in documents],
            "metadatas": [_payload(d) for d in documents],
        }
        return ApiRequest("POST", f"/api/v1/collections/{collection}/upsert", body)

    def query_request(self, collection: str, text: str, k: int) -> ApiRequest:
        return ApiRequest("POST", f"/api/v1/collections/{collection}/query", {"query_texts": [text], "n_results": k})

    def parse_query(self, body: Any) -> list[dict[str, Any]]:
        # Chroma answers column-wise, one list per query, with distances (cosine distance = 1 - similarity).
        ids, distances = body["ids"][0], body["distances"][0]
        metadatas, documents = body["metadatas"][0], body["documents"][0]
        return [
            {"id": i, "score": 1.0 - d, "payload": (m or {}) | ({"text": t} if t is not None else {})}
            for i, d, m, t in zip(ids, distances, metadatas, documents, strict=True)
        ]

    def error_message(self, body: Any) -> str:
        return body.get("message", str(body)) if isinstance(body, dict) else str(body)


BACKENDS: dict[str, Backend] = {b.name: b for b in (QdrantBackend(), ChromaBackend())}


def get_backend(name: str) -> Backend:
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown vector store backend {name!r}: use one of {', '.join(BACKENDS)}") from None


def _payload(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k not in {"id", "text", "vector"}}


# ---- transport: sync for the worker, async for the triggerer --------------------------------------------
def _check_response(backend: Backend, collection: str, status: int, body: Any) -> Any:
    if status < 400:
        return body
    message = backend.error_message(body)
    if status == 404:
        raise CollectionNotFound(f"collection {collection!r} not found ({backend.name}: {message})")
    if status == 429 or status >= 500:
        raise TransientStoreError(f"{backend.name} answered {status}: {message}")
    raise VectorStoreError(f"{backend.name} refused the request ({status}): {message}")


def request_json(base_url: str, backend: Backend, collection: str, request: ApiRequest,
                 timeout: float = REQUEST_TIMEOUT) -> Any:
    """One blocking call (worker side: sensors in poke mode, tasks)."""
    try:
        response = requests.request(request.method, base_url.rstrip("/") + request.path, json=request.body,
                                    timeout=timeout)
        body = response.json() if response.content else None
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise TransientStoreError(f"{backend.name} store at {base_url} unreachable: {exc}") from exc
    except requests.JSONDecodeError:
        raise TransientStoreError(f"{backend.name} answered {response.status_code} without JSON") from None
    return _check_response(backend, collection, response.status_code, body)


async def async_request_json(session: aiohttp.ClientSession, base_url: str, backend: Backend, collection: str,
                             request: ApiRequest) -> Any:
    """One non-blocking call (triggerer side); the session's timeout bounds it."""
    try:
        async with session.request(request.method, base_url.rstrip("/") + request.path,
                                   json=request.body) as response:
            status = response.status
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise TransientStoreError(f"{backend.name} store at {base_url} did not answer: {exc!r}") from exc
    return _check_response(backend, collection, status, body)


def get_index_status(collection: str, *, backend: str = "qdrant", base_url: str = DEFAULT_URL) -> IndexStatus:
    adapter = get_backend(backend)
    body = request_json(base_url, adapter, collection, adapter.status_request(collection))
    return adapter.parse_status(collection, body)


def ingest_documents(collection: str, documents: list[dict[str, Any]], *, backend: str = "qdrant",
                     base_url: str = DEFAULT_URL, dimension: int = EMBEDDING_DIMENSION) -> int:
    """Create the collection if needed and upsert `documents` (`id`, `text`, anything else is payload);
    returns the number sent. Indexing goes on in the store's background afterwards."""
    adapter = get_backend(backend)
    try:
        request_json(base_url, adapter, collection, adapter.create_request(collection, dimension))
    except VectorStoreError as exc:
        if "already exists" not in str(exc):  # re-running the ingestion upserts into the same collection
            raise
    request_json(base_url, adapter, collection, adapter.upsert_request(collection, documents))
    return len(documents)


def query_collection(collection: str, text: str, k: int = 3, *, backend: str = "qdrant",
                     base_url: str = DEFAULT_URL) -> list[dict[str, Any]]:
    adapter = get_backend(backend)
    return adapter.parse_query(request_json(base_url, adapter, collection, adapter.query_request(collection, text, k)))


def _is_complete(status: IndexStatus, expected_count: int) -> bool:
    """True when the index is done: the trigger and the sensor must agree on this."""
    raise todo("11.4", 1, "decide when an index is complete (_is_complete)", "ex11_4_vector_store_sensor.md#task-1")


# ---- Task 1: the trigger ---------------------------------------------------------------------------------
class VectorStoreIndexTrigger(BaseTrigger):
    """Fires once: `success` (ready with at least `expected_count` documents), `error` (the index build
    failed, or the collection is gone, or the store refuses the request) or `timeout` (with the last status
    seen). Unreachable, slow or 5xx answers are polled again."""

    def __init__(
        self,
        collection_name: str,
        expected_count: int,
        backend: str = "qdrant",
        base_url: str = DEFAULT_URL,
        poll_interval: float = 30.0,
        timeout: float = 3600.0,
    ) -> None:
        super().__init__()
        get_backend(backend)  # an unknown backend fails in the worker, not later in the triggerer
        self.collection_name = collection_name
        self.expected_count = expected_count
        self.backend = backend
        self.base_url = base_url
        self.poll_interval = poll_interval
        self.timeout = timeout

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """(classpath derived from the class, every constructor argument)."""
        raise todo("11.4", 1, "implement VectorStoreIndexTrigger.serialize", "ex11_4_vector_store_sensor.md#task-1")

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the status with aiohttp (one session per run, closed on cancellation) until ready with
        `expected_count` documents, a failed build, or the monotonic deadline; log progress (indexed/total,
        percent, rate) at every poll; poll again after transient errors; yield exactly one event:
        `{"status": "success"|"error"|"timeout", "collection", "message", "document_count", "stats"}`."""
        raise todo("11.4", 1, "implement VectorStoreIndexTrigger.run", "ex11_4_vector_store_sensor.md#task-1")
        yield  # makes run() an async generator


# ---- Task 2: the sensor ----------------------------------------------------------------------------------
class VectorStoreSensor(BaseSensorOperator):
    """Waits until `collection_name` is indexed with at least `expected_count` documents; returns (XCom) the
    index statistics. `poke_interval` and `timeout` (seconds) apply to both modes."""

    template_fields = ("collection_name", "expected_count", "base_url")

    def __init__(
        self,
        *,
        collection_name: str,
        expected_count: int = 0,
        backend: str = "qdrant",
        base_url: str = DEFAULT_URL,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        get_backend(backend)
        self.collection_name = collection_name
        self.expected_count = expected_count
        self.backend = backend
        self.base_url = base_url
        self.deferrable = deferrable

    def execute(self, context: Context) -> dict[str, Any] | None:
        """Check the collection exists (fail at once if not), return the stats if it is already complete,
        else defer to VectorStoreIndexTrigger with a timeout (or, with deferrable=False, poke)."""
        raise todo("11.4", 2, "implement VectorStoreSensor.execute", "ex11_4_vector_store_sensor.md#task-2")

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One status check for poke mode: the same rules as the trigger; the stats as XCom when done."""
        raise todo("11.4", 2, "implement VectorStoreSensor.poke", "ex11_4_vector_store_sensor.md#task-2")

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        """Return the stats on success; raise AirflowFailException on error, AirflowSensorTimeout on timeout."""
        raise todo("11.4", 2, "implement VectorStoreSensor.execute_complete", "ex11_4_vector_store_sensor.md#task-2")


# ---- Task 3: the health check ----------------------------------------------------------------------------
def validate_index_health(
    collection_name: str,
    expected_count: int,
    *,
    expected_dimension: int = EMBEDDING_DIMENSION,
    test_query: str = HEALTH_QUERY,
    backend: str = "qdrant",
    base_url: str = DEFAULT_URL,
) -> dict[str, Any]:
    """Check the index is ready, holds exactly `expected_count` documents, has the embedding model's dimension
    and answers a test query; return its statistics. Every problem found is reported at once."""
    raise todo("11.4", 3, "implement validate_index_health", "ex11_4_vector_store_sensor.md#task-3")
