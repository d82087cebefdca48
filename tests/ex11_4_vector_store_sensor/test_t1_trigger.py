"""Task 1: VectorStoreIndexTrigger polls the index status from the event loop and fires exactly once."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import pytest

from tests.ex11_4_vector_store_sensor.helpers import (
    COLLECTION,
    add_documents,
    index_everything,
    status_requests,
)
from tests.ex11_4_vector_store_sensor.probes import first_event_and_worst_loop_gap
from tests.harness import collect_events, first_event, roundtrip, run_in_fresh_process
from tests.harness.remote import subject_module
from tests.harness.time_travel import shifted

pytestmark = pytest.mark.timeout(60)
patches = subject_module("tests.harness.patches")  # replacements built where the trigger runs


def make_trigger(vector_store_sensor, store, **overrides):
    arguments = dict(collection_name=COLLECTION, expected_count=10, backend=store.backend, base_url=store.url,
                     poll_interval=0.02, timeout=5.0)
    return vector_store_sensor.VectorStoreIndexTrigger(**(arguments | overrides))


def fire(trigger, within: float = 10.0):
    """The trigger's first event payload and how long it took (real seconds)."""
    started = time.monotonic()
    event = asyncio.run(first_event(trigger, within))
    return event.payload, time.monotonic() - started


# ---- ex11_4.t1.serializes -------------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t1.serializes")
def test_trigger_round_trips_every_argument(vector_store_sensor):
    trigger = vector_store_sensor.VectorStoreIndexTrigger(collection_name="manuals", expected_count=123, backend="chroma",
                                                          base_url="http://127.0.0.1:9999", poll_interval=7.5, timeout=321.0)
    rebuilt = roundtrip(trigger)
    got = {name: getattr(rebuilt, name) for name in
           ("collection_name", "expected_count", "backend", "base_url", "poll_interval", "timeout")}
    expected = {"collection_name": "manuals", "expected_count": 123, "backend": "chroma",
                "base_url": "http://127.0.0.1:9999", "poll_interval": 7.5, "timeout": 321.0}
    assert got == expected, f"VectorStoreIndexTrigger rebuilt from serialize(): expected {expected}, got {got}"


@pytest.mark.integration  # a second Python process importing Airflow: seconds, not milliseconds
@pytest.mark.criterion("ex11_4.t1.serializes")
def test_trigger_fires_when_rebuilt_in_a_fresh_process(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 10)
    index_everything(store)
    payload = run_in_fresh_process(make_trigger(vector_store_sensor, store), timeout=30)
    assert payload.get("status") == "success", (
        f"VectorStoreIndexTrigger rebuilt in a new process (as the triggerer does) on a ready collection: "
        f"expected status 'success', got {payload!r}"
    )


# ---- ex11_4.t1.backends ---------------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t1.backends")
def test_success_event_carries_the_stats_on_each_backend(vector_store_sensor, make_store, backend):
    store = make_store(backend)
    add_documents(store, 12)
    index_everything(store)
    payload, _ = fire(make_trigger(vector_store_sensor, store, expected_count=12))
    assert payload.get("status") == "success", f"trigger on a ready {backend} collection: expected success, got {payload!r}"
    assert payload.get("document_count") == 12, (
        f"trigger on a ready {backend} collection of 12: expected document_count 12, got {payload!r}"
    )
    stats = payload.get("stats") or {}
    expected = {"state": "ready", "document_count": 12, "indexed_count": 12, "dimension": 384}
    got = {key: stats.get(key) for key in expected}
    assert got == expected, f"trigger on a ready {backend} collection: expected stats with {expected}, got {stats!r}"


@pytest.mark.criterion("ex11_4.t1.backends")
def test_each_backend_reads_its_own_status_fields(vector_store_sensor, make_store, backend):
    store = make_store(backend)
    add_documents(store, 10)
    store.clock.advance(4 / store.store.index_rate)  # 4 of 10 indexed
    adapter = vector_store_sensor.get_backend(backend)
    status = vector_store_sensor.request_json(store.url, adapter, COLLECTION, adapter.status_request(COLLECTION))
    parsed = adapter.parse_status(COLLECTION, status)
    got = (parsed.state, parsed.document_count, parsed.indexed_count, parsed.dimension)
    assert got == ("indexing", 10, 4, 384), (
        f"{type(adapter).__name__}.parse_status({status!r}): expected (state, documents, indexed, dimension) "
        f"('indexing', 10, 4, 384), got {got}"
    )


