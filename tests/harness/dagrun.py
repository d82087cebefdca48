"""Run a DAG of the target's DAG folder with `dag.test()`: real Airflow, the session's SQLite metadata DB,
deferred triggers run inline. Returns task states, XComs and the log, bounded in time."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import signal
import sys
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.harness.target import current_target

NOT_IMPLEMENTED = re.compile(r"NotImplementedError: (Exercise [^\n]*)")


class DagRunTimedOut(BaseException):
    """Raised into `dag.test()` when it outlives its bound (a BaseException, so task code can't swallow it)."""


@dataclass
class DagRunResult:
    dag_id: str
    run_id: str | None
    state: str
    task_states: dict[str, str]
    xcoms: dict[str, Any]
    log: str = field(repr=False)

    @property
    def log_lines(self) -> list[str]:
        return self.log.splitlines()

    def assert_success(self) -> DagRunResult:
        """Raise a readable error unless the run succeeded (a starter's NotImplementedError as itself)."""
        if self.state == "success":
            return self
        if match := NOT_IMPLEMENTED.search(self.log):
            raise NotImplementedError(match.group(1).strip())
        errors = [line for line in self.log_lines if re.search(r"\b(error|Error|Exception|failed)\b", line)]
        raise AssertionError(
            f"dag.test() of {self.dag_id!r}: expected state 'success', got {self.state!r}; "
            f"task states {self.task_states}\n" + "\n".join(errors[-12:])
        )


def dag_file(dag_id: str, dags_folder: Path) -> Path:
    """DAG files are named after their dag_id."""
    path = dags_folder / f"{dag_id}.py"
    if not path.exists():
        raise FileNotFoundError(f"no DAG file {path.relative_to(dags_folder.parent.parent)} for dag_id {dag_id!r}")
    return path


def load_dag(dag_id: str, dags_folder: Path | None = None):
    """Import the DAG file as the DAG processor does (DAGs made in a `with DAG(...)` block count too)."""
    from airflow.sdk import DAG
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    folder = dags_folder or current_target().dags_folder
    path = dag_file(dag_id, folder)
    name = f"workbook_dag_{folder.parent.name}_{dag_id}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    DagContext.current_autoregister_module_name = name
    try:
        spec.loader.exec_module(module)
    finally:
        DagContext.current_autoregister_module_name = None
    found = [obj for obj in vars(module).values() if isinstance(obj, DAG)]
    found += [dag for dag, mod in DagContext.autoregistered_dags if mod is module]
    DagContext.autoregistered_dags = {(d, m) for d, m in DagContext.autoregistered_dags if m is not module}
    for dag in found:
        if dag.dag_id == dag_id:
            return dag
    raise LookupError(f"{path} defines no DAG with dag_id {dag_id!r} (found {sorted({d.dag_id for d in found})})")


@contextlib.contextmanager
def _env(overrides: dict[str, str] | None) -> Generator[None]:
    saved = {k: os.environ.get(k) for k in overrides or {}}
    os.environ.update(overrides or {})
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def _time_bound(seconds: float, what: str) -> Generator[None]:
    """SIGALRM after `seconds`, then every second (task code may catch one). pytest-timeout's own
    alarm, if it is running, is put back afterwards with the time it had left."""
    import time

    def _expire(signum, frame):
        raise DagRunTimedOut(f"{what} did not finish within {seconds:g} s")

    outer_remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    started = time.monotonic()
    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_remaining > 0:
            signal.setitimer(signal.ITIMER_REAL, max(outer_remaining - (time.monotonic() - started), 0.001))


def _xcoms(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(XComModel).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
        ).all()
        return {
            row.task_id if row.key == "return_value" else f"{row.task_id}.{row.key}": XComModel.deserialize_value(row)
            for row in rows
        }


def run_dag(
    dag_id: str,
    *,
    env: dict[str, str] | None = None,
    conf: dict[str, Any] | None = None,
    timeout: float = 90.0,
    capfd=None,
) -> DagRunResult:
    """`dag.test()` the DAG `dag_id` of the target's DAG folder.

    `env` is set while the DAG file is parsed and run (DAG files read simulator addresses from it).
    `capfd` (pytest's fixture) captures the run's log into the result; the log is also echoed so pytest
    shows it when the test fails.
    """
    from tests.harness.airflow_env import ensure_metadata_db

    ensure_metadata_db(Path(os.environ["AIRFLOW_HOME"]))
    with _env(env):
        dag = load_dag(dag_id)
        if capfd is not None:
            capfd.readouterr()
        run = None
        try:
            with _time_bound(timeout, f"dag.test() of {dag_id!r}"):
                run = dag.test(run_conf=conf)
        except DagRunTimedOut as exc:
            timed_out = str(exc)
        else:
            timed_out = None
        log = ""
        if capfd is not None:
            captured = capfd.readouterr()
            log = captured.out + captured.err
            sys.stdout.write(log)
    if timed_out:
        raise AssertionError(timed_out + "\n" + "\n".join(log.splitlines()[-15:]))
    states = {ti.task_id: _text(ti.state) for ti in run.get_task_instances()}
    return DagRunResult(dag_id, run.run_id, _text(run.state), states, _xcoms(dag_id, run.run_id), log)


def _text(state: Any) -> str:
    return str(getattr(state, "value", state))
