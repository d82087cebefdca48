"""Exercise 4, Task 1: wait for an order to ship, then process it.

An order can take hours to ship, so the sensor runs in reschedule mode: between pokes it gives its worker
slot back. A cancelled order fails the sensor at once (AirflowFailException skips the retries).

Environment: `WORKBOOK_ORDER_DB` (folder of orders.json, or a .json/.sqlite file; default the seed's
/tmp/mock-ecommerce-db, see `python -m fixtures order-db`), `WORKBOOK_ORDER_ID` (default 1) and
`WORKBOOK_TIME_SCALE` (divides every interval, so tests can run the DAG in compressed time).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.sdk import DAG, task

from solutions.custom_sensors import OrderStatusSensor

DB_PATH = os.environ.get("WORKBOOK_ORDER_DB", "/tmp/mock-ecommerce-db")
ORDER_ID = int(os.environ.get("WORKBOOK_ORDER_ID", "1"))
TIME_SCALE = float(os.environ.get("WORKBOOK_TIME_SCALE", "1"))


def seconds(real_world: float) -> float:
    return real_world / TIME_SCALE


with DAG(
    dag_id="ex04_order_status",
    schedule=None,
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=seconds(300))},
    tags=["exercise-4"],
):
    wait_for_shipment = OrderStatusSensor(
        task_id="wait_for_shipment",
        order_id=ORDER_ID,
        expected_status="shipped",
        db_path=DB_PATH,
        mode="reschedule",  # hours of waiting must not hold a worker slot
        poke_interval=seconds(30),
        timeout=seconds(4 * 3600),  # a shipment later than this is someone's incident, not our wait
    )

    @task(multiple_outputs=False)
    def process_order(order: dict[str, Any]) -> dict[str, Any]:
        return {"order_id": order["id"], "customer_id": order["customer_id"], "total": order["total"],
                "status": order["status"]}

    process_order(wait_for_shipment.output)