@pytest.mark.criterion("ex11_4.t1.backends")
def test_a_failed_build_gives_the_stores_reason_on_each_backend(vector_store_sensor, make_store, backend):
    store = make_store(backend)
    add_documents(store, 10)
    store.store.fail(COLLECTION, "HNSW graph build crashed", at=0)
    adapter = vector_store_sensor.get_backend(backend)
    status = vector_store_sensor.request_json(store.url, adapter, COLLECTION, adapter.status_request(COLLECTION))
    parsed = adapter.parse_status(COLLECTION, status)
    assert (parsed.state, parsed.reason) == ("failed", "HNSW graph build crashed"), (
        f"{type(adapter).__name__}.parse_status({status!r}): expected state 'failed' with the store's reason "
        f"'HNSW graph build crashed' (the same IndexStatus whatever the dialect), got {(parsed.state, parsed.reason)}")


@pytest.mark.criterion("ex11_4.t1.backends")
def test_trigger_pointed_at_the_other_dialect_reports_an_error(vector_store_sensor, make_store):
    store = make_store("chroma")
    add_documents(store, 3)
    index_everything(store)
    payload, took = fire(make_trigger(vector_store_sensor, store, backend="qdrant", expected_count=3, timeout=3.0))
    assert payload.get("status") == "error" and took < 2, (
        f"qdrant trigger against a chroma store (404 on every qdrant path): expected an error event at once, "
        f"got {payload!r} after {took:.1f} s"
    )


# ---- ex11_4.t1.polls_async ------------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t1.polls_async")
def test_polling_never_blocks_the_event_loop(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 10)  # frozen clock: never ready
    store.latency = 0.15  # every answer takes 150 ms
    payload, worst_gap = first_event_and_worst_loop_gap(make_trigger(vector_store_sensor, store, timeout=0.8))
    polls = status_requests(store, "qdrant")
    assert worst_gap < 0.1, (
        f"trigger.run() against a store answering in 150 ms: the event loop stalled for {worst_gap * 1000:.0f} ms "
        f"(a blocking call in run(): use aiohttp and asyncio.sleep, never requests or time.sleep)"
    )
    assert polls >= 2, f"trigger.run() for 0.8 s with poll_interval 0.02: expected several status polls, got {polls}"
    assert payload.get("status") == "timeout", f"trigger on a collection that never finishes: got {payload!r}"


@pytest.mark.criterion("ex11_4.t1.polls_async")
def test_waiting_between_polls_never_blocks_the_event_loop(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 10)  # frozen clock: never ready
    _, worst_gap = first_event_and_worst_loop_gap(make_trigger(vector_store_sensor, store, poll_interval=0.6, timeout=1.5))
    # A time.sleep(0.6) between polls stalls the loop for 0.6 s; 0.4 s leaves a loaded machine its pauses.
    assert worst_gap < 0.4, (
        f"trigger.run() with poll_interval 0.6: the event loop stalled for {worst_gap * 1000:.0f} ms between polls "
        f"(wait with asyncio.sleep, never time.sleep)")


# ---- ex11_4.t1.success_needs_ready ----------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t1.success_needs_ready")
def test_all_documents_stored_is_not_ready(vector_store_sensor, make_store, backend):
    store = make_store(backend)
    add_documents(store, 10)  # 10 of 10 stored, 0 indexed, clock frozen: status stays "indexing"
    payload, _ = fire(make_trigger(vector_store_sensor, store, expected_count=10, timeout=0.5))
    assert payload.get("status") == "timeout", (
        f"trigger with expected_count=10 on a {backend} collection that stores 10 documents but is still "
        f"indexing (0/10): expected to keep waiting until the timeout, got {payload!r}"
    )


@pytest.mark.criterion("ex11_4.t1.success_needs_ready")
def test_ready_with_too_few_documents_keeps_waiting(vector_store_sensor, make_store):
    store = make_store("qdrant", index_rate=1000, time_scale=1)
    add_documents(store, 5)
    index_everything(store)
    late = threading.Timer(0.3, add_documents, args=(store, 8))  # docs 5..7 arrive later
    late.start()
    try:
        payload, took = fire(make_trigger(vector_store_sensor, store, expected_count=8, timeout=5))
    finally:
        late.cancel()
    assert payload.get("status") == "success" and payload.get("document_count") == 8 and took >= 0.25, (
        f"trigger with expected_count=8 on a ready collection of 5 that receives 3 more after 0.3 s: expected "
        f"success with document_count 8 after the late documents, got {payload!r} after {took:.2f} s"
    )


