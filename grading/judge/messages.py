"""The one line a learner reads for a failed test: the starter's todo as is, else the exception's first line
with where in the learner's code it came from, a test's own failing lookup spelled out, a timeout's place.

Also what the suite's conftest attaches to a failure (what the learner's code returned) and what the test
measured inside the learner's subject process: both are filled by the harness through grading.api.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import TYPE_CHECKING

from grading.core.errors import StarterImportError

if TYPE_CHECKING:  # the subject process reads measured_in_subject without loading pytest
    import pytest

# What the learner's code gave back in the test running now, when its type is not the one Airflow expects
# (tests/conftest.py notes it: `OrderStatusSensor.poke() returned 'not yet' (str), not a bool or ...`).
learner_notes: list[str] = []
# What the test running now measured inside the learner's subject process (tests.harness.remote notes each kind).
measured_in_subject: set[str] = set()
MESSAGE_LIMIT = 300
# Where a learner's code lives (the target's package): a frame there is the line a failure points at.
LEARNER_FOLDERS = ("starters", "solutions")
# Expressions a failing lookup's container is read back with: names, attributes and constant subscripts only,
# so reading it back calls nothing.
_PLAIN = (ast.Expression, ast.Name, ast.Attribute, ast.Subscript, ast.Constant, ast.Load)


def take_measured() -> list[str]:
    """What this test measured inside the learner's process, in a judge/subject run; the next test starts empty."""
    taken = sorted(measured_in_subject)
    measured_in_subject.clear()
    return taken


def one_line(text: str) -> str:
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 1] + "…"


def starter_todo(exc: BaseException | None) -> str | None:
    """A starter's `NotImplementedError("Exercise 4 · Task 1: ...")`, anywhere in the exception chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NotImplementedError) and str(exc).startswith("Exercise"):
            return f"NotImplementedError: {one_line(str(exc))}"
        exc = exc.__cause__ or exc.__context__
    return None


def lookup_message(excinfo: pytest.ExceptionInfo, test_file: str | os.PathLike[str]) -> str | None:
    """A KeyError or IndexError raised by a test's own lookup (`event["status"]`, `rows[0]`) in `test_file` as the
    line a learner needs: the test's file and line, the expression, the key, and the value that came back with its
    type. Only the failing test's own file is quoted: a frame that merely claims another file's name (code can
    compile itself under any filename) never gets that file's lines into the message."""
    if not isinstance(excinfo.value, KeyError | IndexError) or not excinfo.traceback:
        return None
    entry = excinfo.traceback[-1]
    path = Path(str(entry.path))
    if "tests" not in path.parts or path.resolve() != Path(test_file).resolve():
        return None  # raised in the code under test or in a library: its own message says more
    line = str(entry.statement).strip()
    where = f"{'/'.join(path.parts[path.parts.index('tests'):])}:{entry.lineno + 1}"
    key = excinfo.value.args[0] if excinfo.value.args else None
    shown = f"{type(excinfo.value).__name__}: {excinfo.value}"
    try:
        tree = ast.parse(line)
    except SyntaxError:
        return f"{where}: {shown} in `{' '.join(line.split())[:150]}`"
    for node in ast.walk(tree):
        if (isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant)
                and (node.slice.value == key or isinstance(excinfo.value, IndexError))
                and all(isinstance(n, _PLAIN) for n in ast.walk(ast.Expression(node.value)))):
            try:
                container = eval(compile(ast.Expression(node.value), "<lookup>", "eval"),  # noqa: S307 (plain names)
                                 entry.frame.f_globals, entry.frame.f_locals)
            except Exception:  # noqa: BLE001 (the message falls back to the line)
                continue
            wanted = f"key {node.slice.value!r}" if isinstance(excinfo.value, KeyError) else f"index {node.slice.value!r}"
            return (f"{where}: `{ast.unparse(node.value)}` has no {wanted}: it came back as "
                    f"{type(container).__name__} {container!r:.200}")
    return f"{where}: {shown} in `{' '.join(line.split())[:150]}`"


def learner_frame(excinfo: pytest.ExceptionInfo, root: Path) -> str | None:
    """`starters/custom_sensors.py:73 in poke`: the innermost frame of the traceback in the learner's code
    (for a timeout: where the code was when it was cut), or None when no frame is theirs."""
    import traceback

    root = root.resolve()
    folders = [root / name for name in LEARNER_FOLDERS]
    found = None
    for frame in traceback.extract_tb(excinfo.tb):
        path = Path(frame.filename)
        if path.is_absolute() and any(path.is_relative_to(folder) for folder in folders):
            found = f"{path.relative_to(root).as_posix()}:{frame.lineno} in {frame.name}"
    return found


def is_timeout(text: str) -> bool:
    return "Timeout" in text and "pytest-timeout" in text


def failure_message(report: pytest.TestReport, call: pytest.CallInfo, root: Path | None = None) -> str:
    """The one line a learner needs: the starter's todo as is, else the exception's first line (with the line
    of the learner's code it came from, or where a timeout cut it)."""
    if report.passed:
        return ""
    if report.skipped:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        return one_line(str(reason).removeprefix("Skipped: "))
    excinfo = call.excinfo
    if excinfo is not None:
        todo = starter_todo(excinfo.value)
        if todo:
            return todo
        if isinstance(excinfo.value, StarterImportError):
            return one_line(str(excinfo.value))
        lookup = lookup_message(excinfo, report.fspath)
        if lookup:
            return one_line(lookup)
        line = one_line(excinfo.exconly()) or excinfo.typename
        if learner_notes:
            note = learner_notes[-1]
            line = f"{line[:max(MESSAGE_LIMIT - len(note) - 2, 60)]}; {note}"
        where = learner_frame(excinfo, root) if root is not None else None
        if where and is_timeout(line):
            return f"{line.removeprefix('Failed: ').rstrip('.')}: the code was at {where}"
        return f"{line[:MESSAGE_LIMIT - len(where) - 8]} (at {where})" if where else line
    crash = getattr(report.longrepr, "reprcrash", None)
    return one_line(crash.message if crash else str(report.longrepr))


def collection_message(report: pytest.CollectReport) -> str:
    """The one line for a test file that could not be collected: the import's exception, a starter's todo."""
    text = str(report.longrepr)
    # pytest's import-error report ends with the exception line ("E   ModuleNotFoundError: ..."): keep that.
    errors = [line.strip()[1:].strip() for line in text.splitlines() if line.strip().startswith("E ")]
    for line in reversed(errors):
        if line and not line.startswith("^"):
            todo_at = line.find("NotImplementedError: Exercise")
            return one_line(line[todo_at:] if todo_at >= 0 else line)
    return one_line(text.splitlines()[-1] if text.strip() else "could not be collected")
