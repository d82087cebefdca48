"""Task 3: validate_index_health proves the index answers, holds what it should, and reports it."""

from __future__ import annotations

import re

import pytest
from airflow.sdk.exceptions import AirflowException

from tests.ex11_4_vector_store_sensor.helpers import COLLECTION, add_corpus, add_documents, index_everything

pytestmark = pytest.mark.timeout(60)


def check(vector_store_sensor, store, expected_count, **kwargs):
    return vector_store_sensor.validate_index_health(COLLECTION, expected_count, backend=store.backend,
                                                     base_url=store.url, **kwargs)


def query_requests(store) -> int:
    return sum(1 for r in store.requests if r.method == "POST" and r.path.endswith("/query"))


def assert_hit_count(hits, call: str) -> None:
    """test_query_results is the number of hits (an int), not the hits."""
    assert isinstance(hits, int) and not isinstance(hits, bool), (
        f"{call}: expected test_query_results to be an int, the number of hits of the test query (1 to 3), "
        f"got {type(hits).__name__} {repr(hits)[:120]}"
    )


def raises(call) -> BaseException | None:
    try:
        call()
    except Exception as exc:
        return exc
    return None


# ---- ex11_4.t3.queries_index ----------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t3.queries_index")
def test_health_check_runs_a_test_query(vector_store_sensor, make_store, backend):
    store = make_store(backend)
    corpus = add_corpus(store)
    result = check(vector_store_sensor, store, len(corpus))
    assert query_requests(store) >= 1, (
        f"validate_index_health on a healthy {backend} collection: expected it to send a test query, the store "
        f"received {[(r.method, r.path) for r in store.requests]}"
    )
    assert isinstance(result, dict), f"validate_index_health on a healthy {backend} collection: expected a dict, got {result!r}"
    hits = result.get("test_query_results")
    assert_hit_count(hits, f"validate_index_health on a healthy {backend} collection")
    assert hits >= 1, (
        f"validate_index_health on a healthy {backend} collection: expected test_query_results >= 1, got {result!r}"
    )


@pytest.mark.criterion("ex11_4.t3.queries_index")
def test_a_store_outage_is_left_to_propagate(vector_store_sensor, make_store):
    store = make_store("qdrant")
    corpus = add_corpus(store)
    for outage in ("every request", "the test query"):
        if outage == "every request":
            store.fail_next(1000, 503)  # the store is briefly down
        else:
            store.fail_next(0)
            store.fail_queries(1000, 503)  # stats answer, the search service is briefly down
        error = raises(lambda: check(vector_store_sensor, store, len(corpus)))
        assert isinstance(error, vector_store_sensor.TransientStoreError), (
            f"validate_index_health while {outage} answers 503: expected the TransientStoreError to propagate (a "
            f"retry may pass; not an AirflowFailException, which skips the retries), got {error!r}")


@pytest.mark.criterion("ex11_4.t3.queries_index")
def test_index_that_finds_nothing_is_unhealthy(vector_store_sensor, make_store):
    store = make_store("qdrant")
    corpus = add_corpus(store)
    store.store.break_search(COLLECTION)  # stats look fine, every query comes back empty
    error = raises(lambda: check(vector_store_sensor, store, len(corpus)))
    assert isinstance(error, AirflowException), (
        f"validate_index_health on a collection whose stats look ready but whose queries return nothing: "
        f"expected AirflowException, got {error!r}"
    )
    assert "quer" in str(error).lower(), f"the error should say the test query found nothing, got: {error}"


# ---- ex11_4.t3.count_matches ----------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t3.count_matches")
@pytest.mark.parametrize("expected_count", [15, 17], ids=["more-than-expected", "fewer-than-expected"])
def test_document_count_must_match(vector_store_sensor, make_store, expected_count):
    store = make_store("qdrant")
    corpus = add_corpus(store)
    error = raises(lambda: check(vector_store_sensor, store, expected_count))
    assert isinstance(error, AirflowException), (
        f"validate_index_health(expected_count={expected_count}) on a collection of {len(corpus)}: expected "
        f"AirflowException, got {error!r}"
    )
    assert str(expected_count) in str(error) and str(len(corpus)) in str(error), (
        f"the error should give both counts ({len(corpus)} found, {expected_count} expected): {error}"
    )


@pytest.mark.criterion("ex11_4.t3.count_matches")
def test_index_still_building_is_unhealthy(vector_store_sensor, make_store):
    store = make_store("chroma")
    add_documents(store, 10)
    store.clock.advance(6 / store.store.index_rate)  # 6/10 indexed: queries see only part of the data
    error = raises(lambda: check(vector_store_sensor, store, 10))
    assert isinstance(error, AirflowException) and "6/10" in str(error).replace(" of ", "/"), (
        f"validate_index_health on a collection still indexing (6/10): expected AirflowException giving the "
        f"progress, got {error!r}"
    )


# ---- ex11_4.t3.dimension_matches ------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t3.dimension_matches")
def test_dimension_must_match_the_embedding_model(vector_store_sensor, make_store):
    store = make_store("qdrant")
    corpus = add_corpus(store)  # a 384-dimensional collection
    error = raises(lambda: check(vector_store_sensor, store, len(corpus), expected_dimension=768))
    assert isinstance(error, AirflowException) and "768" in str(error) and "384" in str(error), (
        f"validate_index_health(expected_dimension=768) on a 384-dimensional collection: expected "
        f"AirflowException naming both dimensions, got {error!r}"
    )


@pytest.mark.criterion("ex11_4.t3.dimension_matches")
def test_collection_of_another_dimension_is_unhealthy(vector_store_sensor, make_store):
    store = make_store("chroma")
    add_documents(store, 5, dimension=16)
    index_everything(store)
    error = raises(lambda: check(vector_store_sensor, store, 5))
    assert isinstance(error, AirflowException) and re.search(r"\b16\b", str(error)) and "384" in str(error), (
        f"validate_index_health (model dimension 384) on a 16-dimensional collection: expected AirflowException "
        f"naming both dimensions, got {error!r}"
    )


# ---- ex11_4.t3.reports_stats ----------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t3.reports_stats")
def test_health_check_returns_the_statistics(vector_store_sensor, make_store, backend):
    store = make_store(backend)
    corpus = add_corpus(store)
    result = check(vector_store_sensor, store, len(corpus))
    expected = {"collection": COLLECTION, "document_count": len(corpus), "dimensions": 384, "healthy": True}
    got = {key: result.get(key) for key in expected} if isinstance(result, dict) else result
    assert got == expected, f"validate_index_health on a healthy {backend} collection: expected {expected}, got {result!r}"
    assert_hit_count(result.get("test_query_results"), f"validate_index_health on a healthy {backend} collection")
    assert 1 <= result["test_query_results"] <= 3, (
        f"the test query asks for the top 3: expected test_query_results in 1..3, got {result!r}"
    )
