"""Task 1 at its edges: what each event, error and log line of the trigger carries, and the cases at the
borders."""

from __future__ import annotations

import asyncio
import copy
import re
import statistics
import time

import pytest

from tests.ex11_4_vector_store_sensor.helpers import (
    COLLECTION,
    ScriptedStore,
    add_documents,
    index_everything,
    qdrant_status_body,
    status_requests,
)
from tests.harness import first_event

pytestmark = pytest.mark.timeout(60)

STATES = {"indexing", "ready", "failed"}


def make_trigger(vector_store_sensor, store=None, *, url=None, backend=None, **overrides):
    arguments = dict(collection_name=COLLECTION, expected_count=10, backend=backend or store.backend,
                     base_url=url or store.url, poll_interval=0.02, timeout=5.0)
    return vector_store_sensor.VectorStoreIndexTrigger(**(arguments | overrides))


def fire(trigger, within: float = 10.0):
    started = time.monotonic()
    event = asyncio.run(first_event(trigger, within))
    return event.payload, time.monotonic() - started


# ---- ex11_4.t1.backends ---------------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t1.backends")
def test_parsed_status_keeps_the_collection_and_stays_in_three_states(vector_store_sensor, make_store, backend):
    store = make_store(backend)
    add_documents(store, 10)
    adapter = vector_store_sensor.get_backend(backend)
    body = vector_store_sensor.request_json(store.url, adapter, COLLECTION, adapter.status_request(COLLECTION))
    parsed = adapter.parse_status(COLLECTION, body)
    assert parsed.collection == COLLECTION, (
        f"{type(adapter).__name__}.parse_status({COLLECTION!r}, ...): expected IndexStatus.collection "
        f"{COLLECTION!r}, got {parsed.collection!r}"
    )
    # A state this workbook's stores never send (a newer server version, say): it still has to become one of
    # the three states, or be refused; never a fourth value nobody checks for.
    odd = copy.deepcopy(body)
    if backend == "qdrant":
        odd["result"]["status"] = "purple"
    else:
        odd["index"]["state"] = "compacting"
    try:
        state = adapter.parse_status(COLLECTION, odd).state
    except NotImplementedError:
        raise
    except Exception:  # refusing an answer it does not understand is fine too
        return
    assert state in STATES, (
        f"{type(adapter).__name__}.parse_status on a status body with an unknown state: expected IndexStatus.state "
        f"to be one of {sorted(STATES)} (or an exception), got {state!r}"
    )


@pytest.mark.criterion("ex11_4.t1.backends")
def test_success_event_names_the_collection(vector_store_sensor, make_store, backend):
    store = make_store(backend)
    add_documents(store, 10)
    index_everything(store)
    payload, _ = fire(make_trigger(vector_store_sensor, store))
    assert payload.get("status") == "success", f"trigger on a ready {backend} collection: got {payload!r}"
    stats = payload.get("stats") or {}
    got = (payload.get("collection"), stats.get("collection"), isinstance(payload.get("message"), str))
    assert got == (COLLECTION, COLLECTION, True), (
        f"success event of a trigger on {COLLECTION!r}: expected the collection under 'collection' and in the "
        f"stats, and a message (a str); got {payload!r}"
    )


@pytest.mark.criterion("ex11_4.t1.backends")
def test_answer_of_another_shape_is_an_error_event_with_the_last_status(vector_store_sensor):
    first = qdrant_status_body(10, 4)  # a proper answer first, then the shape of some other API
    with ScriptedStore([(200, first), (200, {"name": COLLECTION, "vectors": 10})]) as scripted:
        payload, took = fire(make_trigger(vector_store_sensor, url=scripted.url, backend="qdrant", timeout=30))
    assert payload.get("status") == "error" and took < 15, (
        f"qdrant trigger whose store answers 200 with a body not in Qdrant's shape (after one proper status): "
        f"expected an error event at once, got {payload!r} after {took:.1f} s"
    )
    message = payload.get("message")
    assert isinstance(message, str) and message.strip(), f"that error event should say what went wrong: {payload!r}"
    stats = payload.get("stats") or {}
    assert (stats.get("document_count"), stats.get("indexed_count")) == (10, 4), (
        f"that error event's stats: expected the last status seen (4/10 indexed), got {payload!r}"
    )


# ---- ex11_4.t1.error_on_failed --------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t1.error_on_failed")
def test_failed_build_event_carries_the_failed_status(vector_store_sensor, make_store, backend):
    store = make_store(backend)
    add_documents(store, 10)
    store.clock.advance(3 / store.store.index_rate)
    store.store.fail(COLLECTION, "shard 1 lost")
    payload, _ = fire(make_trigger(vector_store_sensor, store, timeout=2))
    stats = payload.get("stats") or {}
    got = (payload.get("status"), payload.get("collection"), stats.get("state"), stats.get("document_count"))
    assert got == ("error", COLLECTION, "failed", 10), (
        f"trigger on a {backend} collection of 10 whose build failed: expected an error event for {COLLECTION!r} "
        f"whose stats are the failed status (state 'failed', 10 documents), got {payload!r}"
    )