@pytest.mark.criterion("ex11_4.t1.success_needs_ready")
def test_ready_with_more_documents_than_expected_is_success(vector_store_sensor, make_store):
    store = make_store("qdrant", index_rate=1000, time_scale=1)
    add_documents(store, 12)
    index_everything(store)
    payload, _ = fire(make_trigger(vector_store_sensor, store, expected_count=10, timeout=5))
    assert payload.get("status") == "success" and payload.get("document_count") == 12, (
        f"trigger with expected_count=10 on a ready collection of 12: expected success (ready and at least "
        f"expected_count documents), got {payload!r}")


# ---- ex11_4.t1.error_on_failed --------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t1.error_on_failed")
def test_failed_build_is_an_error_with_the_reason(vector_store_sensor, make_store, backend):
    store = make_store(backend, index_rate=20, time_scale=5)
    add_documents(store, 10)
    store.store.fail(COLLECTION, "disk quota exceeded on shard 2", at=4)
    payload, took = fire(make_trigger(vector_store_sensor, store, timeout=4))
    assert payload.get("status") == "error", (
        f"trigger on a {backend} collection whose index build fails at 4/10: expected an 'error' event, "
        f"got {payload!r} after {took:.1f} s"
    )
    assert "disk quota exceeded on shard 2" in str(payload.get("message")), (
        f"error event of a failed build: expected the store's reason in its message, got {payload!r}"
    )
    assert took < 2, f"failed build: expected the error event at once, it took {took:.1f} s"


@pytest.mark.criterion("ex11_4.t1.error_on_failed")
def test_failed_after_everything_is_indexed_is_still_an_error(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 10)
    index_everything(store)
    store.store.fail(COLLECTION, "segment checksum mismatch")  # counts complete, status failed
    payload, _ = fire(make_trigger(vector_store_sensor, store, timeout=1))
    assert payload.get("status") == "error" and "segment checksum mismatch" in str(payload.get("message")), (
        f"trigger on a collection with 10/10 indexed but status failed ('segment checksum mismatch'): "
        f"expected an error event with the reason, got {payload!r}"
    )


@pytest.mark.criterion("ex11_4.t1.error_on_failed")
def test_collection_that_disappears_is_an_error(vector_store_sensor, make_store):
    store = make_store("qdrant")
    payload, took = fire(make_trigger(vector_store_sensor, store, collection_name="never-created", timeout=3))
    assert payload.get("status") == "error" and "never-created" in str(payload.get("message")) and took < 2, (
        f"trigger on a collection that does not exist (404): expected an error event naming it at once, "
        f"got {payload!r} after {took:.1f} s"
    )


# ---- ex11_4.t1.timeout_with_detail ----------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t1.timeout_with_detail")
def test_timeout_event_says_what_was_last_seen(vector_store_sensor, make_store, backend):
    store = make_store(backend)
    add_documents(store, 10)
    store.clock.advance(4 / store.store.index_rate)  # 4/10 indexed, then frozen
    trigger = make_trigger(vector_store_sensor, store, timeout=0.4, poll_interval=0.05)
    started = time.monotonic()
    events = asyncio.run(collect_events(trigger, within=10))
    took = time.monotonic() - started
    assert len(events) == 1, f"trigger that times out: expected exactly one event, got {[e.payload for e in events]}"
    payload = events[0].payload
    assert payload.get("status") == "timeout", f"trigger stuck at 4/10 with timeout=0.4: got {payload!r}"
    message = str(payload.get("message"))
    missing = [part for part in ("4/10", "indexing", COLLECTION) if part not in message]
    assert not missing, (
        f"timeout event of a {backend} collection stuck indexing at 4/10: the message should name the collection, "
        f"the last status and the progress, lacks {missing}: {message!r}"
    )
    assert 0.35 <= took < 2, f"trigger with timeout=0.4: expected its event after about 0.4 s, got it after {took:.2f} s"


@pytest.mark.criterion("ex11_4.t1.timeout_with_detail")
def test_timeout_is_kept_even_with_a_long_poll_interval(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 10)
    payload, took = fire(make_trigger(vector_store_sensor, store, timeout=0.3, poll_interval=30))
    assert payload.get("status") == "timeout" and took < 2, (
        f"trigger with timeout=0.3 and poll_interval=30: expected a timeout event after about 0.3 s (never sleep "
        f"past the deadline), got {payload!r} after {took:.2f} s"
    )


async def polled_until(condition, task: asyncio.Task) -> None:
    """Yield to the loop until `condition()` holds (a state to reach, not a delay) or the trigger ended."""
    async with asyncio.timeout(20):
        while not condition():
            if task.done():
                return
            await asyncio.sleep(0.005)


