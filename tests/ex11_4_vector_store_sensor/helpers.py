"""Helpers of Exercise 11.4's tests: fill the fake vector store, watch what it was asked, time a call."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from airflow.sdk.exceptions import TaskDeferred

from fixtures.vector_store import VectorStore, load_corpus

COLLECTION = "docs"


def add_documents(store: VectorStore, count: int, name: str = COLLECTION, *, dimension: int = 384) -> None:
    """Create `name` (if needed) and store `count` random documents; indexing then runs on the store's clock."""
    store.store.create_collection(name, dimension, exist_ok=True)
    rng = np.random.default_rng(count)
    store.store.upsert(name, [
        {"id": f"doc-{i}", "vector": rng.normal(size=dimension).tolist(), "payload": {"n": i}} for i in range(count)
    ])


def add_corpus(store: VectorStore, name: str = COLLECTION) -> list[dict[str, Any]]:
    """Create `name` with the sample corpus (embedded by the store) and index all of it."""
    corpus = load_corpus()
    store.store.create_collection(name, 384, exist_ok=True)
    store.store.upsert(name, [
        {"id": d["id"], "text": d["text"], "payload": {"title": d["title"], "text": d["text"]}} for d in corpus
    ])
    index_everything(store, name)
    return corpus


def index_everything(store: VectorStore, name: str = COLLECTION) -> None:
    stats = store.store.stats(name)
    store.clock.advance((stats["document_count"] - stats["indexed_count"]) / store.store.index_rate + 1)
    assert store.store.stats(name)["state"] == "ready"


class StartIndexingOnFirstLook:
    """Keeps the store's clock frozen until the first status request arrives, then lets time run at
    `time_scale`: whoever looks first is sure to see `indexing`, and the wait after it is short."""

    def __init__(self, store: VectorStore, status_path: str, time_scale: float) -> None:
        self.store, self.status_path, self.time_scale = store, status_path, time_scale
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.01):
            if any(r.method == "GET" and r.path == self.status_path for r in self.store.requests):
                self.store.clock.set_time_scale(self.time_scale)
                return

    def __enter__(self) -> StartIndexingOnFirstLook:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)


def status_path(backend: str, name: str = COLLECTION) -> str:
    return f"/collections/{name}" if backend == "qdrant" else f"/api/v1/collections/{name}"


def status_requests(store: VectorStore, backend: str, name: str = COLLECTION) -> int:
    return sum(1 for r in store.requests if r.method == "GET" and r.path == status_path(backend, name))


class ScriptedStore:
    """A bare HTTP server that answers every request with the next of `answers` (status, JSON body), the last
    one again when they run out: a store that changes its mind, or speaks another dialect."""

    def __init__(self, answers: list[tuple[int, Any]]) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.answers, self.requests = list(answers), 0
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                index = min(scripted.requests, len(scripted.answers) - 1)
                scripted.requests += 1
                status, body = scripted.answers[index]
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ScriptedStore:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def qdrant_status_body(points: int, indexed: int, status: str = "yellow", dimension: int = 384) -> dict[str, Any]:
    """A Qdrant-shaped status answer."""
    return {"result": {"status": status, "optimizer_status": "ok", "points_count": points,
                       "indexed_vectors_count": indexed, "config": {"params": {"vectors": {"size": dimension}}}},
            "status": "ok", "time": 0.0001}


def make_sensor(vector_store_sensor, store, **overrides):
    """A VectorStoreSensor on `store`'s collection of 10 documents, quick to poke and to time out."""
    arguments = dict(task_id="wait_for_index", collection_name=COLLECTION, expected_count=10,
                     backend=store.backend, base_url=store.url, poke_interval=0.02, timeout=5)
    return vector_store_sensor.VectorStoreSensor(**(arguments | overrides))


def outcome(call):
    """`call()`'s result or exception, and how long it took."""
    started = time.monotonic()
    try:
        return call(), None, time.monotonic() - started
    except (Exception, TaskDeferred) as exc:
        return None, exc, time.monotonic() - started