@pytest.mark.criterion("ex11_4.t1.error_on_failed")
def test_collection_deleted_while_waiting_is_an_error_with_the_last_status(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 10)
    store.clock.advance(4 / store.store.index_rate)  # 4/10, then frozen

    async def scenario():
        task = asyncio.create_task(first_event(make_trigger(vector_store_sensor, store, timeout=30), within=60))
        async with asyncio.timeout(60):
            while status_requests(store, "qdrant") < 2:  # a second poll: the first has been answered
                if task.done():
                    break
                await asyncio.sleep(0.005)
        store.store.delete_collection(COLLECTION)
        started = time.monotonic()
        payload = (await task).payload
        return payload, time.monotonic() - started

    payload, took = asyncio.run(scenario())
    assert payload.get("status") == "error" and took < 15, (
        f"trigger whose collection is deleted after its first polls: expected an error event at once, got "
        f"{payload!r} after {took:.1f} s"
    )
    stats = payload.get("stats") or {}
    assert (stats.get("document_count"), stats.get("indexed_count")) == (10, 4), (
        f"error event after the collection vanished: expected the stats of the last status seen (4/10 indexed), "
        f"got {payload!r}"
    )


@pytest.mark.criterion("ex11_4.t1.error_on_failed")
def test_missing_collection_error_names_it_even_when_the_store_does_not(vector_store_sensor):
    with ScriptedStore([(404, {"status": {"error": "Not found"}})]) as scripted:  # a 404 that names nothing
        payload, took = fire(make_trigger(vector_store_sensor, url=scripted.url, backend="qdrant", collection_name="gone",
                                          timeout=30))
    assert payload.get("status") == "error" and "gone" in str(payload.get("message")) and took < 15, (
        f"trigger on collection 'gone' whose store answers 404 {{'status': {{'error': 'Not found'}}}}: expected an "
        f"error event at once whose message names the collection, got {payload!r} after {took:.1f} s"
    )


# ---- ex11_4.t1.timeout_with_detail ----------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t1.timeout_with_detail")
def test_timeout_event_names_the_collection_and_carries_the_last_stats(vector_store_sensor, make_store, backend):
    store = make_store(backend)
    add_documents(store, 10)
    store.clock.advance(4 / store.store.index_rate)  # 4/10 indexed, then frozen
    payload, _ = fire(make_trigger(vector_store_sensor, store, timeout=0.3, poll_interval=0.05))
    stats = payload.get("stats") or {}
    got = {"status": payload.get("status"), "collection": payload.get("collection"),
           "document_count": payload.get("document_count"), "stats.collection": stats.get("collection"),
           "stats.indexed_count": stats.get("indexed_count"), "stats.state": stats.get("state")}
    expected = {"status": "timeout", "collection": COLLECTION, "document_count": 10, "stats.collection": COLLECTION,
                "stats.indexed_count": 4, "stats.state": "indexing"}
    assert got == expected, (
        f"timeout event of a {backend} trigger stuck at 4/10: expected {expected} (stats = the last status seen), "
        f"got {payload!r}"
    )


@pytest.mark.criterion("ex11_4.t1.timeout_with_detail")
def test_timeout_comes_on_time_while_the_store_hangs(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 10)
    store.latency = 20.0  # every answer takes 20 s: the first request is still open at the deadline
    payload, took = fire(make_trigger(vector_store_sensor, store, timeout=0.2, poll_interval=0.05))
    assert payload.get("status") == "timeout" and took < 10, (
        f"trigger with timeout=0.2 against a store that takes 20 s to answer: expected its timeout event after "
        f"about 0.2 s (an open request does not extend the deadline), got {payload!r} after {took:.2f} s"
    )


# ---- ex11_4.t1.logs_progress ----------------------------------------------------------------------------
RATE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:[A-Za-z]+\s*)?(?:/\s*s(?:ec)?\b|per\s+second)")


@pytest.mark.criterion("ex11_4.t1.logs_progress")
def test_logged_rate_is_the_indexing_speed(vector_store_sensor, make_store, learner_log):
    store = make_store("qdrant", index_rate=2, time_scale=25)  # 50 documents per real second
    add_documents(store, 30)
    payload, _ = fire(make_trigger(vector_store_sensor, store, expected_count=30, poll_interval=0.05))
    assert payload.get("status") == "success", f"trigger while 30 documents get indexed: got {payload!r}"
    rates = [float(m.group(1)) for line in learner_log.lines()
             if re.search(r"\b\d+/30\b", line) and (m := RATE.search(line))]
    assert len(rates) >= 2, f"trigger while 30 documents get indexed at 50/s: expected progress lines with a rate, got {rates}"
    typical = statistics.median(rates)
    assert 50 / 3 <= typical <= 50 * 3, (
        f"trigger while the store indexes 50 documents per second: expected the logged rate (documents/s) to be "
        f"about 50, the median of the logged rates is {typical:g} (all: {rates})"
    )


@pytest.mark.criterion("ex11_4.t1.logs_progress")
def test_the_poll_that_finds_the_index_ready_logs_its_progress_too(vector_store_sensor, make_store, learner_log):
    store = make_store("chroma")
    add_documents(store, 14)
    index_everything(store)
    payload, _ = fire(make_trigger(vector_store_sensor, store, expected_count=14))
    assert payload.get("status") == "success", f"trigger on a ready collection of 14: got {payload!r}"
    lines = [line for line in learner_log.lines() if re.search(r"\b14/14\b", line) and re.search(r"\d%", line)]
    assert lines, (
        "trigger whose first poll finds a ready collection of 14: expected a log line with the progress it saw "
        "(14/14 and the percentage, progress is logged at every poll), found none"
    )
