"""How fast the fake vector store answers a top-k query: 10,000 documents x 384 dimensions.

    .venv/bin/python benchmarks/vector_search.py [--documents 10000] [--dimension 384] [--k 10] [--repeat 200]

Three timings of the same queries, median and 95th percentile in milliseconds:
  baseline  numpy brute force: unit vectors, one matrix-vector product, a full argsort;
  engine    the simulator's search (fixtures.vector_store.Store.search), in-process;
  http      the same query through the Qdrant-like HTTP API on loopback (JSON both ways).
The engine must return the same top-k ids as the baseline (checked on every query); it should answer in a
few milliseconds. A measurement, not a test: nothing fails on a slow machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: the repo root holds fixtures/

from fixtures.clock import SimClock  # noqa: E402
from fixtures.vector_store import VectorStore  # noqa: E402


def timings(call: Callable[[int], object], repeat: int) -> list[float]:
    out = []
    for i in range(repeat):
        started = time.perf_counter()
        call(i)
        out.append((time.perf_counter() - started) * 1000)
    return out


def report(name: str, ms: list[float]) -> None:
    p95 = statistics.quantiles(ms, n=20)[-1]
    print(f"{name:<9} median {statistics.median(ms):7.3f} ms   p95 {p95:7.3f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(42)
    vectors = rng.normal(size=(args.documents, args.dimension)).astype(np.float32)
    queries = rng.normal(size=(args.repeat, args.dimension)).astype(np.float32)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def baseline(i: int) -> np.ndarray:
        q = queries[i] / np.linalg.norm(queries[i])
        return np.argsort(-(unit @ q), kind="stable")[: args.k]

    clock = SimClock(time_scale=0)
    with VectorStore(backend="qdrant", clock=clock, index_rate=1e9) as server:
        store = server.store
        started = time.perf_counter()
        store.create_collection("bench", args.dimension)
        store.upsert("bench", [{"id": i, "vector": v} for i, v in enumerate(vectors)])
        clock.advance(1)  # everything indexed
        print(f"{args.documents} documents x {args.dimension} dimensions loaded in "
              f"{time.perf_counter() - started:.2f} s; top {args.k}, {args.repeat} queries each\n")

        def engine(i: int) -> list[int]:
            return [hit.id for hit in store.search("bench", vector=queries[i], k=args.k)]

        mismatches = sum(engine(i) != baseline(i).tolist() for i in range(args.repeat))

        url = f"{server.url}/collections/bench/points/query"

        def http(i: int) -> list[int]:
            body = json.dumps({"query": queries[i].tolist(), "limit": args.k}).encode()
            request = urllib.request.Request(url, data=body, method="POST",
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request) as response:
                return [p["id"] for p in json.load(response)["result"]["points"]]

        report("baseline", timings(baseline, args.repeat))
        report("engine", timings(engine, args.repeat))
        report("http", timings(http, args.repeat))
    print(f"\nengine top-{args.k} ids equal to the baseline's on {args.repeat - mismatches}/{args.repeat} queries")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
