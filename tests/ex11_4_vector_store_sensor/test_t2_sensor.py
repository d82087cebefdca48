"""Task 2: VectorStoreSensor validates the collection, checks once, defers (or pokes) and reports."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta

import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout, TaskDeferred

from tests.ex11_4_vector_store_sensor.helpers import (
    COLLECTION,
    add_documents,
    index_everything,
    make_sensor,
    outcome,
    status_requests,
)
from tests.harness import drive_deferral, make_context
from tests.harness.context import call_execute

pytestmark = pytest.mark.timeout(60)


# ---- ex11_4.t2.validates_collection ---------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t2.validates_collection")
@pytest.mark.parametrize("deferrable", [True, False], ids=["deferrable", "poke"])
def test_unknown_collection_fails_at_once(vector_store_sensor, make_store, deferrable):
    store = make_store("qdrant")
    sensor = make_sensor(vector_store_sensor, store, collection_name="no-such-collection", deferrable=deferrable, timeout=2)
    _, error, took = outcome(lambda: call_execute(sensor))
    assert isinstance(error, AirflowFailException), (
        f"VectorStoreSensor(deferrable={deferrable}).execute() on a collection that does not exist: expected "
        f"AirflowFailException at once (waiting cannot create it), got {error!r} after {took:.1f} s"
    )
    assert "no-such-collection" in str(error) and took < 1.5, (
        f"the error should name the missing collection and come before the 2 s timeout: {error} ({took:.1f} s)"
    )


# ---- ex11_4.t2.quick_check ------------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t2.quick_check")
def test_ready_collection_returns_without_deferring(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 10)
    index_everything(store)
    result, error, _ = outcome(lambda: call_execute(make_sensor(vector_store_sensor, store)))
    assert error is None, f"VectorStoreSensor.execute() on a ready collection: expected no deferral, got {error!r}"
    assert isinstance(result, dict) and result.get("document_count") == 10 and result.get("state") == "ready", (
        f"VectorStoreSensor.execute() on a ready collection of 10: expected the stats as XCom "
        f"(document_count 10, state ready), got {result!r}"
    )


@pytest.mark.criterion("ex11_4.t2.quick_check")
def test_a_ready_collection_with_too_few_documents_is_not_complete(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 5)
    index_everything(store)
    result, error, _ = outcome(lambda: call_execute(make_sensor(vector_store_sensor, store, expected_count=10)))
    assert isinstance(error, TaskDeferred), (
        f"VectorStoreSensor(expected_count=10).execute() on a ready collection of 5: expected a deferral (the "
        f"quick check asks what the trigger asks: ready and at least expected_count), got result {result!r}, "
        f"error {error!r}")


# ---- ex11_4.t2.defers -----------------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t2.defers")
def test_indexing_collection_defers_to_the_trigger(vector_store_sensor, make_store):
    store = make_store("chroma")
    add_documents(store, 10)  # frozen clock: indexing
    sensor = make_sensor(vector_store_sensor, store, poke_interval=3, timeout=600)
    _, deferral, _ = outcome(lambda: call_execute(sensor))
    assert isinstance(deferral, TaskDeferred), (
        f"VectorStoreSensor.execute() while indexing: expected self.defer(...) (TaskDeferred), got {deferral!r}"
    )
    trigger = deferral.trigger
    assert isinstance(trigger, vector_store_sensor.VectorStoreIndexTrigger), (
        f"deferred to {trigger!r}, not a VectorStoreIndexTrigger")
    got = {k: getattr(trigger, k) for k in ("collection_name", "expected_count", "backend", "base_url",
                                             "poll_interval", "timeout")}
    expected = {"collection_name": COLLECTION, "expected_count": 10, "backend": "chroma", "base_url": store.url,
                "poll_interval": 3, "timeout": 600}
    assert got == expected, f"the sensor's trigger: expected {expected} (poke_interval and timeout passed on), got {got}"
    assert deferral.method_name == "execute_complete", f"defer(method_name=...): got {deferral.method_name!r}"
    assert deferral.timeout is not None and timedelta(seconds=600) < deferral.timeout <= timedelta(seconds=900), (
        f"defer(timeout=...): expected a little longer than the trigger's 600 s (a grace, so the trigger's "
        f"detailed timeout normally wins and Airflow's is only the backstop), got {deferral.timeout!r}"
    )


@pytest.mark.criterion("ex11_4.t2.defers")
def test_deferred_sensor_resumes_with_the_stats(vector_store_sensor, make_store, backend):
    store = make_store(backend, index_rate=10, time_scale=20)  # 100 documents in 500 ms: still indexing at the check
    add_documents(store, 100)
    run = drive_deferral(make_sensor(vector_store_sensor, store, expected_count=100))
    assert run.deferred, "VectorStoreSensor on a fresh collection of 100 still indexing: expected it to defer"
    assert isinstance(run.result, dict) and run.result.get("document_count") == 100, (
        f"VectorStoreSensor resumed after the trigger fired ({run.event!r}): expected the stats (document_count 100) "
        f"as its return value, got {run.result!r}"
    )


# ---- ex11_4.t2.poke_mode --------------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t2.poke_mode")
def test_poke_mode_waits_in_the_worker(vector_store_sensor, make_store, backend):
    store = make_store(backend, index_rate=10, time_scale=10)  # 10 documents in 0.1 s, once resumed
    # Indexing holds at 5 of 10 documents until the sensor has looked once, however slow its start-up: a sensor
    # that waits must then look again to see the build finish.
    store.store.create_collection(COLLECTION, 384, exist_ok=True)
    store.store.stall(COLLECTION, at=5)
    add_documents(store, 10)
    resumer = threading.Thread(target=resume_after_first_check, args=(store, backend), daemon=True)
    resumer.start()
    result, error, _ = outcome(lambda: call_execute(make_sensor(vector_store_sensor, store, deferrable=False)))
    polls = status_requests(store, backend)
    assert error is None and isinstance(result, dict) and result.get("document_count") == 10, (
        f"VectorStoreSensor(deferrable=False).execute() while 10 documents get indexed: expected it to poke until "
        f"ready and return the stats, got result {result!r}, error {error!r}"
    )
    assert polls >= 2, f"poke mode: expected several status checks while indexing, got {polls}"


def resume_after_first_check(store, backend, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while status_requests(store, backend) < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    store.store.resume(COLLECTION)


@pytest.mark.criterion("ex11_4.t2.poke_mode")
def test_poke_mode_fails_on_a_failed_build(vector_store_sensor, make_store):
    store = make_store("qdrant", index_rate=10, time_scale=10)
    add_documents(store, 10)
    store.store.fail(COLLECTION, "vector payload too large", at=3)
    _, error, took = outcome(lambda: call_execute(make_sensor(vector_store_sensor, store, deferrable=False, timeout=3)))
    assert isinstance(error, AirflowFailException) and "vector payload too large" in str(error) and took < 2, (
        f"VectorStoreSensor(deferrable=False) on an index build that fails: expected AirflowFailException with the "
        f"store's reason at once, got {error!r} after {took:.1f} s"
    )


@pytest.mark.criterion("ex11_4.t2.poke_mode")
def test_poke_mode_times_out_like_a_sensor(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 10)
    _, error, took = outcome(lambda: call_execute(make_sensor(vector_store_sensor, store, deferrable=False, timeout=0.3)))
    assert isinstance(error, AirflowSensorTimeout) and took < 2, (
        f"VectorStoreSensor(deferrable=False, timeout=0.3) on a collection that never finishes: expected "
        f"AirflowSensorTimeout, got {error!r} after {took:.1f} s"
    )


# ---- ex11_4.t2.completes_or_raises ----------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t2.completes_or_raises")
def test_failed_build_while_deferred_fails_the_task(vector_store_sensor, make_store, backend):
    store = make_store(backend, index_rate=10, time_scale=10)
    add_documents(store, 10)
    store.store.fail(COLLECTION, "HNSW graph build crashed", at=5)
    _, error, took = outcome(lambda: drive_deferral(make_sensor(vector_store_sensor, store, timeout=4)))
    assert isinstance(error, AirflowFailException) and "HNSW graph build crashed" in str(error), (
        f"deferred VectorStoreSensor whose index build fails: expected execute_complete to raise "
        f"AirflowFailException with the store's reason, got {error!r} after {took:.1f} s"
    )


@pytest.mark.criterion("ex11_4.t2.completes_or_raises")
def test_timeout_while_deferred_raises_a_sensor_timeout_with_detail(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 10)
    store.clock.advance(7 / store.store.index_rate)  # stuck at 7/10
    _, error, took = outcome(lambda: drive_deferral(make_sensor(vector_store_sensor, store, timeout=0.4)))
    assert isinstance(error, AirflowSensorTimeout), (
        f"deferred VectorStoreSensor(timeout=0.4) stuck at 7/10: expected AirflowSensorTimeout, got {error!r}"
    )
    assert "7/10" in str(error), (
        f"the sensor's timeout error should carry the trigger's detail (last progress 7/10), got {error}"
    )


@pytest.mark.criterion("ex11_4.t2.completes_or_raises")
def test_a_success_event_returns_its_stats(vector_store_sensor, make_store):
    store = make_store("qdrant")
    sensor = make_sensor(vector_store_sensor, store)
    stats = {"collection": COLLECTION, "state": "ready", "document_count": 10, "indexed_count": 10,
             "dimension": 384, "reason": None, "percent": 100.0}
    event = {"status": "success", "collection": COLLECTION, "message": "ready", "document_count": 10,
             "stats": stats}
    result = sensor.execute_complete(make_context(sensor), event=event)
    assert result == stats, f"execute_complete(event={event!r}): expected the event's stats as XCom, got {result!r}"


@pytest.mark.criterion("ex11_4.t2.completes_or_raises")
def test_unexpected_event_is_not_success(vector_store_sensor, make_store):
    store = make_store("qdrant")
    sensor = make_sensor(vector_store_sensor, store)
    with pytest.raises(Exception) as caught:
        sensor.execute_complete(make_context(sensor), event={"status": "something-else", "message": "?"})
    assert "something-else" in str(caught.value) or "unexpected" in str(caught.value).lower(), (
        f"execute_complete(event={{'status': 'something-else'}}): expected an error naming the event, "
        f"got {caught.value!r}"
    )


# ---- ex11_4.t2.progress_in_log --------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t2.progress_in_log")
def test_poke_mode_logs_progress(vector_store_sensor, make_store, learner_log):
    store = make_store("qdrant", index_rate=1, time_scale=50)  # 20 documents in 0.4 s
    add_documents(store, 20)
    _, error, _ = outcome(lambda: call_execute(make_sensor(vector_store_sensor, store, expected_count=20, deferrable=False,
                                                         poke_interval=0.05)))
    assert error is None, f"VectorStoreSensor(deferrable=False) while indexing 20 documents: got {error!r}"
    lines = learner_log.lines()
    progress = {m.group(1) for line in lines if (m := re.search(r"\b(\d+)/20\b", line)) and "%" in line}
    assert len(progress) >= 2, (
        f"VectorStoreSensor poking while 20 documents get indexed: expected task-log lines with 'indexed/20' "
        f"and a percentage at several counts, got counts {sorted(progress)}"
    )
