"""Stopping what a command started: a process group, or a process tree that left its group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def signal_group(pid: int, signum: int) -> None:
    """`signum` to the process group led by `pid`; a group already gone (or no longer ours) is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def kill_group(pid: int) -> None:
    """SIGKILL to the process group led by `pid`."""
    signal_group(pid, signal.SIGKILL)


def stop_tree(process: subprocess.Popen, *, grace: float) -> None:
    """Stop `process` and everything it started, also what runs in sessions of its own.

    A process that starts children in their own sessions (pytest's test process, Airflow's supervisors) would
    orphan them if only its group were killed: it is first interrupted (it then stops its own children), given
    `grace` seconds, then every descendant seen before the interrupt is killed, then the group.
    """
    import psutil  # here: the CI jobs that only plan or fetch run without the workbook's packages

    if process.poll() is None:
        try:
            descendants = psutil.Process(process.pid).children(recursive=True)
        except psutil.Error:
            descendants = []
        signal_group(process.pid, signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
        for child in descendants:
            with contextlib.suppress(psutil.Error):
                child.kill()
    kill_group(process.pid)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
