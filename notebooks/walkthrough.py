"""The first cell of every walkthrough imports this: the repo on the path, the notebook's own Airflow,
and one place that stops whatever the notebook started.

The walkthroughs use the tests' target switch: the reference solutions by default (when solutions/ is
there), your starters with `WORKBOOK_TARGET=starter`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import logging
import os
import re
import shutil
import sys
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("WORKBOOK_TARGET", "solution" if (REPO_ROOT / "solutions").is_dir() else "starter")

from tests.harness import airflow_env  # noqa: E402  (needs the path above)
from tests.harness.target import current_target  # noqa: E402

target = current_target()
airflow_home = airflow_env.configure(target)  # before anything imports airflow
_started: list[Any] = []


def start(simulator: Any) -> Any:
    """Start a simulator (anything with start()/stop()) and remember to stop it in `finish()`."""
    simulator.start()
    _started.append(simulator)
    return simulator


def finish() -> str:
    """Stop every simulator this notebook started and remove its Airflow home."""
    while _started:
        _started.pop().stop()
    shutil.rmtree(airflow_home, ignore_errors=True)
    return "stopped every simulator; removed the notebook's Airflow home"


atexit.register(finish)  # also when a run stops early, e.g. at a starter's NotImplementedError


class _Switchboard:
    """Stands in for stdout/stderr. Loggers keep the stream they first saw, so they all get this one, and
    `captured_log()` points it at a buffer for a while; everything else goes to Jupyter's own stream."""

    def __init__(self, console: Any) -> None:
        self.console = self.stream = console

    def write(self, text: str) -> int:
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # Jupyter tells its stream which cell is running
        return getattr(self.console, name)


if not isinstance(sys.stdout, _Switchboard):
    sys.stdout, sys.stderr = _Switchboard(sys.stdout), _Switchboard(sys.stderr)
    for _handler in logging.getLogger().handlers:
        if isinstance(_handler, logging.StreamHandler):
            _handler.setStream(sys.stdout)
logging.getLogger("fixtures").setLevel(logging.WARNING)  # the simulators' "listening on ..." lines

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LOG_LINE = re.compile(r"^\S+ \[(?P<level>\w+)\s*\] (?P<message>.*?)\s+\[[\w.]+\]")


@dataclass
class CapturedLog:
    text: str = ""
    messages: list[str] = field(default_factory=list)  # "level: message", without timestamps or colours


@contextlib.contextmanager
def captured_log() -> Generator[CapturedLog]:
    """Keep what is logged (and printed) inside the block out of the notebook, for picking lines from."""
    buffer, log = io.StringIO(), CapturedLog()
    saved = sys.stdout.stream, sys.stderr.stream
    sys.stdout.stream = sys.stderr.stream = buffer
    try:
        yield log
    finally:
        sys.stdout.stream, sys.stderr.stream = saved
        log.text = _ANSI.sub("", buffer.getvalue())
        lines = (_LOG_LINE.match(line) for line in log.text.splitlines())
        log.messages = [f"{m['level']}: {m['message']}" for m in lines if m]


@contextlib.contextmanager
def outside_the_event_loop() -> Generator[None]:
    """Let `asyncio.run()` work in a cell (dag.test() runs deferred triggers with it): Jupyter's running
    loop is detached for the block, then put back. It uses asyncio's private hook; notebooks only."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        yield
        return
    asyncio.events._set_running_loop(None)
    try:
        yield
    finally:
        asyncio.events._set_running_loop(loop)
        asyncio.set_event_loop(loop)  # asyncio.run() leaves no current loop behind


def module(name: str):
    """The exercise module of the chosen target, e.g. `module("custom_sensors")`."""
    return target.module(name)


print(f"walkthrough target: {target.name} ({target.package}/)")
