"""Task 1: OrderStatusSensor against the scripted order database."""

from __future__ import annotations

import re
import threading

import pytest
from airflow.sdk import PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from fixtures.order_db import OrderDB
from tests.harness import make_context
from tests.harness.reschedule import RescheduledTask


def make_sensor(custom_sensors, db_path, order_id=1, expected_status="shipped", **kwargs):
    return custom_sensors.OrderStatusSensor(
        order_id=order_id, expected_status=expected_status, db_path=str(db_path), task_id="wait_for_order",
        **kwargs,
    )


def poke(sensor):
    return sensor.poke(make_context(sensor))


def is_done(result) -> bool:
    return bool(result.is_done if isinstance(result, PokeReturnValue) else result)


@pytest.mark.criterion("ex04.t1.waits_for_status")
def test_false_until_the_order_ships(custom_sensors, order_db):
    sensor = make_sensor(custom_sensors, order_db.root)
    seen = []
    for step in (0, 15, 15):  # pending, then processing at 15 s, shipped at 30 s
        order_db.advance(step)
        seen.append((order_db.status(1), is_done(poke(sensor))))
    assert seen == [("pending", False), ("processing", False), ("shipped", True)], (
        f"poke() for order 1 waiting for 'shipped' as the order moved on: expected "
        f"[pending: False, processing: False, shipped: True], got {seen}"
    )


@pytest.mark.criterion("ex04.t1.waits_for_status")
def test_waits_for_the_status_asked_for(custom_sensors, order_db):
    sensor = make_sensor(custom_sensors, order_db.root, expected_status="processing")
    assert not is_done(poke(sensor)), "poke() for order 1 (pending) waiting for 'processing': expected not done"
    order_db.advance(15)
    result = poke(sensor)
    assert is_done(result), f"poke() for order 1 now 'processing': expected done, got {result!r}"
    other = make_sensor(custom_sensors, order_db.root, order_id=2)
    assert not is_done(poke(other)), "poke() for order 2 (still processing) waiting for 'shipped': expected not done"
    order_db.advance(15)
    result = poke(sensor)
    assert not is_done(result), (
        f"poke() for order 1, now 'shipped', waiting for 'processing': expected not done (done is when the status "
        f"equals expected_status, not when the order has gone past it), got {result!r}")


@pytest.mark.criterion("ex04.t1.returns_order")
def test_returns_the_order_record_as_xcom(custom_sensors, order_db):
    order_db.advance(30)
    result = poke(make_sensor(custom_sensors, order_db.root))
    assert isinstance(result, PokeReturnValue), (
        f"poke() for a shipped order: expected a PokeReturnValue carrying the order, got {result!r}"
    )
    expected = next(o for o in order_db.orders() if o["id"] == 1)
    assert result.is_done and result.xcom_value == expected, (
        f"poke() for shipped order 1: expected PokeReturnValue(True, {expected}), "
        f"got ({result.is_done!r}, {result.xcom_value!r})"
    )


@pytest.mark.criterion("ex04.t1.both_shapes")
@pytest.mark.parametrize("shape", ["list", "wrapped"])
def test_reads_both_json_shapes(custom_sensors, tmp_path, sim_clock, shape):
    db = OrderDB(tmp_path / shape, clock=sim_clock, shape=shape)
    sensor = make_sensor(custom_sensors, db.path)  # the file itself, not only its folder
    assert not is_done(poke(sensor)), f"poke() on a {shape!r} orders file, order 1 pending: expected not done"
    db.advance(30)
    result = poke(sensor)
    assert is_done(result), f"poke() on a {shape!r} orders file, order 1 shipped: expected done, got {result!r}"


@pytest.mark.criterion("ex04.t1.both_shapes")
def test_reads_the_sqlite_database(custom_sensors, tmp_path, sim_clock):
    db = OrderDB(tmp_path / "sql", clock=sim_clock, sqlite=True)
    db.path.unlink()  # only the SQLite file is left
    sensor = make_sensor(custom_sensors, db.sqlite_path)
    assert not is_done(poke(sensor)), "poke() on orders.sqlite, order 1 pending: expected not done"
    db.advance(30)
    result = poke(sensor)
    assert is_done(result), f"poke() on orders.sqlite, order 1 shipped: expected done, got {result!r}"
    expected = next(o for o in db.orders() if o["id"] == 1)
    assert result.xcom_value == expected, (
        f"poke() on orders.sqlite: expected the order record as XCom, the same as orders.json holds "
        f"({expected}), got {result.xcom_value!r}"
    )


