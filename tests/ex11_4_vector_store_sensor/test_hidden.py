"""Task 1, the subtler robustness criteria: transient errors are polled again, sessions are closed."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from tests.ex11_4_vector_store_sensor.helpers import (
    COLLECTION,
    add_documents,
    index_everything,
    status_requests,
)
from tests.harness import first_event

pytestmark = pytest.mark.timeout(60)


def fire(trigger, within: float = 10.0) -> dict:
    return asyncio.run(first_event(trigger, within)).payload


# ---- ex11_4.t1.transient_errors -------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t1.transient_errors")
@pytest.mark.parametrize("status", [503, 502, 429])
def test_transient_answers_are_polled_again(vector_store_sensor, make_store, status):
    store = make_store("qdrant")
    add_documents(store, 6)
    index_everything(store)
    store.fail_next(3, status=status)
    trigger = vector_store_sensor.VectorStoreIndexTrigger(collection_name=COLLECTION, expected_count=6, backend="qdrant",
                                                          base_url=store.url, poll_interval=0.02, timeout=5)
    payload = fire(trigger)
    polls = status_requests(store, "qdrant")
    assert payload.get("status") == "success" and polls >= 4, (
        f"trigger on a ready collection whose first 3 answers are {status}: expected it to poll again and "
        f"succeed (4+ polls), got {payload!r} after {polls} polls"
    )


@pytest.mark.criterion("ex11_4.t1.transient_errors")
def test_slow_answers_are_waited_for(vector_store_sensor, make_store):
    store = make_store("chroma")
    add_documents(store, 6)
    index_everything(store)
    store.latency = 0.3
    trigger = vector_store_sensor.VectorStoreIndexTrigger(collection_name=COLLECTION, expected_count=6, backend="chroma",
                                                          base_url=store.url, poll_interval=0.02, timeout=5)
    payload = fire(trigger)
    assert payload.get("status") == "success", (
        f"trigger on a ready chroma collection answering in 300 ms: expected success, got {payload!r}"
    )


@pytest.mark.criterion("ex11_4.t1.transient_errors")
def test_unreachable_store_is_a_timeout_not_a_crash(vector_store_sensor):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    trigger = vector_store_sensor.VectorStoreIndexTrigger(collection_name=COLLECTION, expected_count=1, backend="qdrant",
                                                          base_url=f"http://127.0.0.1:{port}", poll_interval=0.05,
                                                          timeout=0.5)
    started = time.monotonic()
    payload = fire(trigger)
    took = time.monotonic() - started
    assert payload.get("status") == "timeout" and took < 3, (
        f"trigger against a store that refuses connections (timeout=0.5): expected it to keep trying and end "
        f"with a timeout event, got {payload!r} after {took:.1f} s"
    )
    assert "127.0.0.1" in str(payload) or "connect" in str(payload).lower(), (
        f"timeout event after connection errors: expected it to mention the last error, got {payload!r}"
    )


@pytest.mark.criterion("ex11_4.t1.transient_errors")
def test_timeout_message_gives_the_last_error(vector_store_sensor, make_store):
    store = make_store("qdrant")
    add_documents(store, 6)
    store.fail_next(1000, status=503)  # every answer is an outage until the deadline
    trigger = vector_store_sensor.VectorStoreIndexTrigger(collection_name=COLLECTION, expected_count=6, backend="qdrant",
                                                          base_url=store.url, poll_interval=0.05, timeout=0.4)
    payload = fire(trigger)
    message = str(payload.get("message"))
    assert payload.get("status") == "timeout" and "503" in message, (
        f"trigger whose store answers 503 until the timeout: expected a timeout event whose message (what the "
        f"sensor's AirflowSensorTimeout will say) gives the last error (503), got {payload!r}"
    )


# ---- ex11_4.t1.closes_session ---------------------------------------------------------------------------
@pytest.mark.criterion("ex11_4.t1.closes_session")
def test_cancelled_trigger_closes_its_http_session(vector_store_sensor, make_store, sessions):
    store = make_store("qdrant")
    add_documents(store, 10)  # frozen: never ready
    trigger = vector_store_sensor.VectorStoreIndexTrigger(collection_name=COLLECTION, expected_count=10, backend="qdrant",
                                                          base_url=store.url, poll_interval=0.02, timeout=60)

    async def run_then_cancel():
        async def consume():
            async for _ in trigger.run():
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)
        task.cancel()  # what the triggerer does when the task is cleared or times out
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run_then_cancel())
    polls = status_requests(store, "qdrant")
    assert sessions and polls >= 2, (
        f"trigger.run() for 0.3 s: expected it to poll through an aiohttp.ClientSession, saw {len(sessions)} "
        f"sessions and {polls} polls"
    )
    still_open = [s for s in sessions if not s.closed]
    assert not still_open, (
        f"trigger.run() cancelled while waiting: {len(still_open)} of {len(sessions)} aiohttp sessions left "
        f"open (use `async with aiohttp.ClientSession() as session:` around the polling loop)"
    )
