"""Runs the graded suite in a pytest subprocess and collects what it recorded, however the run ends.

One process for the whole suite (Airflow is imported once). A hanging test is cut by pytest-timeout's
per-test limit (the signal method fails only that test; the thread method would end the whole run). A
process that dies anyway (a submission calling os._exit, a segfault, the whole-run limit) is started again
without the tests it already ran, so a crash costs only the test that crashed. After MAX_RESTARTS restarts
the remaining tests run one exercise per fresh process, so one exercise that keeps crashing costs only itself.

The test process reports over a pipe it inherits (grading.judge.plugin): the parent keeps the record,
in a folder the test process cannot reach when it is sandboxed (grading.suite.sandbox). One process is
started, collected and cut in grading.suite.supervision; its options and command line are grading.suite.options.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from grading.core.errors import GradingError
from grading.scoring.run import Run, read_events
from grading.suite import record_check, sandbox
from grading.suite.options import SANDBOX_DESELECT, RunOptions, pytest_command, sandbox_env
from grading.suite.supervision import FORK_BOMB, FORK_BOMB_NOTE, run_once

MAX_RESTARTS = 3
pytest_internal_error, pytest_usage_error = 3, 4


def run_suite(options: RunOptions, done_before: frozenset[str] = frozenset()) -> Run:
    """Run the suite; returns every test's outcome, collection errors and notes on crashes.

    `done_before`: node ids an earlier process already ran (they are not run again).
    """
    run = Run()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="workbook-grading-") as scratch:
        record = Path(scratch) / "record.jsonl"
        record.touch()
        if options.log is None:
            options = replace(options, log=Path(scratch) / "pytest-output.txt")
        deselect = _deselect_file(Path(scratch), done_before) if done_before else None
        for attempt in range(MAX_RESTARTS + 1):
            remaining = options.run_timeout - (time.monotonic() - started)
            if remaining <= 0:
                run.notes.append(f"the run was cut after {options.run_timeout:g} s; tests not run earn nothing")
                break
            seen_before = len(read_events(record))
            lines_before = len(record.read_bytes().splitlines())
            seen_as = Path(SANDBOX_DESELECT) if options.sandbox and deselect else deselect
            code, cut = run_once(options, pytest_command(options, seen_as), remaining, record, deselect)
            run.exit_codes.append(code)
            if cut == FORK_BOMB:
                run.notes.append(FORK_BOMB_NOTE)
            run.violations += record_check.check_file(record, lines_before)
            events = read_events(record)
            finished = any(e.get("event") == "finish" for e in events[seen_before:])
            if cut and cut != FORK_BOMB:  # a fork bomb is a crash of the test it ran in: the run goes on
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
                    _one_exercise_at_a_time(options, run, started, done_before)
                    run.duration = time.monotonic() - started
                    return run
                elif code in (pytest_usage_error, pytest_internal_error) and not _learner_could_have(options):
                    raise GradingError(f"pytest could not start (exit code {code}): "
                                       f"{_tail(options.log) if options.log_is_safe else _log_hint(options.log)}")
                else:
                    for path in options.paths:
                        run.collection_errors[path.rstrip("/")] = (
                            f"the test process died (exit code {code}) while importing the tests")
                break
            results = {e["nodeid"] for e in new if e.get("event") == "result"}
            crashed = [n for n in started_ids if n not in results]
            run.notes.append(f"the test process died (exit code {code}) during {crashed[-1] if crashed else '?'}; "
                             "that test failed and the run went on without it")
            done = done_before | {e["nodeid"] for e in events if e.get("event") in {"start", "result"}}
            if attempt == MAX_RESTARTS:
                if len(options.paths) > 1:
                    run.notes.append(f"after {MAX_RESTARTS} restarts the remaining tests ran one exercise "
                                     "per fresh process")
                    run.add_events(read_events(record))
                    _one_exercise_at_a_time(options, run, started, frozenset(done))
                    run.duration = time.monotonic() - started
                    return run
                run.notes.append(f"gave up after {MAX_RESTARTS} restarts; tests not run earn nothing")
                break
            deselect = _deselect_file(Path(scratch), frozenset(done))
        _rerun_infrastructure(options, record, run, options.run_timeout - (time.monotonic() - started))
        run.add_events(read_events(record))
    run.duration = time.monotonic() - started
    return run


def _learner_could_have(options: RunOptions) -> bool:
    """Whether a usage or internal error status may be the submission's doing: pytest starts here with the
    grader's own control test, so only the code it imported differed."""
    return options.pytest_starts is not None and options.pytest_starts(options)


def check_python_starts(options: RunOptions) -> None:
    """Start the test process's Python in the sandbox, with no learner code: a grader whose Python cannot
    run there (a venv the sandbox does not mount, say) could not grade, instead of every test missing."""
    probe = [options.python, "-c", "import pytest"]
    command = sandbox.command(options.sandbox.bwrap, probe, tree=options.root, cache=options.sandbox.cache,
                              env=sandbox_env(options.root), python_prefixes=sandbox.python_prefixes())
    try:
        done = subprocess.run(command, cwd=options.root, capture_output=True, text=True, check=False,
                              timeout=300, preexec_fn=lambda: sandbox.apply_limits(options.sandbox.limits))
    except subprocess.TimeoutExpired as error:
        raise GradingError(f"the sandbox did not start {options.python} within 300 s") from error
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise GradingError(f"the sandbox cannot start the test process's Python ({options.python}): "
                           f"{why[-1] if why else f'exit {done.returncode}'}")


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
    lines_before = len(record.read_bytes().splitlines())
    code, _cut = run_once(rerun, pytest_command(rerun, None), remaining, record, None)
    run.exit_codes.append(code)
    run.violations += record_check.check_file(record, lines_before)


def _one_exercise_at_a_time(options: RunOptions, run: Run, started: float, done: frozenset[str]) -> None:
    for path in options.paths:
        left = options.run_timeout - (time.monotonic() - started)
        part = run_suite(replace(options, paths=[path], run_timeout=max(left, 1.0)), done)
        for nodeid, test in part.tests.items():
            if nodeid not in run.tests or run.tests[nodeid].outcome == "not_run":
                run.tests[nodeid] = test
        run.collection_errors.update(part.collection_errors)
        run.notes.extend(part.notes)
        run.exit_codes.extend(part.exit_codes)
        run.violations.extend(part.violations)


def _deselect_file(scratch: Path, done: frozenset[str]) -> Path:
    path = scratch / "done.txt"
    path.write_text("\n".join(sorted(done)) + "\n", encoding="utf-8")
    path.chmod(0o644)
    return path


def _log_hint(log: Path | None) -> str:
    return f"see {log}" if log else "(no output kept)"


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return "(no output kept)"
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