@pytest.mark.criterion("ex04.t1.both_shapes")
def test_reads_a_sqlite_database_named_db(custom_sensors, tmp_path, sim_clock):
    db = OrderDB(tmp_path / "sql", clock=sim_clock, sqlite=True)
    db.advance(30)
    named_db = db.sqlite_path.with_name("orders.db")
    db.sqlite_path.rename(named_db)
    result = poke(make_sensor(custom_sensors, named_db))
    assert is_done(result), f"poke() on {named_db.name} (SQLite), order 1 shipped: expected done, got {result!r}"


@pytest.mark.criterion("ex04.t1.survives_bad_db")
def test_a_lock_is_waited_for_only_sqlite_lock_timeout(custom_sensors, tmp_path, sim_clock):
    db = OrderDB(tmp_path / "sql", clock=sim_clock, sqlite=True)
    db.advance(30)
    sensor = make_sensor(custom_sensors, db.sqlite_path, sqlite_lock_timeout=0.05)

    def hold_lock(locked: threading.Event, poked: threading.Event, released_first: list[bool]) -> None:
        with db.lock_sqlite():
            locked.set()
            released_first.append(not poked.wait(2.0))  # a writer that takes 2 s, unless the poke is over

    for _ in range(3):  # a machine stalled for 2 s within the 0.05 s cannot judge: measure again
        poked, locked, released_first = threading.Event(), threading.Event(), []
        holder = threading.Thread(target=hold_lock, args=(locked, poked, released_first))
        holder.start()
        locked.wait(10)
        result = poke(sensor)
        poked.set()
        holder.join()
        if not released_first[0]:
            break
    assert not is_done(result), (
        f"poke() with sqlite_lock_timeout=0.05 on a database a writer locks for 2 s: expected not done (give "
        f"up after 0.05 s), got {result!r}: it waited for the writer"
    )


@pytest.mark.criterion("ex04.t1.survives_bad_db")
@pytest.mark.parametrize("damage", ["missing", "half_written", "garbage", "wrong_shape", "unreadable"])
def test_bad_database_means_keep_polling(custom_sensors, order_db, sensor_log, damage):
    order_db.advance(30)  # shipped: a sensor that ignores the damage would say done
    if damage == "missing":
        order_db.remove()
    elif damage == "half_written":
        order_db.write_half_written()
    elif damage == "garbage":
        order_db.write_garbage()
    elif damage == "wrong_shape":
        order_db.path.write_text('{"data": {"id": 1, "status": "shipped"}}')
    else:
        order_db.make_unreadable()
    sensor = make_sensor(custom_sensors, order_db.root)
    try:
        result = poke(sensor)
    except Exception as exc:
        pytest.fail(f"poke() with a {damage} orders file raised {type(exc).__name__}: {exc}; "
                    f"expected False and a warning (keep polling)")
    assert not is_done(result), f"poke() with a {damage} orders file: expected not done, got {result!r}"
    assert any(order_db.path.name in m for m in sensor_log.at_least("warning")), (
        f"poke() with a {damage} orders file: expected a warning naming {order_db.path.name}, "
        f"got {sensor_log.messages}"
    )
    order_db.restore()
    assert is_done(poke(sensor)), f"poke() after the {damage} orders file was repaired: expected done"


@pytest.mark.criterion("ex04.t1.survives_bad_db")
def test_a_sqlite_database_not_there_yet_is_not_created(custom_sensors, tmp_path, sensor_log):
    path = tmp_path / "sql" / "orders.sqlite"
    path.parent.mkdir()
    sensor = make_sensor(custom_sensors, path)
    try:
        result = poke(sensor)
    except Exception as exc:
        pytest.fail(f"poke() on {path.name}, not created yet, raised {type(exc).__name__}: {exc}; expected False")
    assert not is_done(result), f"poke() on {path.name}, not created yet: expected not done, got {result!r}"
    assert not path.exists(), (
        f"poke() on {path.name}, not created yet: expected it left alone (opened read-only), but the file now "
        f"exists ({path.stat().st_size} bytes): sqlite3.connect() without mode=ro creates an empty database")


@pytest.mark.criterion("ex04.t1.survives_bad_db")
def test_locked_sqlite_means_keep_polling(custom_sensors, tmp_path, sim_clock, sensor_log):
    db = OrderDB(tmp_path / "sql", clock=sim_clock, sqlite=True)
    db.advance(30)
    sensor = make_sensor(custom_sensors, db.sqlite_path, sqlite_lock_timeout=0.05)
    with db.lock_sqlite():
        try:
            result = poke(sensor)
        except Exception as exc:
            pytest.fail(f"poke() on a locked orders.sqlite raised {type(exc).__name__}: {exc}; expected False")
    assert not is_done(result), f"poke() on a locked orders.sqlite: expected not done, got {result!r}"
    assert any("orders.sqlite" in m for m in sensor_log.at_least("warning")), (
        f"poke() on a locked orders.sqlite: expected a warning naming it, got {sensor_log.messages}"
    )
    assert is_done(poke(sensor)), "poke() once the lock is released: expected done"


