"""Several triggers firing for the same context at the same moment, from threads or processes.

Each worker's duplicate check is held open: the statement that follows a worker's `SELECT` on
`trigger_executions` waits until a second worker has reached the same point (or `pause` seconds pass).
A check that runs outside the insert's transaction lets both workers through; one that holds the write lock
(`BEGIN IMMEDIATE`) makes the second worker wait for the first one's commit, so it sees the running row.
"""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.harness.remote import in_subject, note_measured

TRIGGER = "concurrent_watcher"
CONTEXT = {"inbox": "/data/inbox", "filename": "data_file_1.csv"}
# Longer than any worker needs to reach its check, shorter than sqlite3's default 5 s busy timeout, so a
# correct audit only waits this long once and never fails with "database is locked".
PAUSE = 2.0


def _is_duplicate_check(sql: str) -> bool:
    return "trigger_executions" in sql and sql.lstrip().upper().startswith("SELECT")


def holding_the_check_open(barrier: Any = None, pause: float = PAUSE, parties: int = 2
                           ) -> Callable[..., sqlite3.Connection]:
    """A `sqlite3.connect` whose connections pause after each duplicate check, at `barrier` (without one, a
    `threading.Barrier(parties)` of this process: built where the checking code runs)."""
    real_connect = sqlite3.connect
    if barrier is None:
        barrier = threading.Barrier(parties)

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        connection = real_connect(*args, **kwargs)
        checked = threading.local()

        def trace(sql: str) -> None:
            if getattr(checked, "pending", False):
                checked.pending = False
                try:
                    barrier.wait(pause)
                except threading.BrokenBarrierError:
                    pass  # no second worker came while this one held its check: it goes on alone
            if _is_duplicate_check(sql):
                checked.pending = True

        connection.set_trace_callback(trace)
        return connection

    return connect


def start_in_process(db_path: str, ready: Any, pause_barrier: Any) -> None:
    """Child process: wait until every worker is ready, then start the same context as the others."""
    import sqlite3 as child_sqlite3

    from tests.harness.target import current_target

    audit = current_target().module("event_driven").ActivationAudit(db_path)
    child_sqlite3.connect = holding_the_check_open(pause_barrier)
    ready.wait(120)  # every child has imported Airflow: start together
    audit.start_unless_running(TRIGGER, CONTEXT, False)


def start_in_processes(db_path: Path, workers: int) -> list[int | None]:
    """Run `workers` processes against `db_path`; their exit codes. In a graded run the processes are started
    by the subject: they import the learner's code, which the judge never does."""
    note_measured("the exit codes of worker processes")
    return _start_in_processes(db_path, workers)


@in_subject(always=True)
def _start_in_processes(db_path: Path, workers: int) -> list[int | None]:
    spawn = multiprocessing.get_context("spawn")
    ready, pause_barrier = spawn.Barrier(workers), spawn.Barrier(2)
    processes = [spawn.Process(target=start_in_process, args=(str(db_path), ready, pause_barrier))
                 for _ in range(workers)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(180)
        if process.is_alive():
            process.kill()
            process.join()
    return [process.exitcode for process in processes]


def running_rows(db_path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db_path) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(row) for row in connection.execute(
            "SELECT * FROM trigger_executions WHERE trigger_name = ? AND completed_at IS NULL", (TRIGGER,))]
