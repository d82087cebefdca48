"""Task 3 at its edges: the default dialect, an index of one document, a collection that was never made."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException

from tests.ex11_4_vector_store_sensor.helpers import COLLECTION, add_documents, index_everything, outcome

pytestmark = pytest.mark.timeout(60)


# ---- ex11_4.t3.reports_stats ----------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t3.reports_stats")
def test_health_check_defaults_to_the_qdrant_dialect(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 4)
    index_everything(store)
    result, error, _ = outcome(lambda: vector_store_sensor.validate_index_health(COLLECTION, 4, base_url=store.url))
    assert error is None and isinstance(result, dict) and result.get("healthy") is True, (
        f"validate_index_health({COLLECTION!r}, 4, base_url=...) without backend= on a healthy qdrant collection: "
        f"expected the stats (backend defaults to 'qdrant'), got result {result!r}, error {error!r}"
    )


@pytest.mark.criterion("ex11_4.t3.reports_stats")
def test_index_of_one_document_is_healthy(vector_store_sensor, make_store, backend):
    store = make_store(backend)
    add_documents(store, 1)
    index_everything(store)
    result, error, _ = outcome(lambda: vector_store_sensor.validate_index_health(COLLECTION, 1, backend=backend,
                                                                                 base_url=store.url))
    got = (result.get("healthy"), result.get("test_query_results")) if isinstance(result, dict) else result
    assert error is None and got == (True, 1), (
        f"validate_index_health on a healthy {backend} collection of one document: expected healthy with "
        f"test_query_results 1 (the top 3 of one), got result {result!r}, error {error!r}"
    )


# ---- ex11_4.t3.queries_index ----------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t3.queries_index")
def test_health_check_of_a_missing_collection_names_it(vector_store_sensor, make_store):
    store = make_store("qdrant")
    _, error, _ = outcome(lambda: vector_store_sensor.validate_index_health("never-ingested", 16, base_url=store.url))
    assert isinstance(error, AirflowException) and "never-ingested" in str(error), (
        f"validate_index_health('never-ingested', ...) on a store without that collection: expected an "
        f"AirflowException naming it, got {error!r}"
    )
