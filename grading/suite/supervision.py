"""One test process of a graded run: started in its own process group, its record collected from a pipe,
waited on, and cut when it outlives the run's limit or keeps its sandbox crowded (a fork bomb)."""

from __future__ import annotations

import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from grading.core.channel import CHANNEL_FD_VAR, SUBJECT_BWRAP_VAR, SUBJECT_MODE_VAR
from grading.core.processes import kill_group
from grading.suite import record_schema, sandbox
from grading.suite.options import SANDBOX_DESELECT, RunOptions, graded_env, sandbox_env

# A sandboxed run that keeps this share of its process limit busy for this long is a fork bomb: the test
# process cannot be trusted to stop it, so the grader ends the whole sandbox from outside. The window is
# at most twice the per-test timeout: the test process's own timeout gets the first go at a bomb it can see,
# and a sandbox still crowded after twice that is not finishing a test.
FORK_BOMB_SHARE, FORK_BOMB_SECONDS, GUARD_POLL_SECONDS = 0.9, 20.0, 0.5
FORK_BOMB = "fork bomb"
FORK_BOMB_NOTE = ("the test process was stopped from outside: the submission kept the sandbox at its process "
                  "limit (a fork bomb)")


def run_once(options: RunOptions, command: list[str], timeout: float, record: Path,
             deselect: Path | None) -> tuple[int, str | None]:
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
