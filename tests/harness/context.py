"""A real Airflow `Context` for calling `poke()` or `execute()` directly, without a DB or a Task Runner."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime
from typing import Any

from airflow.sdk import DAG, BaseOperator, Context, timezone
from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType, TIRunContext
from airflow.sdk.bases.operator import ExecutorSafeguard
from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

from tests.harness.remote import in_subject

HARNESS_DAG_ID = "workbook_harness"


def attach_to_dag(task: BaseOperator) -> BaseOperator:
    """Tasks need a DAG for their context; give a free-standing one a throwaway DAG."""
    if not task.has_dag():
        DAG(HARNESS_DAG_ID, schedule=None).add_task(task)
    return task


@in_subject
def make_context(
    task: BaseOperator,
    *,
    try_number: int = 1,
    logical_date: datetime | None = None,
    conf: dict[str, Any] | None = None,
    map_index: int = -1,
    ti_id: uuid.UUID | None = None,
    task_reschedule_count: int = 0,
) -> Context:
    """The context the Task Runner would give `task`: `ti`, `dag_run`, `ds`, `params`, ...

    Works for `poke()`, `execute()` in poke mode and `execute_complete()`. For reschedule mode, poke after
    poke on new instances, use `tests.harness.reschedule.RescheduledTask`, which passes the task instance's
    id, map index and reschedule count on; a whole DAG run needs the metadata DB (use `run_dag`).
    """
    attach_to_dag(task)
    now = timezone.utcnow()
    logical_date = logical_date or now
    run_id = f"harness__{logical_date.isoformat()}"
    dag_run = DagRun.model_construct(
        dag_id=task.dag_id,
        run_id=run_id,
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        run_after=now,
        start_date=now,
        run_type=DagRunType.MANUAL,
        state=DagRunState.RUNNING,
        conf=conf or {},
        consumed_asset_events=[],
        partition_key=None,
        partition_date=None,
        clear_number=0,
    )
    ti = RuntimeTaskInstance.model_construct(
        id=ti_id or uuid.uuid4(),
        task_id=task.task_id,
        dag_id=task.dag_id,
        run_id=run_id,
        try_number=try_number,
        map_index=map_index,
        dag_version_id=uuid.uuid4(),
        task=task,
        start_date=now,
        max_tries=task.retries,
        _ti_context_from_server=TIRunContext.model_construct(
            dag_run=dag_run, max_tries=task.retries, task_reschedule_count=task_reschedule_count
        ),
    )
    return ti.get_template_context()


@contextlib.contextmanager
def as_task_runner(task: BaseOperator):
    """Call `execute()` as the Task Runner does (otherwise Airflow warns it was called from outside)."""
    token = ExecutorSafeguard.tracker.set(task)
    try:
        yield
    finally:
        ExecutorSafeguard.tracker.reset(token)


@in_subject
def call_execute(task: BaseOperator, context: Context | None = None) -> Any:
    """`task.execute(context)` with a real context; deferral raises `TaskDeferred` (see `drive_deferral`)."""
    context = context if context is not None else make_context(task)
    with as_task_runner(task):
        return task.execute(context)
