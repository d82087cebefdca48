"""The fake vector store of Exercise 11.4 behaves like a real one, in both API dialects: errors with JSON
bodies, indexing in the background on a SimClock, the injected failures, and repeatable search results."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from fixtures import SimClock
from fixtures.__main__ import simulators
from fixtures.vector_store import VectorStore, embed_text, load_corpus

SENSOR_QUERY = "How does a sensor wait for a condition?"


def call(store: VectorStore, method: str, path: str, body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
    """One HTTP request to the store; returns (status, parsed JSON body), errors included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(store.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


class Dialect:
    """The same operations in the store's two API shapes, so each test runs against both."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store
        self.qdrant = store.backend == "qdrant"

    def path(self, name: str) -> str:
        return f"/collections/{name}" if self.qdrant else f"/api/v1/collections/{name}"

    def create(self, name: str, dimension: int = 384) -> tuple[int, Any]:
        if self.qdrant:
            return call(self.store, "PUT", self.path(name), {"vectors": {"size": dimension, "distance": "Cosine"}})
        return call(self.store, "POST", "/api/v1/collections", {"name": name, "dimension": dimension})

    def upsert(self, name: str, docs: list[dict[str, Any]]) -> tuple[int, Any]:
        if self.qdrant:
            return call(self.store, "PUT", self.path(name) + "/points", {"points": docs})
        body: dict[str, Any] = {"ids": [d["id"] for d in docs], "metadatas": [d.get("payload", {}) for d in docs]}
        if "vector" in docs[0]:
            body["embeddings"] = [d["vector"] for d in docs]
        else:
            body["documents"] = [d["text"] for d in docs]
        return call(self.store, "POST", self.path(name) + "/upsert", body)

    def status(self, name: str) -> tuple[int, dict[str, Any]]:
        """(HTTP status, {"state", "total", "indexed", "reason"}) read from the dialect's own fields."""
        code, body = call(self.store, "GET", self.path(name))
        if code != 200:
            return code, body
        if self.qdrant:
            result = body["result"]
            optimizer = result["optimizer_status"]
            return code, {"state": result["status"], "total": result["points_count"],
                          "indexed": result["indexed_vectors_count"],
                          "reason": optimizer.get("error") if isinstance(optimizer, dict) else None}
        return code, {"state": body["index"]["state"], "total": body["count"], "indexed": body["index"]["indexed"],
                      "reason": body["index"]["error"]}

    def query(self, name: str, text: str, k: int = 3) -> tuple[int, list[tuple[Any, float, dict]]]:
        """(HTTP status, [(id, similarity, payload)]) best first."""
        if self.qdrant:
            code, body = call(self.store, "POST", self.path(name) + "/points/query",
                              {"query": {"text": text}, "limit": k})
            hits = [(p["id"], p["score"], p["payload"]) for p in body["result"]["points"]] if code == 200 else []
            return code, hits
        code, body = call(self.store, "POST", self.path(name) + "/query", {"query_texts": [text], "n_results": k})
        if code != 200:
            return code, []
        return code, [(i, 1.0 - d, m) for i, d, m in zip(body["ids"][0], body["distances"][0], body["metadatas"][0],
                                                          strict=True)]

    def error_text(self, body: Any) -> str:
        """The message of an error body, which must have the dialect's shape."""
        if self.qdrant:
            assert isinstance(body, dict) and isinstance(body.get("status"), dict) and "error" in body["status"], (
                f"qdrant error body: expected {{'status': {{'error': ...}}}}, got {body!r}"
            )
            return body["status"]["error"]
        assert isinstance(body, dict) and {"error", "message"} <= body.keys(), (
            f"chroma error body: expected {{'error': code, 'message': ...}}, got {body!r}"
        )
        return f"{body['error']}: {body['message']}"


READY = {"qdrant": "green", "chroma": "complete"}
INDEXING = {"qdrant": "yellow", "chroma": "building"}
FAILED = {"qdrant": "red", "chroma": "error"}


@pytest.fixture(params=["qdrant", "chroma"])
def store(request: pytest.FixtureRequest) -> Iterator[VectorStore]:
    """A store on a free port whose clock is frozen: indexing moves only with `store.clock.advance()`."""
    with VectorStore(backend=request.param, clock=SimClock(time_scale=0), index_rate=2) as server:
        yield server


@pytest.fixture
def api(store: VectorStore) -> Dialect:
    return Dialect(store)


def random_docs(count: int, dimension: int = 384, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [{"id": f"doc-{i}", "vector": rng.normal(size=dimension).tolist(), "payload": {"n": i}}
            for i in range(count)]


def corpus_docs() -> list[dict[str, Any]]:
    return [{"id": d["id"], "text": d["text"], "payload": {"title": d["title"]}} for d in load_corpus()]


class TestCollections:
    def test_create_then_status_of_an_empty_collection(self, api):
        assert api.create("docs")[0] == 200
        code, status = api.status("docs")
        assert (code, status["state"], status["total"], status["indexed"]) == (200, READY[api.store.backend], 0, 0)

    def test_duplicate_is_a_409_with_a_json_body(self, api):
        api.create("docs")
        code, body = api.create("docs")
        assert code == 409, f"creating 'docs' twice: expected 409, got {code} {body!r}"
        assert "already exists" in api.error_text(body)

    def test_chroma_get_or_create_returns_the_existing_collection(self):
        with VectorStore(backend="chroma", clock=SimClock(time_scale=0)) as server:
            body = {"name": "docs", "dimension": 384, "get_or_create": True}
            first, second = call(server, "POST", "/api/v1/collections", body), call(server, "POST",
                                                                                      "/api/v1/collections", body)
        assert first[0] == second[0] == 200 and first[1]["id"] == second[1]["id"]

    def test_wrong_dimension_is_a_400(self, api):
        api.create("docs", dimension=8)
        code, body = api.upsert("docs", random_docs(1, dimension=5))
        assert code == 400, f"a 5-dimensional vector into an 8-dimensional collection: expected 400, got {code}"
        assert "expected a vector of dimension 8, got 5" in api.error_text(body)
        code, body = api.upsert("docs", [{"id": "t", "text": "a text the 384-dimension model embeds"}])
        assert code == 400 and "expects 8" in api.error_text(body)

    def test_unknown_collection_is_a_404_everywhere(self, api):
        for code, body in (api.status("missing"), api.upsert("missing", random_docs(1)),
                           api.query("missing", "anything")):
            assert code == 404, f"operation on an unknown collection: expected 404, got {code} {body!r}"
        code, body = call(api.store, "GET", api.path("missing"))
        assert "does not exist" in api.error_text(body)

    def test_bad_json_and_unknown_routes_still_answer_json(self, api):
        request = urllib.request.Request(api.store.url + api.path("docs"), data=b"{not json", method="PUT")
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(request, timeout=5)
        assert raised.value.code == 400
        api.error_text(json.loads(raised.value.read()))
        code, body = call(api.store, "GET", "/no/such/route")
        assert code == 404
        api.error_text(body)

    def test_delete(self, api):
        api.create("docs")
        assert call(api.store, "DELETE", api.path("docs"))[0] == 200
        assert api.status("docs")[0] == 404


class TestIndexing:
    def test_progress_follows_the_simulated_clock(self, api):
        api.create("docs")
        assert api.upsert("docs", random_docs(10))[0] == 200
        backend = api.store.backend
        assert api.status("docs")[1] == {"state": INDEXING[backend], "total": 10, "indexed": 0, "reason": None}
        api.store.clock.advance(2)  # 2 documents per simulated second
        assert api.status("docs")[1] == {"state": INDEXING[backend], "total": 10, "indexed": 4, "reason": None}
        if backend == "chroma":
            assert call(api.store, "GET", api.path("docs"))[1]["index"]["progress"] == 0.4
        api.store.clock.advance(10)
        assert api.status("docs")[1] == {"state": READY[backend], "total": 10, "indexed": 10, "reason": None}

    def test_only_indexed_documents_are_searchable(self, api):
        api.create("docs")
        api.upsert("docs", corpus_docs())
        assert api.query("docs", SENSOR_QUERY) == (200, [])
        api.store.clock.advance(1)  # the first two documents of the corpus
        code, hits = api.query("docs", SENSOR_QUERY, k=5)
        assert code == 200 and sorted(h[0] for h in hits) == ["sensors", "triggers"]

    def test_new_documents_join_the_queue_and_updates_do_not(self, api):
        api.create("docs")
        api.upsert("docs", random_docs(4))
        api.store.clock.advance(2)
        api.upsert("docs", random_docs(4, seed=1))  # the same ids again: replaced in place, already indexed
        assert api.status("docs")[1]["state"] == READY[api.store.backend]
        api.upsert("docs", [{"id": "doc-new", "vector": random_docs(1)[0]["vector"]}])
        assert api.status("docs")[1] == {"state": INDEXING[api.store.backend], "total": 5, "indexed": 4,
                                         "reason": None}

    def test_compressed_real_time(self):
        # 100 documents at 10 per simulated second take 10 simulated seconds: 20 ms at 500x.
        with VectorStore(clock=SimClock(time_scale=500), index_rate=10) as server:
            api = Dialect(server)
            api.create("docs", dimension=4)
            api.upsert("docs", random_docs(100, dimension=4))
            seen = []
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                status = api.status("docs")[1]
                seen.append(status["indexed"])
                if status["state"] == "green":
                    break
                threading.Event().wait(0.002)
        assert seen[-1] == 100 and status["state"] == "green", f"not ready within 5 s real time: {seen[-5:]}"
        assert seen == sorted(seen), f"indexed counts went backwards: {seen}"


class TestInjectedTrouble:
    def test_failure_when_the_indexer_reaches_a_count(self, api):
        api.create("docs")
        api.upsert("docs", random_docs(10))
        api.store.store.fail("docs", "index build failed: disk full", at=6)
        api.store.clock.advance(100)
        code, status = api.status("docs")
        assert status == {"state": FAILED[api.store.backend], "total": 10, "indexed": 6,
                          "reason": "index build failed: disk full"}
        code, body = api.upsert("docs", random_docs(1, seed=3))
        assert code == 409 and "disk full" in api.error_text(body)

    def test_failure_now_even_when_everything_is_indexed(self, api):
        api.create("docs")
        api.upsert("docs", random_docs(2))
        api.store.clock.advance(5)
        api.store.store.fail("docs", "segment corrupted")
        assert api.status("docs")[1] == {"state": FAILED[api.store.backend], "total": 2, "indexed": 2,
                                         "reason": "segment corrupted"}

    def test_stall_and_resume(self, api):
        api.create("docs")
        api.upsert("docs", random_docs(10))
        api.store.store.stall("docs", at=3)
        api.store.clock.advance(1000)
        assert api.status("docs")[1]["indexed"] == 3
        assert api.status("docs")[1]["state"] == INDEXING[api.store.backend]
        api.store.store.resume("docs")
        api.store.clock.advance(4)
        assert api.status("docs")[1]["state"] == READY[api.store.backend]

    def test_transient_503s_then_normal_answers(self, api):
        api.create("docs")
        api.store.fail_next(2)
        answers = [api.status("docs") for _ in range(3)]
        assert [code for code, _ in answers] == [503, 503, 200]
        assert "temporarily unavailable" in api.error_text(answers[0][1])
        assert len(api.store.requests_to(api.path("docs"), "GET")) == 3

    def test_latency_delays_every_answer(self, api):
        api.create("docs")
        api.store.latency = 0.2
        started = time.monotonic()
        assert api.status("docs")[0] == 200
        assert time.monotonic() - started >= 0.2
        api.store.latency = 0
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            api.store.latency = 0.5
            call(api.store, "GET", api.path("docs"), timeout=0.1)

    def test_broken_search_looks_healthy_but_finds_nothing(self, api):
        api.create("docs")
        api.upsert("docs", corpus_docs())
        api.store.clock.advance(60)
        api.store.store.break_search("docs")
        assert api.status("docs")[1]["state"] == READY[api.store.backend]
        assert api.query("docs", SENSOR_QUERY) == (200, [])


class TestSearch:
    def test_hits_have_id_score_and_payload_best_first(self, api):
        api.create("docs")
        api.upsert("docs", corpus_docs())
        api.store.clock.advance(60)
        code, hits = api.query("docs", SENSOR_QUERY, k=3)
        assert code == 200 and len(hits) == 3
        assert hits[0][0] == "sensors" and hits[0][2] == {"title": "Sensors"}, f"top hit: {hits[0]!r}"
        scores = [score for _, score, _ in hits]
        assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1.0 + 1e-6, scores

    def test_neighbours_are_the_same_in_both_dialects_and_every_run(self):
        rankings = []
        for backend in ("qdrant", "chroma", "qdrant"):
            with VectorStore(backend=backend, clock=SimClock(time_scale=0)) as server:
                api = Dialect(server)
                api.create("docs")
                api.upsert("docs", corpus_docs())
                server.clock.advance(60)
                rankings.append([(i, round(s, 5)) for i, s, _ in api.query("docs", SENSOR_QUERY, k=5)[1]])
        assert rankings[0] == rankings[1] == rankings[2], f"top 5 differ between stores: {rankings}"

    def test_a_vector_finds_itself(self, api):
        docs = random_docs(20, dimension=16)
        api.create("docs", dimension=16)
        api.upsert("docs", docs)
        api.store.clock.advance(60)
        if api.qdrant:
            code, body = call(api.store, "POST", api.path("docs") + "/points/query",
                              {"query": docs[7]["vector"], "limit": 1})
            top = body["result"]["points"][0]
            found, score = top["id"], top["score"]
        else:
            code, body = call(api.store, "POST", api.path("docs") + "/query",
                              {"query_embeddings": [docs[7]["vector"]], "n_results": 1})
            found, score = body["ids"][0][0], 1.0 - body["distances"][0][0]
        assert (code, found) == (200, "doc-7") and score == pytest.approx(1.0, abs=1e-5)

    def test_embedding_is_deterministic_and_normalised(self):
        first, second = embed_text(SENSOR_QUERY), embed_text(SENSOR_QUERY)
        assert first.shape == (384,) and np.array_equal(first, second)
        assert float(np.linalg.norm(first)) == pytest.approx(1.0, abs=1e-6)
        assert not embed_text("the of and").any()  # stop words only: no direction at all


class TestLifecycle:
    def test_stop_releases_the_port_and_the_thread(self):
        server = VectorStore(backend="chroma", clock=SimClock(time_scale=0)).start()
        port = server.port
        assert call(server, "GET", "/api/v1/collections/none")[0] == 404
        server.stop()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        assert not any(t.name == "VectorStore-server" and t.is_alive() for t in threading.enumerate())
        server.stop()  # a second stop is harmless

    def test_rejects_unknown_backend_and_bad_rate(self):
        with pytest.raises(ValueError, match="unknown backend"):
            VectorStore(backend="pinecone")
        with pytest.raises(ValueError, match="index_rate"):
            VectorStore(index_rate=0)

    def test_joins_the_fixtures_cli(self):
        module = simulators().get("vector-store")
        assert module is not None and module.DEFAULT_PORT == 8086
