"""Exercise 11.4 (reference solution): wait for a vector store to finish indexing, then prove it answers.

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

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any, ClassVar, Literal

import aiohttp
import requests
from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout
from airflow.triggers.base import BaseTrigger, TriggerEvent

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
    """The store has no collection of that name (a 404): waiting will not create it."""


class TransientStoreError(VectorStoreError):
    """Unreachable, too slow, or a 429/5xx answer: worth asking again."""


@dataclass(frozen=True)
class IndexStatus:
    """
    A collection's index as every backend reports it.

    :param collection: The collection's name.
    :param state: `indexing`, `ready` or `failed`.
    :param document_count: How many documents the collection stores.
    :param indexed_count: How many of them the index covers so far.
    :param dimension: The dimension of the collection's vectors.
    :param reason: Why the build failed, in the store's words; None when the store gives none.
    """

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
    """
    One HTTP request to a vector store, as an adapter builds it.

    :param method: The HTTP method.
    :param path: The path below the store's base URL.
    :param body: The JSON body; None sends none.
    """

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
        result = body["result"]
        optimizer = result.get("optimizer_status")
        return IndexStatus(
            collection=collection,
            state=self._STATES.get(result["status"], "indexing"),
            document_count=int(result["points_count"]),
            indexed_count=int(result["indexed_vectors_count"]),
            dimension=int(result["config"]["params"]["vectors"]["size"]),
            reason=optimizer.get("error") if isinstance(optimizer, dict) else None,
        )

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
        index = body["index"]
        return IndexStatus(
            collection=collection,
            state=self._STATES.get(index["state"], "indexing"),
            document_count=int(body["count"]),
            indexed_count=int(index["indexed"]),
            dimension=int(body["dimension"]),
            reason=index.get("error"),
        )

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
    """
    Read a collection's index status with one blocking call (worker side).

    Raises `CollectionNotFound` for a missing collection, `TransientStoreError` when the store is unreachable
    or answers 429/5xx, `VectorStoreError` for a request it refuses.

    :param collection: The collection to look at.
    :param backend: The store's API dialect, `qdrant` or `chroma`.
    :param base_url: The store's base URL.
    """
    adapter = get_backend(backend)
    body = request_json(base_url, adapter, collection, adapter.status_request(collection))
    return adapter.parse_status(collection, body)


def ingest_documents(collection: str, documents: list[dict[str, Any]], *, backend: str = "qdrant",
                     base_url: str = DEFAULT_URL, dimension: int = EMBEDDING_DIMENSION) -> int:
    """
    Create the collection if needed and upsert documents into it; return how many were sent.

    Indexing goes on in the store's background afterwards: `VectorStoreSensor` waits for it.

    :param collection: The collection to write to; upserted into when it already exists.
    :param documents: Dicts with an `id` and a `text`; every other key is stored as the document's payload.
    :param backend: The store's API dialect, `qdrant` or `chroma`.
    :param base_url: The store's base URL.
    :param dimension: The vectors' dimension of a collection created here.
    """
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
    """
    Search a collection; return the best hits as `{"id", "score", "payload"}`, best first.

    :param collection: The collection to search.
    :param text: The query text; the store embeds it.
    :param k: How many hits at most.
    :param backend: The store's API dialect, `qdrant` or `chroma`.
    :param base_url: The store's base URL.
    """
    adapter = get_backend(backend)
    return adapter.parse_query(request_json(base_url, adapter, collection, adapter.query_request(collection, text, k)))


def _is_complete(status: IndexStatus, expected_count: int) -> bool:
    # Counts alone are not enough: every document can be stored while the index is still building.
    return status.state == "ready" and status.document_count >= expected_count


# ---- Task 1: the trigger ---------------------------------------------------------------------------------
class VectorStoreIndexTrigger(BaseTrigger):
    """
    Poll a vector store until a collection's index is complete, its build fails, or the time is up.

    Fires once: `success` (ready with at least `expected_count` documents), `error` (the index build
    failed, or the collection is gone, or the store refuses the request) or `timeout` (with the last status
    seen). Unreachable, slow or 5xx answers are polled again.

    :param collection_name: The collection to wait for.
    :param expected_count: How many documents the collection must hold once ready.
    :param backend: The store's API dialect, `qdrant` or `chroma`; another name is a ValueError.
    :param base_url: The store's base URL.
    :param poll_interval: Seconds between two status requests.
    :param timeout: Seconds to wait, measured on a monotonic clock, before the `timeout` event.
    """

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
        return f"{type(self).__module__}.{type(self).__qualname__}", {
            "collection_name": self.collection_name,
            "expected_count": self.expected_count,
            "backend": self.backend,
            "base_url": self.base_url,
            "poll_interval": self.poll_interval,
            "timeout": self.timeout,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # One session per run(); `async with` closes it when the triggerer cancels us, too. The event is
        # yielded after the session is closed, so nothing stays open while the triggerer handles it.
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as session:
            event = await self._wait(session)
        yield event

    async def _wait(self, session: aiohttp.ClientSession) -> TriggerEvent:
        adapter = get_backend(self.backend)
        request = adapter.status_request(self.collection_name)
        deadline = time.monotonic() + self.timeout
        last: IndexStatus | None = None
        last_error: str | None = None
        previous: tuple[float, int] | None = None  # (monotonic time, indexed count) of the previous poll
        while True:
            try:
                async with asyncio.timeout(max(0.1, deadline - time.monotonic())):  # a slow answer is no excuse
                    body = await async_request_json(session, self.base_url, adapter, self.collection_name, request)
                status = adapter.parse_status(self.collection_name, body)
            except (TransientStoreError, TimeoutError) as exc:
                last_error = str(exc) or "no answer before the deadline"
                self.log.warning("Collection %r: status unavailable (%s); polling again", self.collection_name,
                                 last_error)
            except VectorStoreError as exc:
                return self._event("error", str(exc), last)
            except (KeyError, TypeError, ValueError) as exc:
                return self._event("error", f"unexpected {self.backend} status answer ({exc!r}): is "
                                            f"{self.base_url} a {self.backend} store?", last)
            else:
                last, last_error = status, None
                if status.state == "failed":
                    return self._event("error", f"indexing of collection {self.collection_name!r} failed: "
                                                f"{status.reason or 'no reason given'}", status)
                if _is_complete(status, self.expected_count):
                    self.log.info("Collection %r is ready: %s", self.collection_name, status.describe())
                    return self._event("success", f"collection {self.collection_name!r} is ready", status)
                now = time.monotonic()
                self._log_progress(status, previous, now)
                previous = (now, status.indexed_count)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = f"last status: {last.describe()}" if last else "no status received"
                error = f"; last error: {last_error}" if last_error else ""
                message = (f"collection {self.collection_name!r} was not ready with {self.expected_count} "
                           f"documents within {self.timeout:g} s ({seen}{error})")
                return self._event("timeout", message, last, last_error=last_error)
            await asyncio.sleep(min(self.poll_interval, remaining))

    def _log_progress(self, status: IndexStatus, previous: tuple[float, int] | None, now: float) -> None:
        rate = ""
        if previous is not None and now > previous[0]:
            per_second = (status.indexed_count - previous[1]) / (now - previous[0])
            rate = f", {per_second:.1f} documents/s"
        waiting_for = ""
        if status.document_count < self.expected_count:
            waiting_for = f", {status.document_count} of {self.expected_count} expected documents stored"
        self.log.info("Collection %r: %s%s%s", self.collection_name, status.describe(), rate, waiting_for)

    def _event(self, kind: str, message: str, status: IndexStatus | None, **extra: Any) -> TriggerEvent:
        return TriggerEvent({
            "status": kind,
            "collection": self.collection_name,
            "message": message,
            "document_count": status.document_count if status else None,
            "stats": status.as_dict() if status else None,
            **extra,
        })


# ---- Task 2: the sensor ----------------------------------------------------------------------------------
class VectorStoreSensor(BaseSensorOperator):
    """
    Wait until a collection is indexed with at least `expected_count` documents; return its statistics (XCom).

    A missing collection, a request the store refuses and a failed build fail at once
    (`AirflowFailException`); an index already complete returns at once. Otherwise the sensor defers to
    `VectorStoreIndexTrigger`, with a deferral timeout `DEFERRAL_GRACE` longer than the trigger's, or, with
    `deferrable=False`, pokes in the worker by the same rules. `poke_interval` and `timeout` (seconds)
    apply to both modes.

    :param collection_name: The collection to wait for (templated).
    :param expected_count: How many documents the collection must hold once ready (templated).
    :param backend: The store's API dialect, `qdrant` or `chroma`; another name is a ValueError.
    :param base_url: The store's base URL (templated).
    :param deferrable: Wait in the triggerer (the default) rather than in a worker slot.
    """

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
        self.expected_count = int(self.expected_count)  # a template renders to text
        try:
            status = self._status()
        except TransientStoreError as exc:
            # Can't check now; the waiting (either mode) retries and still fails on a missing collection.
            self.log.warning("Quick check of collection %r failed (%s); waiting", self.collection_name, exc)
        else:
            done = self._evaluate(status)
            if done is not None:
                return done
        if not self.deferrable:
            return super().execute(context)
        self.defer(
            trigger=VectorStoreIndexTrigger(
                collection_name=self.collection_name,
                expected_count=self.expected_count,
                backend=self.backend,
                base_url=self.base_url,
                poll_interval=self.poke_interval,
                timeout=self.timeout,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) + DEFERRAL_GRACE,
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        try:
            status = self._status()
        except TransientStoreError as exc:
            self.log.warning("Collection %r: status unavailable (%s); poking again", self.collection_name, exc)
            return False
        done = self._evaluate(status)
        return PokeReturnValue(is_done=True, xcom_value=done) if done is not None else False

    def execute_complete(self, context: Context, event: dict[str, Any]) -> dict[str, Any]:
        kind, message = event.get("status"), event.get("message", event)
        if kind == "success":
            self.log.info("Collection %r is ready: %s", self.collection_name, event["stats"])
            return event["stats"]
        if kind == "timeout":
            raise AirflowSensorTimeout(message)
        if kind == "error":
            raise AirflowFailException(message)
        raise AirflowException(f"unexpected event from VectorStoreIndexTrigger: {event!r}")

    def _status(self) -> IndexStatus:
        try:
            return get_index_status(self.collection_name, backend=self.backend, base_url=self.base_url)
        except CollectionNotFound as exc:
            # Waiting can't create it: fail at once rather than at the timeout, and don't retry.
            raise AirflowFailException(f"{exc}; create it (and ingest) before waiting on it") from exc
        except TransientStoreError:
            raise
        except VectorStoreError as exc:
            raise AirflowFailException(str(exc)) from exc

    def _evaluate(self, status: IndexStatus) -> dict[str, Any] | None:
        """The statistics when done, None to keep waiting; a failed build raises."""
        if status.state == "failed":
            raise AirflowFailException(f"indexing of collection {self.collection_name!r} failed: "
                                       f"{status.reason or 'no reason given'}")
        if _is_complete(status, self.expected_count):
            self.log.info("Collection %r is ready: %s", self.collection_name, status.describe())
            return status.as_dict()
        self.log.info("Collection %r: %s; waiting for %d documents", self.collection_name, status.describe(),
                      self.expected_count)
        return None


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
    """
    Check that a collection's index is ready, complete and answers queries; return its statistics.

    Every problem found is reported at once, in one `AirflowFailException`; a collection that does not exist
    fails too. A `TransientStoreError` propagates, so the task's retries cover an outage.

    :param collection_name: The collection to check.
    :param expected_count: Exactly how many documents it must hold (more are stale ones from an older run).
    :param expected_dimension: The embedding model's dimension, which the collection's must equal.
    :param test_query: The text of the test query (top 3), which must find something.
    :param backend: The store's API dialect, `qdrant` or `chroma`.
    :param base_url: The store's base URL.
    :return: The statistics: `collection`, `document_count`, `dimensions`, `test_query_results` (how many
        hits the test query returned) and `healthy` (True), among others.
    """
    try:
        status = get_index_status(collection_name, backend=backend, base_url=base_url)
    except CollectionNotFound as exc:
        raise AirflowFailException(str(exc)) from exc
    problems = []
    if status.state != "ready":
        problems.append(f"index is not ready ({status.describe()})")
    if status.document_count != expected_count:
        problems.append(f"document count {status.document_count} != expected {expected_count}")
    if status.dimension != expected_dimension:
        problems.append(f"dimension {status.dimension} != the embedding model's {expected_dimension}")
    hits: list[dict[str, Any]] = []
    try:
        hits = query_collection(collection_name, test_query, k=3, backend=backend, base_url=base_url)
    except TransientStoreError:
        raise  # an outage says nothing about the index: let the task retry
    except VectorStoreError as exc:
        problems.append(f"test query failed: {exc}")
    else:
        if not hits:
            problems.append(f"test query {test_query!r} returned no results")
    if problems:
        raise AirflowFailException(f"collection {collection_name!r} is unhealthy: " + "; ".join(problems))
    return {
        "collection": collection_name,
        "document_count": status.document_count,
        "indexed_count": status.indexed_count,
        "dimensions": status.dimension,
        "test_query_results": len(hits),
        "top_result": hits[0]["id"],
        "healthy": True,
    }
