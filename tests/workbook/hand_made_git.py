"""A `.git` written by hand, and a bound on reading one: what the tests of commit reading share."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Generator
from pathlib import Path

SHA = "0123456789abcdef0123456789abcdef01234567"


def hand_made(folder: Path, sha: str = SHA) -> Path:
    """A .git written by hand: HEAD on `main`, whose loose ref holds `sha`."""
    (folder / ".git" / "refs" / "heads").mkdir(parents=True)
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="ascii")
    (folder / ".git" / "refs" / "heads" / "main").write_text(sha + "\n", encoding="ascii")
    return folder


def within(seconds: float, function, *args):
    """`function(*args)`, failing the test (instead of hanging it) when it does not return in time."""
    result: list = []
    worker = threading.Thread(target=lambda: result.append(function(*args)), daemon=True)
    worker.start()
    worker.join(seconds)
    assert result, f"{getattr(function, '__name__', function)!s} did not return within {seconds} s"
    return result[0]


@contextlib.contextmanager
def released(fifo: Path) -> Generator[None, None, None]:
    """After the block, a reader stuck on the FIFO gets its end of file, so the test process can end."""
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # nobody was waiting on it
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
