"""A sensor driven through reschedule pokes the way Airflow runs it in reschedule mode, without a DB.

In reschedule mode every poke is a new task process: a new operator instance, a context whose
`task_reschedule_count` is the number of reschedules recorded for this task instance so far, and
`ti.get_first_reschedule_date()` answered from those records (the start date of the first one). A retry is
a new try with a new task instance id, so both start again from zero. `RescheduledTask` keeps those records
as the API server does (`TaskReschedule` rows keyed by the task instance id, see
`airflow/api_fastapi/execution_api/routes/task_reschedules.py` and `task_instances.py`) and runs Airflow's
own `RuntimeTaskInstance.get_first_reschedule_date()` against them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow.sdk import BaseOperator, Context, PokeReturnValue, timezone
from airflow.sdk.exceptions import AirflowRescheduleException
from airflow.sdk.execution_time import task_runner
from airflow.sdk.execution_time.comms import GetTaskRescheduleStartDate, TaskRescheduleStartDate

from tests.harness.context import as_task_runner, make_context
from tests.harness.remote import in_subject


@dataclass(frozen=True)
class RescheduleRecord:
    """One `TaskReschedule` row: the poke that started at `start_date` asked to run again later."""

    ti_id: uuid.UUID
    try_number: int
    start_date: datetime
    reschedule_date: datetime


class RescheduleRecords:
    """What the supervisor asks the API server for while a task runs, answered from the records kept here.

    Only the reschedule start date is asked in a poke; any other request means the code under test needs the
    metadata DB, so it fails loudly (use `run_dag` for that).
    """

    def __init__(self) -> None:
        self.rows: list[RescheduleRecord] = []

    def send(self, msg: Any) -> Any:
        if isinstance(msg, GetTaskRescheduleStartDate):
            starts = [row.start_date for row in self.rows if row.ti_id == msg.ti_id]
            return TaskRescheduleStartDate(start_date=starts[0] if starts else None)
        raise RuntimeError(
            f"the reschedule harness answers only GetTaskRescheduleStartDate, got {type(msg).__name__}: "
            f"code that talks to the API server needs run_dag()"
        )


@contextlib.contextmanager
def _supervised_by(records: RescheduleRecords) -> Generator[None]:
    missing = object()
    previous = getattr(task_runner, "SUPERVISOR_COMMS", missing)
    task_runner.SUPERVISOR_COMMS = records
    try:
        yield
    finally:
        if previous is missing:
            del task_runner.SUPERVISOR_COMMS
        else:
            task_runner.SUPERVISOR_COMMS = previous


def _is_done(result: Any) -> bool:
    return bool(result.is_done if isinstance(result, PokeReturnValue) else result)


@dataclass
class _RescheduledTask:
    """One task instance (`map_index`) of one DAG run (`logical_date`), poked in reschedule mode.

    `make_task()` builds the operator; it is called again for every poke, as every reschedule is a new
    process. `poke()` and `execute()` record a reschedule when the poke was not done, the way the Task Runner
    does when the sensor raises `AirflowRescheduleException`; `retry()` starts the next try.
    """

    make_task: Callable[[], BaseOperator]
    logical_date: datetime = field(default_factory=lambda: datetime(2024, 1, 1, tzinfo=timezone.utc))
    map_index: int = -1
    try_number: int = 1
    conf: dict[str, Any] | None = None
    records: RescheduleRecords = field(default_factory=RescheduleRecords)
    ti_id: uuid.UUID = field(default_factory=uuid.uuid4)
    instances: list[BaseOperator] = field(default_factory=list)

    @property
    def reschedule_count(self) -> int:
        """What the API server puts in `task_reschedule_count`: this try's reschedules so far."""
        return sum(1 for row in self.records.rows if row.ti_id == self.ti_id)

    def next_instance(self) -> tuple[BaseOperator, Context]:
        """A new operator instance and the context its poke would get now."""
        task = self.make_task()
        self.instances.append(task)
        context = make_context(task, try_number=self.try_number, logical_date=self.logical_date, conf=self.conf,
                               map_index=self.map_index, ti_id=self.ti_id,
                               task_reschedule_count=self.reschedule_count)
        return task, context

    def poke(self) -> Any:
        """One poke on a new instance; a poke that is not done is recorded as a reschedule."""
        task, context = self.next_instance()
        started = timezone.utcnow()
        with _supervised_by(self.records):
            result = task.poke(context)
        if not _is_done(result):
            self._record(started, started)
        return result

    def execute(self) -> Any:
        """`execute()` on a new instance; returns its result, or the `AirflowRescheduleException` it raised
        (recorded as a reschedule, as the Task Runner does)."""
        task, context = self.next_instance()
        started = timezone.utcnow()
        try:
            with _supervised_by(self.records), as_task_runner(task):
                return task.execute(context)
        except AirflowRescheduleException as reschedule:
            self._record(started, reschedule.reschedule_date)
            return reschedule

    def retry(self) -> None:
        """The next try: Airflow gives it a new task instance id, so it has no reschedules yet."""
        self.try_number += 1
        self.ti_id = uuid.uuid4()

    def _record(self, started: datetime, reschedule_date: datetime) -> None:
        self.records.rows.append(RescheduleRecord(self.ti_id, self.try_number, started, reschedule_date))


@in_subject(always=True)
def mapped(make_task: Callable[[], BaseOperator], count: int, **kwargs: Any) -> list[_RescheduledTask]:
    """The `count` mapped task instances (map indexes 0..count-1) of one task in one DAG run."""
    return [RescheduledTask(make_task, map_index=index, **kwargs) for index in range(count)]


# In a graded run the whole reschedule loop runs in the subject, beside the sensor: the Task Runner's comms it
# stands in for are the learner's process's own. `make_task` is called back from there.
RescheduledTask = in_subject(_RescheduledTask, always=True)
