"""Task 2 at its edges: refused requests, poke and reschedule modes without deferral, the exceptions of
execute_complete() and the progress the quick check logs."""

from __future__ import annotations

import re

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException, AirflowSensorTimeout

from tests.ex11_4_vector_store_sensor.helpers import (
    COLLECTION,
    add_documents,
    index_everything,
    make_sensor,
    outcome,
)
from tests.harness import make_context
from tests.harness.context import call_execute
from tests.harness.reschedule import RescheduledTask

pytestmark = pytest.mark.timeout(60)


# ---- ex11_4.t2.validates_collection ---------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t2.validates_collection")
@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "poke"])
def test_refused_request_fails_at_once_with_the_store_reason(vector_store_sensor, make_store, deferrable):
    store = make_store("qdrant")
    add_documents(store, 10)
    store.fail_next(100, status=403)  # the store refuses every request
    _, error, took = outcome(lambda: call_execute(make_sensor(vector_store_sensor, store, deferrable=deferrable,
                                                              timeout=20)))
    assert isinstance(error, AirflowFailException) and "403" in str(error) and took < 10, (
        f"VectorStoreSensor(deferrable={deferrable}).execute() against a store that answers 403: expected "
        f"AirflowFailException with the store's answer (403) at once, got {error!r} after {took:.1f} s"
    )


# ---- ex11_4.t2.poke_mode --------------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t2.poke_mode")
def test_poke_mode_waits_through_transient_errors(vector_store_sensor, make_store):
    store = make_store("qdrant", index_rate=10, time_scale=10)  # 10 documents in 0.1 s
    add_documents(store, 10)
    store.fail_next(3, status=503)  # the quick check and the first pokes see an outage
    result, error, _ = outcome(lambda: call_execute(make_sensor(vector_store_sensor, store, deferrable=False)))
    assert error is None and isinstance(result, dict) and result.get("document_count") == 10, (
        f"VectorStoreSensor(deferrable=False) whose first 3 status requests get 503: expected it to keep poking "
        f"and return the stats (document_count 10), got result {result!r}, error {error!r}"
    )


@pytest.mark.criterion("ex11_4.t2.poke_mode")
def test_reschedule_mode_works_without_deferring(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 10)  # frozen: indexing
    task = RescheduledTask(lambda: make_sensor(vector_store_sensor, store, deferrable=False, mode="reschedule", timeout=60))
    first = task.execute()
    assert isinstance(first, AirflowRescheduleException), (
        f"VectorStoreSensor(deferrable=False, mode='reschedule').execute() while indexing: expected the ordinary "
        f"reschedule (AirflowRescheduleException), got {first!r}"
    )
    index_everything(store)
    second = task.execute()
    assert isinstance(second, dict) and second.get("document_count") == 10, (
        f"the rescheduled sensor's next run, now the index is ready: expected the stats (document_count 10), "
        f"got {second!r}"
    )


# ---- ex11_4.t2.completes_or_raises ----------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t2.completes_or_raises")
@pytest.mark.parametrize(("kind", "exception"), [("timeout", AirflowSensorTimeout), ("error", AirflowFailException)])
def test_execute_complete_raises_with_the_event_message(vector_store_sensor, make_store, kind, exception):
    store = make_store("qdrant")
    sensor = make_sensor(vector_store_sensor, store)
    message = f"collection {COLLECTION!r}: the trigger's own words for this {kind}"
    event = {"status": kind, "collection": COLLECTION, "message": message, "document_count": 10,
             "stats": {"collection": COLLECTION, "state": "indexing", "document_count": 10, "indexed_count": 4}}
    _, error, _ = outcome(lambda: sensor.execute_complete(make_context(sensor), event=event))
    assert isinstance(error, exception), f"execute_complete(event with status {kind!r}): expected {exception.__name__}, got {error!r}"
    assert message in str(error) and "'stats'" not in str(error), (
        f"execute_complete(event with status {kind!r}): expected the exception to carry the event's message "
        f"{message!r} (not the whole event), got {str(error)!r}"
    )


# ---- ex11_4.t2.progress_in_log --------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t2.progress_in_log")
def test_quick_check_of_a_ready_index_logs_what_it_saw(vector_store_sensor, make_store, learner_log):
    store = make_store("qdrant")
    add_documents(store, 12)
    index_everything(store)
    result, error, _ = outcome(lambda: call_execute(make_sensor(vector_store_sensor, store, expected_count=12)))
    assert error is None and isinstance(result, dict), f"VectorStoreSensor on a ready collection: got {error!r}"
    lines = [line for line in learner_log.lines() if re.search(r"\b12/12\b", line) and "%" in line]
    assert lines, (
        "VectorStoreSensor's quick check on a ready collection of 12: expected the task log to show what it saw "
        "(12/12 and the percentage), found no such line"
    )
