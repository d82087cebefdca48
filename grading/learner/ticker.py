"""One line, redrawn every second on a terminal while the tests run: how many are done, which one runs and
for how long, so code that hangs shows as a test whose time keeps growing instead of as silence."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

CLEAR_LINE = "\r\033[K"
# A test running longer than this is shown with the limit that will cut it.
SLOW_TEST_S = 10.0
MAX_LINE_BYTES = 64 * 1024


class RunState:
    """What the record has said so far: tests collected, tests done, and the test running since when."""

    def __init__(self, events: Iterable[dict[str, Any]] = ()) -> None:
        self.collected, self.done = 0, 0
        self.running: dict[str, float] = {}
        for event in events:
            self.add(event)

    def add(self, event: dict[str, Any]) -> None:
        kind, nodeid = event.get("event"), str(event.get("nodeid", "?"))
        if kind == "collected":
            self.collected += 1
        elif kind == "start":
            at = event.get("at")
            self.running[nodeid] = float(at) if isinstance(at, int | float) else time.time()
        elif kind == "result":
            self.done += 1
            self.running.pop(nodeid, None)


def status_line(state: RunState, *, elapsed: float, now: float, per_test_limit: float) -> str:
    """`running: 3/19 tests done · test_waits_for_the_status_asked_for for 12 s (cut at 60 s) · 15 s in all`."""
    parts = [f"running: {state.done}/{state.collected} tests done" if state.collected
             else "running: collecting the tests"]
    if state.running:
        nodeid, since = list(state.running.items())[-1]
        took = max(now - since, 0.0)
        limit = f" (cut at {per_test_limit:g} s)" if took >= SLOW_TEST_S and per_test_limit > 0 else ""
        parts.append(f"{nodeid.rsplit('::', 1)[-1][:60]} for {took:.0f} s{limit}")
    parts.append(f"{elapsed:.0f} s in all · Ctrl-C stops")
    return " · ".join(parts)


class Ticker:
    """Draws status_line() while a run goes on (`with Ticker(...)`); draws nothing when `out` is no terminal."""

    def __init__(self, out: TextIO, state: Callable[[], RunState], *, per_test_limit: float,
                 every: float = 1.0, enabled: bool = True) -> None:
        self.out, self.state, self.per_test_limit, self.every = out, state, per_test_limit, every
        self.enabled = enabled
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.started = time.monotonic()

    def __enter__(self) -> Ticker:
        self.started = time.monotonic()
        if self.enabled and _is_terminal(self.out):
            self.thread = threading.Thread(target=self._draw, daemon=True, name="ticker")
            self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
            self.out.write(CLEAR_LINE)
            self.out.flush()

    def _draw(self) -> None:
        while not self.stopping.wait(self.every):
            try:
                line = status_line(self.state(), elapsed=time.monotonic() - self.started, now=time.time(),
                                   per_test_limit=self.per_test_limit)
            except (OSError, ValueError):
                continue
            width = shutil.get_terminal_size((100, 20)).columns - 1  # a wrapped line could not be redrawn
            self.out.write(CLEAR_LINE + line[:width])
            self.out.flush()


class EventLines:
    """A RunState fed with the raw bytes of a record as they arrive (a line may come in two pieces)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.partial = b""
        self.state = RunState()

    def feed(self, chunk: bytes) -> None:
        with self.lock:
            *lines, self.partial = (self.partial + chunk).split(b"\n")
            if len(self.partial) > MAX_LINE_BYTES:
                self.partial = b""  # not an event line: the record's own check reports it
            for line in lines:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if isinstance(event, dict):
                    self.state.add(event)

    def __call__(self) -> RunState:
        """A copy: the ticker reads it while the record goes on arriving."""
        with self.lock:
            copy = RunState()
            copy.collected, copy.done, copy.running = self.state.collected, self.state.done, dict(self.state.running)
            return copy


def _is_terminal(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):
        return False
