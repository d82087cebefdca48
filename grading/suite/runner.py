"""Runs the graded suite in a pytest subprocess and collects what it recorded, however the run ends.

One process for the whole suite (Airflow is imported once). A hanging test is cut by pytest-timeout's
per-test limit (the signal method fails only that test; the thread method would end the whole run). A
process that dies anyway (a submission calling os._exit, a segfault, the whole-run limit) is started again
without the tests it already ran, so a crash costs only the test that crashed. After MAX_RESTARTS restarts
the remaining tests run one exercise per fresh process, so one exercise that keeps crashing costs only itself.

The test process reports over a pipe it inherits (grading.judge.plugin): the parent keeps the record,
in a folder the test process cannot reach when it is sandboxed (grading.suite.sandbox).
"""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from grading.core.channel import CHANNEL_FD_VAR, SANDBOXED_VAR, SUBJECT_BWRAP_VAR, SUBJECT_MODE_VAR
from grading.core.errors import GradingError
from grading.core.processes import kill_group
from grading.scoring.results import Run, read_events
from grading.suite import record_check, record_schema, sandbox

MAX_RESTARTS = 3
pytest_internal_error, pytest_usage_error = 3, 4


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
    sandbox: Sandbox | None = None
    log_is_safe: bool = True  # False: the log may hold hidden tests' text, never quote it in an error
    # The tests run in a judge process that never imports the learner's code; that code runs in a subject
    # process the judge starts in a nested sandbox (tests.harness.remote, tests.harness.subject_sandbox).
    judge_and_subject: bool = False
    # A submission's: pytest's own error statuses prove nothing until this probe of the grader's (does pytest
    # start here with a test of the grader's, and no learner code?) fails too.
    pytest_starts: Callable[[RunOptions], bool] | None = None
    on_record: Callable[[bytes], None] | None = None  # sees the record's bytes as they arrive (a progress line)


@dataclass(frozen=True)
class Sandbox:
    """Run every test process in bwrap (grading.suite.sandbox); `cache` is the tree's writable DB template copy."""
    bwrap: Path
    cache: Path
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)


def sandbox_env(root: Path) -> dict[str, str]:
    """Everything the sandboxed process gets: no variable of the caller's but the locale."""
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin", "HOME": sandbox.HOME,
           "TMPDIR": "/tmp", "USER": "grader", "LOGNAME": "grader", "LANG": os.environ.get("LANG", "C.UTF-8"), "TZ": "UTC",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(root), "PYTHONNOUSERSITE": "1",
           SANDBOXED_VAR: "1"}
    return env


def graded_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in DROPPED_ENV and not k.startswith(DROPPED_ENV_PREFIXES)}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONPATH"] = str(root)  # the graded tree first: its tests/, starters/, grading/
    return env


def pytest_command(options: RunOptions, deselect: Path | None) -> list[str]:
    command = [
        options.python, "-m", "pytest", *options.paths,
        f"--target={options.target}",
        "-p", "grading.judge.plugin", f"--grading-gate={options.gate}",
        f"--timeout={options.per_test_timeout:g}", "--timeout-method=signal",
        f"--rootdir={options.root}", "-c", str(options.root / "pyproject.toml"),
        "--continue-on-collection-errors", "-p", "no:cacheprovider", "-q", "-rN", "--tb=short",
    ]
    if options.markers:
        command += ["-m", options.markers]
    if deselect is not None:
        command.append(f"--grading-deselect={deselect}")
    return command + list(options.extra_args)


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
            code, cut = _run_once(options, pytest_command(options, seen_as), remaining, record, deselect)
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
    code, _cut = _run_once(rerun, pytest_command(rerun, None), remaining, record, None)
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


SANDBOX_DESELECT = "/run/grading-done.txt"


