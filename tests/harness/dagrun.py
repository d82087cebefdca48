"""Run a DAG of the target's DAG folder with `dag.test()`: real Airflow, the session's SQLite metadata DB,
deferred triggers run inline. Returns task states, XComs and the log, bounded in time.

Each run sees only its own DAG file: `dag.test()` parses the whole bundle it belongs to, and a sibling DAG
file that does not parse (a task not started yet) must not reach into this run or its log. A failed run is
told in a few lines: the failed task, its exception and the end of its own log; the whole log goes to a
file (and to the output with `pytest -v`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import json
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grading.pytest_plugin import StarterImportError
from tests.harness.target import current_target

NOT_IMPLEMENTED = re.compile(r"NotImplementedError: (Exercise [^\n]*)")
EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Z]\w*(?:Error|Exception|Timeout|Interrupt|Exit|Deferred)\b(?::.*)?$")
LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\dT[\d:.]+Z?\s+\[\s*(\w+)\s*\]\s+(.*?)(?:\s+\[[\w.]+\]\s.*)?$")
TAIL_LINES = 6
_run_numbers = itertools.count(1)


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
    log_file: Path | None = None

    @property
    def log_lines(self) -> list[str]:
        return self.log.splitlines()

    def task_log(self, task_id: str) -> list[str]:
        """The lines dag.test() logged while it ran `task_id` (every try), in order."""
        lines, inside = [], False
        for line in self.log_lines:
            if f"[DAG TEST] starting task_id={task_id} " in line:
                inside = True
            if inside:
                lines.append(line)
            if f"[DAG TEST] end task task_id={task_id} " in line:
                inside = False
        return lines

    def failed_tasks(self) -> list[str]:
        return [task for task, state in self.task_states.items() if state == "failed"]

    def failure(self, task_id: str) -> str:
        """`wait_for_shipment failed: AirflowFailException: ...`, then the last lines of its own log."""
        lines = self.task_log(task_id)
        exceptions = [line.strip() for line in lines if EXCEPTION_LINE.match(line.strip())]
        todo = next((m.group(1).strip() for m in map(NOT_IMPLEMENTED.search, lines) if m), None)
        error = f"NotImplementedError: {todo}" if todo else (exceptions[-1] if exceptions else "no exception logged")
        records = [f"{m.group(1)}: {m.group(2).strip()}" for m in map(LOG_RECORD.match, lines)
                   if m and "[DAG TEST]" not in m.group(2) and "::group::" not in m.group(2)
                   and "::endgroup::" not in m.group(2)]
        tail = "".join(f"\n    | {r[:240]}" for r in records[-TAIL_LINES:])
        return f"{task_id} failed: {error.split('.')[-1] if error.startswith('airflow.') else error}{tail}"

    def summary(self) -> str:
        """A failed run in a few lines: each failed task, its exception, the end of its log, where the log is."""
        head = f"dag.test() of {self.dag_id!r} ended {self.state!r}; task states {self.task_states}"
        parts = [head, *(self.failure(task) for task in self.failed_tasks())]
        if self.log_file is not None:
            parts.append(f"full log: {self.log_file} (or run pytest -v)")
        return "\n".join(parts)

    def assert_success(self) -> DagRunResult:
        """Raise a readable error unless the run succeeded (a starter's NotImplementedError as itself)."""
        if self.state == "success":
            return self
        for task in self.failed_tasks():
            if match := NOT_IMPLEMENTED.search("\n".join(self.task_log(task))):
                raise NotImplementedError(match.group(1).strip())
        raise AssertionError(f"expected state 'success': {self.summary()}")


def dag_file(dag_id: str, dags_folder: Path) -> Path:
    """DAG files are named after their dag_id."""
    path = dags_folder / f"{dag_id}.py"
    if not path.exists():
        raise FileNotFoundError(f"no DAG file {path.relative_to(dags_folder.parent.parent)} for dag_id {dag_id!r}")
    return path


class DagFileError(StarterImportError):
    """A DAG file does not import; its message is one line: `starters/dags/x.py:12: SyntaxError: ...`."""


def load_dag(dag_id: str, dags_folder: Path | None = None, *, path: Path | None = None):
    """Import the DAG file as the DAG processor does (DAGs made in a `with DAG(...)` block count too)."""
    from airflow.sdk import DAG
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    folder = dags_folder or current_target().dags_folder
    path = path or dag_file(dag_id, folder)
    name = f"workbook_dag_{folder.parent.name}_{dag_id}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    DagContext.current_autoregister_module_name = name
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise DagFileError(f"{_shown(path)}:{error.lineno}: SyntaxError: {error.msg}") from None
    except NotImplementedError:
        raise
    except Exception as error:
        line = next((f.lineno for f in reversed(_frames(error)) if Path(f.filename).name == path.name), "?")
        first = (str(error).strip().splitlines() or [""])[0]
        raise DagFileError(f"{_shown(path)}:{line}: {type(error).__name__}: {first}") from error
    finally:
        DagContext.current_autoregister_module_name = None
    found = [obj for obj in vars(module).values() if isinstance(obj, DAG)]
    found += [dag for dag, mod in DagContext.autoregistered_dags if mod is module]
    DagContext.autoregistered_dags = {(d, m) for d, m in DagContext.autoregistered_dags if m is not module}
    for dag in found:
        if dag.dag_id == dag_id:
            return dag
    raise LookupError(f"{path} defines no DAG with dag_id {dag_id!r} (found {sorted({d.dag_id for d in found})})")


def _frames(error: BaseException):
    import traceback

    return traceback.extract_tb(error.__traceback__)


def _shown(path: Path) -> str:
    real = path.resolve()
    for root in (Path(__file__).resolve().parents[2],):
        if real.is_relative_to(root):
            return real.relative_to(root).as_posix()
    return str(path)


@contextlib.contextmanager
def _only_bundle(dag_path: Path) -> Generator[Path]:
    """For the duration of one run, the DAG bundle is a folder holding only this DAG file (a link to it):
    dag.test() parses its bundle, and a sibling that does not parse would fail this run's log."""
    from airflow.configuration import conf

    folder = Path(tempfile.mkdtemp(prefix="workbook-dag-bundle-"))
    link = folder / dag_path.name
    link.symlink_to(dag_path.resolve())
    saved = conf.get("dag_processor", "dag_bundle_config_list", fallback=None)
    conf.set("dag_processor", "dag_bundle_config_list", json.dumps([{
        "name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
        "kwargs": {"path": str(folder), "refresh_interval": 0},
    }]))
    try:
        yield link
    finally:
        if saved is None:
            conf.remove_option("dag_processor", "dag_bundle_config_list", remove_default=False)
        else:
            conf.set("dag_processor", "dag_bundle_config_list", saved)
        shutil.rmtree(folder, ignore_errors=True)


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
    log_dir: Path | None = None,
    echo: bool = False,
) -> DagRunResult:
    """`dag.test()` the DAG `dag_id` of the target's DAG folder.

    `env` is set while the DAG file is parsed and run (DAG files read simulator addresses from it).
    `capfd` (pytest's fixture) captures the run's log into the result; it is written to a file in `log_dir`
    and, with `echo` (pytest -v), also to the output, which pytest shows when the test fails.
    """
    from tests.harness.airflow_env import ensure_metadata_db

    ensure_metadata_db(Path(os.environ["AIRFLOW_HOME"]))
    path = dag_file(dag_id, current_target().dags_folder)
    with _env(env), _only_bundle(path) as bundled:
        dag = load_dag(dag_id, path=bundled)
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
            if echo:
                sys.stdout.write(log)
    log_file = None
    if log_dir is not None and log:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / f"{dag_id}-{next(_run_numbers)}.log"
        log_file.write_text(log, encoding="utf-8")
    if timed_out:
        tail = "".join(f"\n    | {line[:240]}" for line in log.splitlines()[-TAIL_LINES:])
        where = f"\nfull log: {log_file} (or run pytest -v)" if log_file else ""
        raise AssertionError(timed_out + tail + where)
    states = {ti.task_id: _text(ti.state) for ti in run.get_task_instances()}
    return DagRunResult(dag_id, run.run_id, _text(run.state), states, _xcoms(dag_id, run.run_id), log, log_file)


def _text(state: Any) -> str:
    return str(getattr(state, "value", state))
