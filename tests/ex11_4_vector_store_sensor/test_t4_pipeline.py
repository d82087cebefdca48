"""Task 4: the pipeline DAG ingests, waits, validates and answers sample queries, under dag.test()."""

from __future__ import annotations

import pytest

from fixtures.vector_store import load_corpus
from tests.ex11_4_vector_store_sensor.helpers import StartIndexingOnFirstLook, status_path, status_requests
from tests.harness.dagrun import load_dag

DAG_ID = "ex11_4_vector_pipeline"
SENSOR_QUERY = "How does a sensor wait for a condition?"


def pipeline_env(store, collection: str = "workbook_docs") -> dict[str, str]:
    return {
        "WORKBOOK_VECTOR_STORE_URL": store.url,
        "WORKBOOK_VECTOR_STORE_BACKEND": store.backend,
        "WORKBOOK_VECTOR_COLLECTION": collection,
        "WORKBOOK_VECTOR_POLL_INTERVAL": "0.05",
    }


# ---- ex11_4.t4.dag_shape --------------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t4.dag_shape")
def test_dag_ingests_waits_validates_then_queries(vector_store_sensor, make_store, monkeypatch):
    store = make_store("chroma")
    for key, value in pipeline_env(store, "shape_check").items():
        monkeypatch.setenv(key, value)
    dag = load_dag(DAG_ID)
    ids = set(dag.task_dict)
    expected = {"ingest", "wait_for_index", "validate", "sample_queries"}
    assert expected <= ids, f"DAG {DAG_ID!r}: expected tasks {sorted(expected)}, found {sorted(ids)}"
    wait = dag.task_dict["wait_for_index"]
    assert isinstance(wait, vector_store_sensor.VectorStoreSensor) and wait.deferrable, (
        f"task 'wait_for_index': expected a deferrable VectorStoreSensor, got {wait!r}"
    )
    settings = (wait.collection_name, wait.backend, wait.base_url)
    assert settings == ("shape_check", "chroma", store.url), (
        f"task 'wait_for_index' with WORKBOOK_VECTOR_* set: expected (collection, backend, url) "
        f"('shape_check', 'chroma', {store.url!r}) from the environment, got {settings}"
    )
    assert float(wait.poke_interval) == 0.05, (
        f"task 'wait_for_index' with WORKBOOK_VECTOR_POLL_INTERVAL=0.05: expected poke_interval 0.05, got "
        f"{wait.poke_interval!r}")
    count = wait.expected_count
    from_ingest = (getattr(getattr(count, "operator", None), "task_id", None) == "ingest"
                   or (isinstance(count, str) and "ingest" in count))
    assert from_ingest, (
        f"task 'wait_for_index': expected expected_count to be ingest's return value (its XCom, known when the "
        f"run ingests), got {count!r}")
    order = [("ingest", "wait_for_index"), ("wait_for_index", "validate"), ("validate", "sample_queries")]
    missing = [pair for pair in order if pair[1] not in dag.task_dict[pair[0]].get_flat_relative_ids(upstream=False)]
    assert not missing, f"DAG {DAG_ID!r}: expected the order ingest >> wait_for_index >> validate >> sample_queries, " \
                        f"missing {missing}"


# ---- ex11_4.t4.pipeline_end_to_end ----------------------------------------------------------------------
@pytest.mark.integration
@pytest.mark.timeout(180)
@pytest.mark.criterion("ex11_4.t4.pipeline_end_to_end")
@pytest.mark.parametrize("backend_name", ["qdrant", "chroma"])
def test_pipeline_finds_the_sensors_document(run_dag, make_store, backend_name):
    corpus = load_corpus()
    store = make_store(backend_name, index_rate=20)  # frozen until the sensor first looks, then ~0.4 s
    env = pipeline_env(store)
    with StartIndexingOnFirstLook(store, status_path(backend_name, "workbook_docs"), time_scale=2):
        result = run_dag(DAG_ID, env=env, timeout=120)
    result.assert_success()
    stats = store.store.stats("workbook_docs")
    assert stats["document_count"] == len(corpus), (
        f"after the pipeline: expected the {len(corpus)} corpus documents in the store, it holds {stats}"
    )
    polls = status_requests(store, backend_name, "workbook_docs")
    assert polls >= 2, (
        f"the sensor saw the collection still indexing: expected it to check again (quick check, then the "
        f"trigger), the store got {polls} status requests"
    )
    waited = result.xcoms.get("wait_for_index") or {}
    assert waited.get("document_count") == len(corpus), (
        f"XCom of 'wait_for_index': expected the index stats with document_count {len(corpus)}, got {waited!r}"
    )
    health = result.xcoms.get("validate") or {}
    assert health.get("healthy") is True, f"XCom of 'validate': expected healthy True, got {health!r}"
    answers = result.xcoms.get("sample_queries") or {}
    hits = answers.get(SENSOR_QUERY) if isinstance(answers, dict) else None
    assert hits, f"XCom of 'sample_queries': expected top results for {SENSOR_QUERY!r}, got {answers!r}"
    top_ids = [hit.get("id") for hit in hits[:3]]
    assert "sensors" in top_ids, (
        f"{SENSOR_QUERY!r} against the {backend_name} store: expected the 'sensors' document in the top 3, "
        f"got {top_ids}"
    )
