"""What keeps code under test from reaching the graded record or outliving its test, in the sandboxed run:
the record's descriptor moved to a random number, forked copies of the test process demoted and killed, and a
watchdog for a test whose timeout signal a fork bomb starves."""

from __future__ import annotations

import os
import random
import signal
import threading
from pathlib import Path


def hide_fd(fd: int) -> int:
    """Move the channel to a random descriptor number (not inheritable), so it is not where it was announced."""
    target = random.SystemRandom().randrange(300, 900)
    os.dup2(fd, target, inheritable=False)
    os.close(fd)
    return target


class Watchdog(threading.Thread):
    """When a test outlives its timeout, copies it forked may be what keeps it from ending (a fork bomb
    starves the timeout's signal): end them and signal the test again."""

    def __init__(self, timeout: float) -> None:
        super().__init__(daemon=True)
        self.timeout = timeout
        self.finished = threading.Event()
        self.main = threading.main_thread().ident

    def run(self) -> None:
        if self.timeout <= 0:
            return
        while not self.finished.wait(self.timeout + 1):
            kill_forked_copies()
            if not self.finished.is_set() and self.main is not None:
                signal.pthread_kill(self.main, signal.SIGALRM)


def demote() -> None:
    """A copy a test forks of this process runs only when nothing else wants the CPU (it cannot undo that
    unprivileged), so a fork bomb cannot starve the tests; copies still alive after the test are killed."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def kill_forked_copies() -> None:
    """In the sandbox (its own PID namespace), end every copy of this process a test forked and left running.

    A copy has this process's command line (a fork without exec); its own copies are orphans by the time
    their parent is killed, so every such process is ended, pass after pass, until none is left.
    """
    me = os.getpid()
    try:
        own = Path(f"/proc/{me}/cmdline").read_bytes()
    except OSError:
        return
    for _ in range(100):
        copies = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != me:
                try:
                    if (entry / "cmdline").read_bytes() == own:
                        copies.append(int(entry.name))
                except OSError:
                    continue
        if not copies:
            return
        for pid in copies:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