@pytest.mark.criterion("ex11_4.t1.timeout_with_detail")
def test_the_timeout_is_measured_on_a_monotonic_clock(vector_store_sensor, make_store, monkeypatch):
    store = make_store("qdrant")
    add_documents(store, 10)  # stays indexing until the test moves the store's clock

    async def scenario():
        trigger = make_trigger(vector_store_sensor, store, timeout=30, poll_interval=0.02)
        task = asyncio.create_task(first_event(trigger, within=20))
        await polled_until(lambda: status_requests(store, "qdrant") >= 1, task)
        # The wall clock jumps an hour ahead (an NTP correction, a VM resumed): the deadline must not move.
        trigger_time, trigger_timezone = subject_module("time"), subject_module("airflow.sdk.timezone")
        monkeypatch.setattr(trigger_time, "time", shifted(trigger_time.time, 3600))
        monkeypatch.setattr(trigger_timezone, "utcnow", shifted(trigger_timezone.utcnow, 3600))
        polls = status_requests(store, "qdrant")
        await polled_until(lambda: status_requests(store, "qdrant") >= polls + 2, task)
        index_everything(store)
        return (await task).payload

    payload = asyncio.run(scenario())
    assert payload.get("status") == "success", (
        f"trigger with timeout=30: the wall clock jumped 1 h ahead after the first poll, then indexing finished: "
        f"expected success (the timeout is measured on a monotonic clock), got {payload!r}"
    )


# ---- ex11_4.t1.logs_progress ----------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t1.logs_progress")
def test_progress_is_logged_at_every_poll_even_without_change(vector_store_sensor, make_store, learner_log):
    store = make_store("qdrant")
    add_documents(store, 20)  # frozen clock: 0/20 indexed at every poll
    payload, _ = fire(make_trigger(vector_store_sensor, store, expected_count=20, poll_interval=0.05, timeout=0.6))
    polls = status_requests(store, "qdrant")
    messages = learner_log.lines()
    progress = [m for m in messages if re.search(r"\b0/20\b", m) and re.search(r"\d%", m)]
    assert payload.get("status") == "timeout" and polls >= 3 and len(progress) >= polls - 1, (
        f"trigger polling a collection stuck at 0/20 for 0.6 s: expected a progress line at every poll ({polls} "
        f"polls), got {len(progress)}: {progress[-3:]}")


@pytest.mark.criterion("ex11_4.t1.timeout_with_detail")
def test_the_deadline_is_monotonic_not_the_wall_clock(vector_store_sensor, make_store, monkeypatch):
    store = make_store("qdrant", index_rate=1000, time_scale=1)
    add_documents(store, 10)
    late = threading.Timer(0.3, index_everything, args=(store,))
    # The wall clock jumps an hour forward at every reading (an NTP step, a VM resumed): a deadline kept on it
    # passes at once; one on time.monotonic() does not.
    monkeypatch.setattr(subject_module("time"), "time", patches.wall_clock_jumping(3600))
    late.start()
    try:
        payload, _ = fire(make_trigger(vector_store_sensor, store, expected_count=10, timeout=10))
    finally:
        late.cancel()
        monkeypatch.undo()
    assert payload.get("status") == "success", (
        f"trigger with timeout=10 while the wall clock jumps an hour at every reading, the index ready after "
        f"0.3 s: expected success (the deadline on time.monotonic()), got {payload!r}")


@pytest.mark.criterion("ex11_4.t1.logs_progress")
def test_progress_is_logged_while_indexing(vector_store_sensor, make_store, learner_log):
    store = make_store("qdrant", index_rate=1, time_scale=50)  # 20 documents take 0.4 s
    add_documents(store, 20)
    payload, _ = fire(make_trigger(vector_store_sensor, store, expected_count=20, poll_interval=0.03))
    assert payload.get("status") == "success", f"trigger while 20 documents get indexed: got {payload!r}"
    # Airflow's structured log goes to the console; a stdlib logger's records are kept as records.
    messages = learner_log.lines()
    with_counts = [m for m in messages if re.search(r"\b\d+/20\b", m)]
    progress = [m for m in with_counts if re.search(r"\d%", m)]
    assert progress or not with_counts, (
        f"trigger polling while 20 documents get indexed: the progress lines need the percentage written with a "
        f"literal '%' (e.g. '10/20 documents indexed (50%)'), got {with_counts[-3:]}"
    )
    counts = {re.search(r"\b(\d+)/20\b", m).group(1) for m in progress}
    assert len(counts) >= 2, (
        f"trigger polling while 20 documents get indexed: expected progress lines with 'indexed/total' and a "
        f"percentage at several counts, got {progress or messages[-5:]}"
    )
    assert any(re.search(r"/s\b|per second|/sec", m) for m in progress), (
        f"progress lines should include the indexing rate (documents/s): {progress[-3:]}"
    )
