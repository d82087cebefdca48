"""What a graded run is given: its options, the environment of its test process and its pytest command line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grading.core.channel import SANDBOXED_VAR
from grading.suite import sandbox

# Variables of the caller that would change what pytest runs or where Airflow lives: the graded run sets
# its own (tests/conftest.py gives every session a fresh AIRFLOW_HOME).
DROPPED_ENV_PREFIXES = ("PYTEST_", "AIRFLOW__", "WORKBOOK_")
DROPPED_ENV = {"AIRFLOW_HOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME"}
# Where a sandboxed test process reads the node ids an earlier process already ran.
SANDBOX_DESELECT = "/run/grading-done.txt"


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
