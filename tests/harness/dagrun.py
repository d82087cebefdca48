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

from grading.api import StarterImportError
from tests.harness.remote import in_subject
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


@in_subject(always=True)
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


# The bound's own signal: Airflow uses SIGALRM itself and leaves it cleared (its DAG importer, which dag.test()
# parses the bundle with, and a task's execution_timeout set the real-time timer, then stop it and keep their
# handler), so an alarm set before dag.test() never rings.
BOUND_SIGNAL = signal.SIGUSR1
BOUND_REPEAT_S = 1.0


@contextlib.contextmanager
def _time_bound(seconds: float, what: str, waiting_on: Any = None) -> Generator[list[str]]:
    """Raise DagRunTimedOut in the main thread after `seconds`, then every second: the Task Runner turns an
    exception raised in a task into that task's failure and dag.test() goes on, so one is not enough. A
    watchdog thread sends the signal. pytest-timeout's alarm (its handler and the time it had left) is put
    back afterwards, whatever Airflow did to it meanwhile. Yields a list that holds the timeout's message once
    the bound has fired (a run can end on its own after that: its task failed of the timeout, which is no
    verdict on the learner's code)."""
    import threading
    import time

    finished = threading.Event()
    where: list[str] = []  # the learner's line the run was on when its time was up
    fired: list[str] = []
    waiting: list[str] = []  # what the run waited on when its time was up (its tasks fail of the timeout after)

    def _expire(signum, frame):
        if not finished.is_set():  # a signal sent just before the run ended is late, not a timeout
            if not where:
                where.extend(_learner_line(frame, *sys._current_frames().values())[:1])
            at = f"; the code was at {where[0]}" if where else ""
            on = f", still waiting on {waiting[0]}" if waiting and waiting[0] else ""
            fired[:] = [f"{what} did not finish within {seconds:g} s{on}{at}"]
            raise DagRunTimedOut(fired[0])

    def _watch(main: int) -> None:
        if finished.wait(seconds):
            return
        if waiting_on is not None:
            waiting.append(waiting_on())
        while not finished.is_set():
            signal.pthread_kill(main, BOUND_SIGNAL)
            finished.wait(BOUND_REPEAT_S)

    outer_remaining, _ = signal.getitimer(signal.ITIMER_REAL)
    outer_alarm = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    previous = signal.signal(BOUND_SIGNAL, _expire)
    watchdog = threading.Thread(target=_watch, args=(threading.main_thread().ident,), daemon=True,
                                name="dag-test-bound")
    watchdog.start()
    try:
        yield fired
    finally:
        finished.set()
        watchdog.join()
        signal.signal(BOUND_SIGNAL, previous)
        signal.signal(signal.SIGALRM, outer_alarm)
        if outer_remaining > 0:
            signal.setitimer(signal.ITIMER_REAL, max(outer_remaining - (time.monotonic() - started), 0.001))


def _learner_line(*frames) -> list[str]:
    """`starters/custom_sensors.py:73 in poke`: the innermost frame of the target's code in the stacks of
    `frames` (the interrupted one first, then every thread's: learner code may run in a thread it started)."""
    folder = current_target().folder.resolve()
    for frame in frames:
        while frame is not None:
            path = Path(frame.f_code.co_filename)
            if path.is_absolute() and path.resolve().is_relative_to(folder):
                return [f"{_shown(path.resolve())}:{frame.f_lineno} in {frame.f_code.co_name}"]
            frame = frame.f_back
    return []


def _unfinished_tasks(dag_id: str) -> str:
    """`wait_for_export (up_for_reschedule)`: the tasks of the DAG's latest run that had not finished."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import State
    from sqlalchemy import select

    try:
        with create_session() as session:
            run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id)
                                  .order_by(DagRun.id.desc()).limit(1)).first()
            if run is None:
                return ""
            waiting = [f"{ti.task_id} ({_text(ti.state) or 'not started'})"
                       for ti in run.get_task_instances(session=session) if ti.state not in State.finished]
    except Exception:  # noqa: BLE001 - the timeout is the finding; what it was waiting for is a bonus
        return ""
    return ", ".join(waiting)


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

    In a graded run the DAG file is parsed and run in the subject (tests.harness.remote), which captures the
    log there; what comes back is the run's states, XComs and log, as data.
    """
    from tests.harness import remote

    if remote.enabled():
        remote.note_measured("a dag.test() run")
        outcome = remote.call_in_subject(run_captured, dag_id, env=env, conf=conf, timeout=timeout,
                                         capture=capfd is not None, main_thread=True)
    else:
        outcome = run_here(dag_id, env=env, conf=conf, timeout=timeout, capfd=capfd)
    log = outcome["log"]
    if echo and log:
        sys.stdout.write(log)
    log_file = None
    if log_dir is not None and log:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_file = log_dir / f"{dag_id}-{next(_run_numbers)}.log"
        log_file.write_text(log, encoding="utf-8")
    if outcome["timed_out"]:
        tail = "".join(f"\n    | {line[:240]}" for line in log.splitlines()[-TAIL_LINES:])
        where = f"\nfull log: {log_file} (or run pytest -v)" if log_file else ""
        raise AssertionError(outcome["timed_out"] + tail + where)
    return DagRunResult(dag_id, outcome["run_id"], outcome["state"], outcome["task_states"], outcome["xcoms"],
                        log, log_file)


def run_here(dag_id: str, *, env: dict[str, str] | None, conf: dict[str, Any] | None, timeout: float,
             capfd=None) -> dict[str, Any]:
    """The run itself, in this process: its outcome as data (states, XComs, log, why it timed out)."""
    from tests.harness.airflow_env import ensure_metadata_db

    ensure_metadata_db(Path(os.environ["AIRFLOW_HOME"]))
    path = dag_file(dag_id, current_target().dags_folder)
    with _env(env), _only_bundle(path) as bundled:
        dag = load_dag(dag_id, path=bundled)
        if capfd is not None:
            capfd.readouterr()
        run = None
        try:
            with _time_bound(timeout, f"dag.test() of {dag_id!r}", lambda: _unfinished_tasks(dag_id)) as fired:
                run = dag.test(run_conf=conf)
        except DagRunTimedOut as exc:
            timed_out = str(exc)
        else:
            timed_out = fired[0] if fired else None
        log = ""
        if capfd is not None:
            captured = capfd.readouterr()
            log = captured.out + captured.err
    if timed_out:
        return {"timed_out": timed_out, "log": log}
    states = {ti.task_id: _text(ti.state) for ti in run.get_task_instances()}
    return {"timed_out": None, "log": log, "run_id": run.run_id, "state": _text(run.state), "task_states": states,
            "xcoms": _xcoms(dag_id, run.run_id)}


def run_captured(dag_id: str, *, env: dict[str, str] | None, conf: dict[str, Any] | None, timeout: float,
                 capture: bool) -> dict[str, Any]:
    """`run_here` in the subject, its output captured at the file descriptors as `capfd` would."""
    if not capture:
        return run_here(dag_id, env=env, conf=conf, timeout=timeout)
    with tempfile.TemporaryFile() as sink:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(1), os.dup(2)
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            outcome = run_here(dag_id, env=env, conf=conf, timeout=timeout)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
        sink.seek(0)
        outcome["log"] = sink.read().decode("utf-8", errors="replace")
    return outcome


def _text(state: Any) -> str:
    return str(getattr(state, "value", state))
