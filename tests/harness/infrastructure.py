"""When Airflow or the machine fails rather than the code under test: the error that says so, how slow the
machine is right now, and the SQLite settings every process of a real deployment uses.

An `InfrastructureError` (an API that answers 5xx or nothing after its retries, a process that never became
ready or died, a database error) ends the test as an infrastructure outcome, not as a failed criterion:
`tests/conftest.py` turns it into its own report status, and the grader re-runs such a test once.

This module imports nothing of Airflow: every Airflow process imports `SQLITE_CONNECT_ARGS` from it while
it reads its configuration.
"""

from __future__ import annotations

import os

import pytest

# Python's sqlite3 waits 5 s for a lock by default; a loaded machine with four Airflow processes writing
# the same file needs longer ("database is locked" is an HTTP 500 "Database error" in the API server).
# Airflow itself already switches every connection to WAL (airflow/utils/orm_event_handlers.py).
SQLITE_CONNECT_ARGS: dict[str, object] = {"timeout": 60}
SQLITE_CONNECT_ARGS_ASYNC: dict[str, object] = {"timeout": 60}

# Deadlines are written for an idle 2-core machine and stretched by at most this much.
MAX_SLOWNESS = 3.0
SLOWNESS_ENV = "WORKBOOK_SLOWNESS"  # a fixed factor instead of the measured one (CI runners, debugging)

FINAL_LINE = "INFRASTRUCTURE: Airflow or the machine failed here, not the code under test; the test will be re-run"


class InfrastructureError(Exception):
    """Airflow itself (its processes, its API, its database) or the machine failed, not the code under test."""


def slowness() -> float:
    """How much slower than an idle machine this one is now: the 1-minute load average per core, from 1 to
    MAX_SLOWNESS (or `$WORKBOOK_SLOWNESS`). Deadlines are multiplied by it; polls never sleep longer for it."""
    fixed = os.environ.get(SLOWNESS_ENV)
    if fixed:
        return max(float(fixed), 1.0)
    try:
        per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return 1.0
    return min(max(per_core, 1.0), MAX_SLOWNESS)


def scaled(seconds: float) -> float:
    """`seconds` on an idle machine, stretched for this one."""
    return seconds * slowness()


def find_infrastructure_error(exc: BaseException | None) -> InfrastructureError | None:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, InfrastructureError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def annotate_report(item: pytest.Item, call: pytest.CallInfo, report: pytest.TestReport) -> None:
    """For `tests/conftest.py`'s makereport hook: an InfrastructureError becomes the report's own outcome
    (`report.infrastructure`, one final line), and a failed e2e test shows the tail of each process's log."""
    if not report.failed or call.excinfo is None:
        return
    error = find_infrastructure_error(call.excinfo.value)
    # Only a real deployment's failure counts: in a test without one, the code under test runs in this
    # process and could raise the error itself to turn its failure into "could not grade".
    if error is not None and "airflow_processes" in getattr(item, "fixturenames", ()):
        report.infrastructure = True
        report.longrepr = f"{item.nodeid}: {str(error).rstrip()}\n{FINAL_LINE}"
        return
    deployment = getattr(item, "funcargs", {}).get("airflow_processes")
    if deployment is not None and report.when == "call":
        report.sections.append(("Airflow process logs", deployment.log_tails(40)))


def report_teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """For `pytest_report_teststatus`: infrastructure outcomes get their own letter and summary count."""
    if getattr(report, "infrastructure", False):
        return "infrastructure", "I", "INFRASTRUCTURE"
    return None
