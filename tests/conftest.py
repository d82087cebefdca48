"""The graded suite's switchboard: which side it grades, the session's Airflow, learner-friendly failures."""

from __future__ import annotations

import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from tests.harness import infrastructure
from tests.harness.target import ENV_VAR, PACKAGES, UnknownTarget, resolve

pytest_plugins = ["fixtures.pytest_plugin"]

SPEED_ORDER = {"e2e": 2, "integration": 1}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--target",
        choices=None,  # validated in pytest_configure, so the error names the env var too
        default=None,
        help=f"grade the learner's starters or the reference solutions: {' | '.join(PACKAGES)} "
        f"(default: ${ENV_VAR}, else 'starter')",
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        target = resolve(config.getoption("--target"))
    except UnknownTarget as exc:
        raise pytest.UsageError(f"--target / {ENV_VAR}: {exc}") from None
    # Must happen before anything imports airflow: Airflow reads its configuration at import time.
    from tests.harness import airflow_env

    config.workbook_target = target
    config.workbook_airflow_home = airflow_env.configure(target)


def pytest_unconfigure(config: pytest.Config) -> None:
    home: Path | None = getattr(config, "workbook_airflow_home", None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> list[str]:
    target = config.workbook_target
    return [
        f"workbook target: {target.name} (loads {target.package}/, DAGs from {target.package}/dags/)",
        f"airflow home: {config.workbook_airflow_home}",
    ]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast tests first: unit, then integration (dag.test), then e2e (real Airflow processes)."""
    def speed(item: pytest.Item) -> int:
        return max((SPEED_ORDER.get(m.name, 0) for m in item.iter_markers()), default=0)

    items.sort(key=speed)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    report.criteria = [m.args[0] for m in item.iter_markers("criterion") if m.args]
    if report.failed and call.excinfo is not None:
        message = _starter_message(call.excinfo.value)
        if message:
            report.longrepr = f"{item.nodeid}: {message}"
        else:
            infrastructure.annotate_report(item, call, report)  # Airflow's failure, not the learner's
    return report


def pytest_report_teststatus(report: pytest.TestReport):
    return infrastructure.report_teststatus(report)


def _starter_message(exc: BaseException | None) -> str | None:
    """A starter's `NotImplementedError("Exercise 4 · Task 1: ...")`, found anywhere in the chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NotImplementedError) and str(exc).startswith("Exercise"):
            return f"NotImplementedError: {exc}"
        exc = exc.__cause__ or exc.__context__
    return None


# ---- fixtures every exercise uses ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config):
    """The side under test; `target.module("custom_sensors")` imports its exercise module."""
    return pytestconfig.workbook_target


@pytest.fixture(scope="session")
def airflow_db(pytestconfig: pytest.Config) -> Path:
    """The session's migrated SQLite metadata DB (copied from a template migrated once)."""
    from tests.harness.airflow_env import ensure_metadata_db

    return ensure_metadata_db(pytestconfig.workbook_airflow_home)


@pytest.fixture
def run_dag(airflow_db: Path, capfd: pytest.CaptureFixture[str]):
    """`run_dag(dag_id, env={...})` runs the target's DAG with dag.test() and returns a DagRunResult."""
    from tests.harness.dagrun import run_dag as _run_dag

    def run(dag_id: str, **kwargs):
        return _run_dag(dag_id, capfd=capfd, **kwargs)

    return run


# ---- the per-exercise / per-task progress table -------------------------------------------------------
_outcomes: dict[str, list[bool]] = defaultdict(list)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and not report.passed):
        for criterion in getattr(report, "criteria", ()):
            _outcomes[criterion].append(report.passed)


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    if not _outcomes:
        return
    tasks: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for criterion, results in _outcomes.items():
        exercise, task = criterion.split(".")[:2]
        tasks[(exercise, task)].append(all(results))
    terminalreporter.section(f"progress ({config.workbook_target.name})", sep="-")
    terminalreporter.write_line(f"{'exercise':<10} {'task':<6} criteria met")
    for (exercise, task), met in sorted(tasks.items()):
        terminalreporter.write_line(f"{exercise:<10} {task:<6} {sum(met)}/{len(met)}")