def _run_once(options: RunOptions, command: list[str], timeout: float, record: Path,
              deselect: Path | None) -> tuple[int, bool]:
    """Run pytest in its own process group (so a cut run leaves no child behind); returns (code, why it was
    cut: "timeout", FORK_BOMB, or None).

    Its events arrive over a pipe (the write end inherited as WORKBOOK_GRADING_FD) and are appended to
    `record` here, by the parent.
    """
    read_end, write_end = os.pipe()
    env = sandbox_env(options.root) if options.sandbox else graded_env(options.root)
    env[CHANNEL_FD_VAR] = str(write_end)
    if options.judge_and_subject:
        env[SUBJECT_MODE_VAR] = "remote"
        if options.sandbox:
            env[SUBJECT_BWRAP_VAR] = str(options.sandbox.bwrap)
    preexec = None
    if options.sandbox:
        command = sandbox.command(
            options.sandbox.bwrap, command, tree=options.root, cache=options.sandbox.cache, env=env,
            python_prefixes=sandbox.python_prefixes(),
            read_only_files={deselect: SANDBOX_DESELECT} if deselect is not None else {})
        limits = options.sandbox.limits

        def preexec() -> None:
            sandbox.apply_limits(limits)
    log = options.log.open("a", encoding="utf-8") if options.log else None
    collector = _Collector(read_end, record, options.on_record)
    try:
        if log:
            log.write("$ " + " ".join(command) + "\n")
            log.flush()
        try:
            process = subprocess.Popen(
                command, cwd=options.root, env=None if options.sandbox else env, stdin=subprocess.DEVNULL,
                stdout=None if options.echo else (log or subprocess.DEVNULL), stderr=subprocess.STDOUT,
                start_new_session=True, pass_fds=(write_end,), preexec_fn=preexec,
            )
        finally:
            os.close(write_end)
        collector.start()
        try:
            cut = _wait(process, timeout, options.sandbox.limits.processes if options.sandbox else None,
                        crowded_for=_fork_bomb_window(options.per_test_timeout))
            if cut:
                kill_group(process.pid)
            return process.wait(), cut
        except BaseException:
            kill_group(process.pid)
            process.wait()
            raise
    finally:
        collector.stop()
        if log:
            log.close()


class _Collector(threading.Thread):
    """Copies the test process's events from the pipe to the record until the process and its children end
    (or, unsandboxed, a moment after the process ended: a daemon holding the pipe speaks for nobody)."""

    def __init__(self, fd: int, record: Path, on_record: Callable[[bytes], None] | None = None) -> None:
        super().__init__(daemon=True)
        self.fd, self.record, self.on_record = fd, record, on_record
        self.stopping = threading.Event()

    def run(self) -> None:
        # A flood is drained (the writer never blocks on a full pipe) but kept only up to the record's limit:
        # the record lives on the grader's disk.
        room = record_schema.room_left(self.record)
        with selectors.DefaultSelector() as selector, self.record.open("ab") as out:
            selector.register(self.fd, selectors.EVENT_READ)
            while True:
                ready = selector.select(timeout=0.2)
                if ready:
                    chunk = os.read(self.fd, 65536)
                    if not chunk:
                        return
                    if room > 0:
                        out.write(chunk[:room])
                        out.flush()
                        if self.on_record is not None:
                            self.on_record(chunk[:room])
                        room -= len(chunk[:room])
                elif self.stopping.is_set():
                    return

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(timeout=5)
        os.close(self.fd)


# A sandboxed run that keeps this share of its process limit busy for this long is a fork bomb: the test
# process cannot be trusted to stop it, so the grader ends the whole sandbox from outside. The window is
# at most twice the per-test timeout: the test process's own timeout gets the first go at a bomb it can see,
# and a sandbox still crowded after twice that is not finishing a test.
FORK_BOMB_SHARE, FORK_BOMB_SECONDS, GUARD_POLL_SECONDS = 0.9, 20.0, 0.5
FORK_BOMB = "fork bomb"
FORK_BOMB_NOTE = ("the test process was stopped from outside: the submission kept the sandbox at its process "
                  "limit (a fork bomb)")


def _fork_bomb_window(per_test_timeout: float) -> float:
    """Seconds at the process limit before the sandbox counts as a fork bomb (no per-test timeout: the full
    window)."""
    return min(FORK_BOMB_SECONDS, 2 * per_test_timeout) if per_test_timeout > 0 else FORK_BOMB_SECONDS


def _wait(process: subprocess.Popen, timeout: float, process_limit: int | None,
          crowded_for: float = FORK_BOMB_SECONDS) -> str | None:
    """Wait for the test process; returns why it was cut ("timeout", FORK_BOMB), or None when it ended."""
    deadline = time.monotonic() + timeout
    crowded_since: float | None = None
    while True:
        try:
            process.wait(timeout=max(min(GUARD_POLL_SECONDS, deadline - time.monotonic()), 0.01))
            return None
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        if now >= deadline:
            return "timeout"
        if process_limit is None:
            continue
        if _descendants(process.pid) >= FORK_BOMB_SHARE * process_limit:
            crowded_since = crowded_since or now
            if now - crowded_since >= crowded_for:
                return FORK_BOMB
        else:
            crowded_since = None


def _descendants(pid: int) -> int:
    import psutil

    try:
        return len(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return 0


def _log_hint(log: Path | None) -> str:
    return f"see {log}" if log else "(no output kept)"


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return "(no output kept)"
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
