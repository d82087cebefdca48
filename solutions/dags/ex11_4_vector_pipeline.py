"""Exercise 11.4, Task 4: ingest the sample corpus, wait for the index, check its health, ask it questions.

Addresses come from the environment, with the defaults of `python -m fixtures vector-store`:
WORKBOOK_VECTOR_STORE_URL, WORKBOOK_VECTOR_STORE_BACKEND (qdrant | chroma), WORKBOOK_VECTOR_COLLECTION,
WORKBOOK_VECTOR_CORPUS (a JSON list of documents), WORKBOOK_VECTOR_POLL_INTERVAL (seconds).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from airflow.sdk import dag, task, timezone

from solutions.vector_store_sensor import (
    DEFAULT_URL,
    VectorStoreSensor,
    ingest_documents,
    query_collection,
    validate_index_health,
)

STORE_URL = os.environ.get("WORKBOOK_VECTOR_STORE_URL", DEFAULT_URL)
BACKEND = os.environ.get("WORKBOOK_VECTOR_STORE_BACKEND", "qdrant")
COLLECTION = os.environ.get("WORKBOOK_VECTOR_COLLECTION", "workbook_docs")
CORPUS = os.environ.get(
    "WORKBOOK_VECTOR_CORPUS", str(Path(__file__).resolve().parents[2] / "fixtures" / "vector_store" / "corpus.json")
)
POLL_INTERVAL = float(os.environ.get("WORKBOOK_VECTOR_POLL_INTERVAL", "2"))
SAMPLE_QUERIES = (
    "How does a sensor wait for a condition?",
    "Which process runs triggers without blocking?",
    "How do I retry a failed task?",
)


@dag(
    dag_id="ex11_4_vector_pipeline",
    schedule=None,
    start_date=timezone.datetime(2025, 1, 1),
    catchup=False,
    tags=["workbook", "ex11_4"],
)
def ex11_4_vector_pipeline():
    @task
    def ingest() -> int:
        documents = json.loads(Path(CORPUS).read_text(encoding="utf-8"))
        return ingest_documents(COLLECTION, documents, backend=BACKEND, base_url=STORE_URL)

    @task(multiple_outputs=False)
    def validate(expected_count: int) -> dict[str, Any]:
        return validate_index_health(COLLECTION, expected_count, backend=BACKEND, base_url=STORE_URL)

    @task(multiple_outputs=False)
    def sample_queries() -> dict[str, list[dict[str, Any]]]:
        answers = {}
        for query in SAMPLE_QUERIES:
            hits = query_collection(COLLECTION, query, k=3, backend=BACKEND, base_url=STORE_URL)
            answers[query] = [
                {"id": h["id"], "title": h["payload"].get("title"), "score": round(h["score"], 4)} for h in hits
            ]
        return answers

    count = ingest()
    wait = VectorStoreSensor(
        task_id="wait_for_index",
        collection_name=COLLECTION,
        expected_count=count,
        backend=BACKEND,
        base_url=STORE_URL,
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        timeout=600,
    )
    wait >> validate(count) >> sample_queries()


ex11_4_vector_pipeline()
