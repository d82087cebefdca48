"""Runs the graded suite in a pytest subprocess and collects what it recorded, however the run ends.

One process for the whole suite (Airflow is imported once). A hanging test is cut by pytest-timeout's
per-test limit (the signal method fails only that test; the thread method would end the whole run). A
process that dies anyway (a submission calling os._exit, a segfault, the whole-run limit) is started again
without the tests it already ran, so a crash costs only the test that crashed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

from grading.results import Run, read_events

MAX_RESTARTS = 5
pytest_internal_error, pytest_usage_error = 3, 4


class GradingError(RuntimeError):
    """Grading itself could not run (not: the submission failed)."""


# Variables of the caller that would change what pytest runs or where Airflow lives: the graded run sets
# its own (tests/conftest.py gives every session a fresh AIRFLOW_HOME).
DROPPED_ENV_PREFIXES = ("PYTEST_", "AIRFLOW__", "WORKBOOK_")
DROPPED_ENV = {"AIRFLOW_HOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME"}


@dataclass
class RunOptions:
    root: Path
    target: str
    paths: list[str]
    per_test_timeout: float = 120.0
    run_timeout: float = 3600.0
    gate: str = "none"
    markers: str | None = None
    python: str = sys.executable
    log: Path | None = None
    echo: bool = False
    extra_args: tuple[str, ...] = ()


def graded_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in DROPPED_ENV and not k.startswith(DROPPED_ENV_PREFIXES)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = str(root)  # the graded tree first: its tests/, starters/, grading/
    return env


def pytest_command(options: RunOptions, record: Path, deselect: Path | None) -> list[str]:
    command = [
        options.python, "-m", "pytest", *options.paths,
        f"--target={options.target}",
        "-p", "grading.pytest_plugin", f"--grading-record={record}", f"--grading-gate={options.gate}",
        f"--timeout={options.per_test_timeout:g}", "--timeout-method=signal",
        f"--rootdir={options.root}", "-c", str(options.root / "pyproject.toml"),
        "--continue-on-collection-errors", "-p", "no:cacheprovider", "-q", "-rN", "--tb=short",
    ]
    if options.markers:
        command += ["-m", options.markers]
    if deselect is not None:
        command.append(f"--grading-deselect={deselect}")
    return command + list(options.extra_args)


def run_suite(options: RunOptions) -> Run:
    """Run the suite; returns every test's outcome, collection errors and notes on crashes."""
    run = Run()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="workbook-grading-") as scratch:
        record = Path(scratch) / "record.jsonl"
        if options.log is None:
            options = replace(options, log=Path(scratch) / "pytest-output.txt")
        deselect: Path | None = None
        for attempt in range(MAX_RESTARTS + 1):
            remaining = options.run_timeout - (time.monotonic() - started)
            if remaining <= 0:
                run.notes.append(f"the run was cut after {options.run_timeout:g} s; tests not run earn nothing")
                break
            seen_before = len(read_events(record))
            code, cut = _run_once(options, pytest_command(options, record, deselect), remaining)
            run.exit_codes.append(code)
            events = read_events(record)
            finished = any(e.get("event") == "finish" for e in events[seen_before:])
            if cut:
                run.notes.append(f"the run was cut after {options.run_timeout:g} s; tests not run earn nothing")
                break
            if finished:
                break
            new = events[seen_before:]
            started_ids = [e["nodeid"] for e in new if e.get("event") == "start"]
            if not started_ids:
                if any(e.get("event") == "collected" for e in new):
                    run.notes.append(f"pytest exited with code {code} before running any test")
                elif len(options.paths) > 1:
                    # Something killed the process while importing tests: find out whose, one folder at a time.
                    run.notes.append(f"the test process died (exit code {code}) while collecting; "
                                     "each exercise was then graded on its own")
                    for path in options.paths:
                        left = options.run_timeout - (time.monotonic() - started)
                        part = run_suite(replace(options, paths=[path], run_timeout=max(left, 1.0)))
                        run.tests.update(part.tests)
                        run.collection_errors.update(part.collection_errors)
                        run.notes.extend(part.notes)
                        run.exit_codes.extend(part.exit_codes)
                    run.duration = time.monotonic() - started
                    return run
                elif code in (pytest_usage_error, pytest_internal_error):
                    raise GradingError(f"pytest could not start (exit code {code}): "
                                       f"{_tail(options.log)}")
                else:
                    for path in options.paths:
                        run.collection_errors[path.rstrip("/")] = (
                            f"the test process died (exit code {code}) while importing the tests")
                break
            results = {e["nodeid"] for e in new if e.get("event") == "result"}
            crashed = [n for n in started_ids if n not in results]
            run.notes.append(f"the test process died (exit code {code}) during {crashed[-1] if crashed else '?'}; "
                             "that test failed and the run went on without it")
            done = {e["nodeid"] for e in events if e.get("event") in {"start", "result"}}
            deselect = Path(scratch) / "done.txt"
            deselect.write_text("\n".join(sorted(done)) + "\n", encoding="utf-8")
            if attempt == MAX_RESTARTS:
                run.notes.append(f"gave up after {MAX_RESTARTS} restarts; tests not run earn nothing")
        _rerun_infrastructure(options, record, run, options.run_timeout - (time.monotonic() - started))
        run.add_events(read_events(record))
    run.duration = time.monotonic() - started
    return run


def _rerun_infrastructure(options: RunOptions, record: Path, run: Run, remaining: float) -> None:
    """Run once more, in one fresh process, the tests that ended as infrastructure (Airflow or the machine
    failed, not the submission); their new results are appended to the record and replace the old ones."""
    latest: dict[str, str] = {}
    for event in read_events(record):
        if event.get("event") == "result":
            latest[event["nodeid"]] = event["outcome"]
    again = sorted(nodeid for nodeid, outcome in latest.items() if outcome == "infrastructure")
    if not again or remaining <= 0:
        return
    run.notes.append(f"{len(again)} test(s) hit an infrastructure failure (Airflow or the machine, not the "
                     "submission) and were run once more")
    rerun = replace(options, paths=again, gate="none", markers=None)
    code, _cut = _run_once(rerun, pytest_command(rerun, record, None), remaining)
    run.exit_codes.append(code)


def _run_once(options: RunOptions, command: list[str], timeout: float) -> tuple[int, bool]:
    """Run pytest in its own process group (so a cut run leaves no child behind); returns (code, cut)."""
    log = options.log.open("a", encoding="utf-8") if options.log else None
    try:
        if log:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
        process = subprocess.Popen(
            command, cwd=options.root, env=graded_env(options.root), stdin=subprocess.DEVNULL,
            stdout=None if options.echo else (log or subprocess.DEVNULL), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            return process.wait(timeout=timeout), False
        except subprocess.TimeoutExpired:
            _kill_group(process)
            return process.wait(), True
        except BaseException:
            _kill_group(process)
            process.wait()
            raise
    finally:
        if log:
            log.close()


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return "(no output kept)"
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
