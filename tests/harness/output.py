"""What the code under test wrote: its stdout and stderr (as pytest's `capfd` sees them) and the messages of
its `logging` records (as `caplog` sees them).

In a graded run that code writes in the subject: the capture is made there, at the descriptor level, and every
read brings the text back as data. What it holds is the learner's output, nothing more ("measured in the
subject").
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Generator
from typing import Any

import pytest

from tests.harness import remote
from tests.harness.remote import in_subject

MAX_CHARS = 4 * 1024 * 1024  # what one read brings back (the end of the output, where the test's lines are)


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.messages: list[str] = []
        self.records: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: logging itself reports those
            message = str(record.msg)
        self.messages.append(message)
        self.records.append({"message": message, "levelno": record.levelno, "created": record.created})


class OutputCapture:
    """Where the code under test runs: descriptors 1 and 2 go to temporary files until `stop()`, and a
    handler on the root logger keeps every record's message."""

    def __init__(self) -> None:
        self.handler = _Messages()
        self.root = logging.getLogger()
        self.root.addHandler(self.handler)
        self.level: int | None = None
        self.streams: dict[int, tuple[int, Any]] = {}
        self.read_up_to = {1: 0, 2: 0}
        _flush()
        for fd in (1, 2):
            saved, file = os.dup(fd), tempfile.TemporaryFile()
            os.dup2(file.fileno(), fd)
            self.streams[fd] = (saved, file)

    def set_level(self, level: int) -> None:
        if self.level is None:
            self.level = self.root.level
        self.root.setLevel(level)

    def read(self) -> tuple[str, str]:
        """What was written to stdout and stderr since the last read (as `capfd.readouterr()`)."""
        _flush()
        texts = []
        for fd, (_saved, file) in self.streams.items():
            # Read at an offset of our own: the writers' position in the file is left where it is.
            end = os.fstat(file.fileno()).st_size
            start = max(self.read_up_to[fd], end - MAX_CHARS)
            data = os.pread(file.fileno(), end - start, start)
            self.read_up_to[fd] = start + len(data)
            texts.append(data.decode("utf-8", "replace"))
        return texts[0], texts[1]

    def messages(self) -> list[str]:
        return list(self.handler.messages)

    def records(self) -> list[dict[str, Any]]:
        return [dict(record) for record in self.handler.records]

    def stop(self) -> None:
        _flush()
        for fd, (saved, file) in self.streams.items():
            os.dup2(saved, fd)
            os.close(saved)
            file.close()
        self.streams.clear()
        self.root.removeHandler(self.handler)
        if self.level is not None:
            self.root.setLevel(self.level)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


@in_subject(always=True)
def start_capture() -> OutputCapture:
    return OutputCapture()


class LearnerLog:
    """The test's view: `lines()` and `text()` as the tests used to build them from `capfd` and `caplog`."""

    def __init__(self, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
                 capture: Any = None) -> None:
        self.capfd, self.caplog, self.capture = capfd, caplog, capture

    def set_level(self, level: int) -> None:
        """The root logger's level, as `caplog.set_level(level)` (undone after the test)."""
        if self.capture is None:
            self.caplog.set_level(level)
        else:
            self.capture.set_level(level)

    def output(self) -> tuple[str, str]:
        if self.capture is None:
            captured = self.capfd.readouterr()
            return captured.out, captured.err
        out, err = self.capture.read()
        return str(out), str(err)

    def messages(self) -> list[str]:
        if self.capture is None:
            return [r.getMessage() for r in self.caplog.records]
        return [str(m) for m in self.capture.messages()]

    def records(self) -> list[dict[str, Any]]:
        """Every log record as `{"message", "levelno", "created"}` (when a test needs more than the message)."""
        if self.capture is None:
            return [{"message": r.getMessage(), "levelno": r.levelno, "created": r.created}
                    for r in self.caplog.records]
        return [{"message": str(r["message"]), "levelno": int(r["levelno"]), "created": float(r["created"])}
                for r in self.capture.records()]

    def lines(self) -> list[str]:
        """The output's lines since the last read, then every log record's message."""
        out, err = self.output()
        return (out + err).splitlines() + self.messages()

    def text(self) -> str:
        out, err = self.output()
        return out + err + "\n".join(self.messages())


@pytest.fixture
def learner_log(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
                ) -> Generator[LearnerLog, None, None]:
    """What the code under test printed and logged during the test (a conftest imports this fixture)."""
    with capture_learner_log(capfd, caplog) as log:
        yield log


@contextlib.contextmanager
def capture_learner_log(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
                        ) -> Generator[LearnerLog, None, None]:
    if not remote.enabled():
        yield LearnerLog(capfd, caplog)
        return
    remote.note_measured("printed output")
    remote.note_measured("log records")
    link = remote.current_link()
    capture = start_capture()
    try:
        yield LearnerLog(capfd, caplog, capture)
    finally:
        if link.alive:
            capture.stop()
