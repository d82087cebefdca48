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
        _last_log[0] = log.text


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


# ---- on a starter: a cell whose task is not done says so in one line, and the notebook goes on ----------
_TODO = re.compile(r"^Exercise (?P<exercise>[\d.]+) · Task (?P<task>\d+): (?P<what>.*)$")
_TODO_LOGGED = re.compile(r"NotImplementedError: (Exercise [\d.]+ · Task \d+: [^\n]*)")
_not_done: list[str] = []  # "Task 2" for every task a cell found unstarted
_last_log = [""]  # what the last `captured_log()` block caught (a DAG run's task log)
_last_value: list[Any] = [None]


def _todo_of(error: BaseException | None) -> re.Match | None:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, NotImplementedError) and (match := _TODO.match(str(error).strip())):
            return match
        error = error.__cause__ or error.__context__
    return None


def cell_failed(error: BaseException) -> None:
    """A starter cell's exception: an unstarted task (or a name an earlier unstarted cell did not define)
    is one line; anything else is raised as usual."""
    todo = _todo_of(error)
    if todo is None and isinstance(error, AssertionError) and "dag.test()" in str(error):
        # A DAG run failed: its task raised in Airflow's task runner, and the log says why.
        logged = _TODO_LOGGED.search(_last_log[0])
        todo = _TODO.match(logged.group(1).strip()) if logged else None
    if todo:
        _not_done.append(f"Task {todo['task']}")
        print(f"Task {todo['task']} not done yet: {todo['what']}")
        return
    if isinstance(error, NameError) and _not_done:
        print(f"{_not_done[-1]} not done yet: skipped, this cell needs {error.name!r} from an earlier cell")
        return
    if _not_done and isinstance(error, Exception) and not _raised_in_your_code(error):
        # What an earlier, unstarted cell would have made is missing (a name, a state file, an event).
        first = (str(error).strip().splitlines() or [""])[0][:160]
        print(f"{_not_done[-1]} not done yet: skipped, this cell needs what an earlier cell would have made "
              f"({type(error).__name__}: {first})")
        return
    raise error


def _raised_in_your_code(error: BaseException) -> bool:
    """Did the traceback pass through the target's own package (a bug in code you wrote: show it whole)?"""
    import traceback

    folder = str(target.folder)
    return any(frame.filename.startswith(folder) for frame in traceback.extract_tb(error.__traceback__))


def cell_value() -> Any:
    """The value of the cell's last expression (None, which shows nothing, when the cell stopped early)."""
    value, _last_value[0] = _last_value[0], None
    return value


class _StarterCells:
    """An IPython AST transformer: `body` becomes `try: body / except BaseException as e: cell_failed(e)`,
    the last expression's value kept and shown after the `try`, so Jupyter still displays it."""

    def visit(self, tree):
        import ast

        if not tree.body or any(isinstance(n, (ast.Import, ast.ImportFrom)) and
                                any(a.name == "walkthrough" for a in n.names) for n in tree.body):
            return tree
        body = list(tree.body)
        shows_value = isinstance(body[-1], ast.Expr)
        if shows_value:
            keep = ast.parse("walkthrough._last_value[0] = None").body[0]
            keep.value = body[-1].value
            body[-1] = keep
        handler = ast.parse("try:\n    pass\nexcept BaseException as _wb_error:\n"
                            "    walkthrough.cell_failed(_wb_error)\n").body[0]
        handler.body = body
        new_body = [ast.parse("import walkthrough").body[0], handler]
        if shows_value:
            new_body.append(ast.parse("walkthrough.cell_value()").body[0])
        tree.body = new_body
        return ast.fix_missing_locations(tree)


def _carry_on_in_starter_notebooks() -> None:
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and not any(isinstance(t, _StarterCells) for t in shell.ast_transformers):
        shell.ast_transformers.append(_StarterCells())


if target.name == "starter":
    _carry_on_in_starter_notebooks()


print(f"walkthrough target: {target.name} ({target.package}/)")