@pytest.mark.criterion("ex04.t1.unknown_order")
def test_unknown_order_keeps_polling_and_says_so(custom_sensors, order_db, sensor_log):
    sensor = make_sensor(custom_sensors, order_db.root, order_id=42)
    result = poke(sensor)
    assert not is_done(result), f"poke() for order 42 (not in the DB): expected not done, got {result!r}"
    assert any("42" in m and order_db.path.name in m for m in sensor_log.at_least("warning")), (
        f"poke() for order 42 (not in the DB): expected a warning naming the order and {order_db.path.name}, "
        f"got {sensor_log.messages}"
    )
    order_db.add_order({"id": 42, "customer_id": 142, "status": "shipped", "total": 10.0})
    assert is_done(poke(sensor)), "poke() after order 42 appeared as shipped: expected done"


@pytest.mark.criterion("ex04.t1.fails_on_terminal")
def test_cancelled_order_fails_at_once(custom_sensors, order_db):
    sensor = make_sensor(custom_sensors, order_db.root, order_id=3)
    assert not is_done(poke(sensor)), "poke() for order 3 (confirmed) waiting for 'shipped': expected not done"
    order_db.advance(20)  # order 3 is cancelled
    with pytest.raises(AirflowFailException) as raised:
        poke(sensor)
    assert "cancelled" in str(raised.value) and "3" in str(raised.value), (
        f"poke() for cancelled order 3: expected AirflowFailException naming the order and status, "
        f"got {raised.value!r}"
    )


@pytest.mark.criterion("ex04.t1.fails_on_terminal")
def test_terminal_statuses_are_configurable(custom_sensors, order_db):
    order_db.advance(20)
    waiting = make_sensor(custom_sensors, order_db.root, order_id=3, terminal_statuses=())
    assert not is_done(poke(waiting)), (
        "poke() for cancelled order 3 with terminal_statuses=(): expected not done (keep polling)"
    )
    order_db.set_status(2, "on_hold")
    strict = make_sensor(custom_sensors, order_db.root, order_id=2, terminal_statuses=("on_hold",))
    with pytest.raises(AirflowFailException):
        poke(strict)
    wants_cancelled = make_sensor(custom_sensors, order_db.root, order_id=3, expected_status="cancelled")
    assert is_done(poke(wants_cancelled)), "poke() waiting for 'cancelled' on cancelled order 3: expected done"


@pytest.mark.criterion("ex04.t1.logs_attempts")
def test_each_poke_logs_order_status_and_attempt(custom_sensors, order_db, sensor_log):
    sensor = make_sensor(custom_sensors, order_db.root)
    for step in (0, 15):
        order_db.advance(step)
        poke(sensor)
    lines = sensor_log.messages
    for attempt, status in ((1, "pending"), (2, "processing")):
        assert any(
            re.search(r"\b1\b", line) and status in line and re.search(rf"attempt\W{{0,3}}{attempt}\b", line, re.I)
            for line in lines
        ), (f"poke() #{attempt} of one OrderStatusSensor instance (poke mode, task_reschedule_count 0) for "
            f"order 1: expected a log line with the order id, status {status!r} and 'attempt {attempt}' "
            f"(N = task_reschedule_count + this instance's pokes), got {lines}")


@pytest.mark.criterion("ex04.t1.logs_attempts")
def test_attempts_count_on_across_reschedules(custom_sensors, order_db, sensor_log):
    task = RescheduledTask(lambda: make_sensor(custom_sensors, order_db.root, mode="reschedule"))
    for _ in range(3):  # three reschedule pokes, each on a new instance, the order still pending
        task.poke()
    attempts = [int(m.group(1)) for line in sensor_log.messages
                if (m := re.search(r"attempt\W{0,3}(\d+)", line, re.I)) and "pending" in line]
    assert attempts == [1, 2, 3], (
        f"poke() on a new instance after 0, 1 and 2 reschedules (reschedule mode): expected attempts logged "
        f"[1, 2, 3] (context['task_reschedule_count'] says how many came before), got {attempts} in "
        f"{sensor_log.messages}"
    )
