"""Exercise 11.4, Task 4: ingest the sample corpus, wait for the index, check its health, ask it questions.

Addresses come from the environment, with the defaults of `python -m fixtures vector-store`:
WORKBOOK_VECTOR_STORE_URL, WORKBOOK_VECTOR_STORE_BACKEND (qdrant | chroma), WORKBOOK_VECTOR_COLLECTION,
WORKBOOK_VECTOR_CORPUS (a JSON list of documents), WORKBOOK_VECTOR_POLL_INTERVAL (seconds).

Build four tasks, in this order (exercises/ex11_4_vector_store_sensor.md#task-4):
  ingest >> wait_for_index >> validate >> sample_queries
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import dag, task, timezone

from starters._todo import todo
from starters.vector_store_sensor import DEFAULT_URL

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
        """Read the corpus (CORPUS), load it with `ingest_documents`, return how many documents were sent."""
        raise todo("11.4", 4, "implement the pipeline DAG's ingest task", "ex11_4_vector_store_sensor.md#task-4")

    ingest()
    # wait_for_index: a deferrable VectorStoreSensor expecting the count `ingest` returned
    # validate: `validate_index_health` for that count; returns the statistics
    # sample_queries: the top 3 of each of SAMPLE_QUERIES as {query: [{"id", "title", "score"}, ...]}


ex11_4_vector_pipeline()
