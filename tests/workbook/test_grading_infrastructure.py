"""When Airflow or the machine fails (tests.harness.infrastructure.InfrastructureError), not the graded code:
the test ends as its own outcome, the grader runs it once more, and a second failure is "could not grade
(infrastructure)" with exit code 2, never a silent 0 points."""

from __future__ import annotations

import json
from pathlib import Path

from grading.cli import main
from tests.workbook.grading_fixtures.builder import make_workbook

# Raises InfrastructureError on its first `fail_times` runs (counted in a file), then checks the greeting.
FLAKY_INFRASTRUCTURE_TEST = '''
from pathlib import Path

import pytest

from tests.harness.infrastructure import InfrastructureError
from tests.harness.target import current_target

RUNS = Path(__file__).with_name("runs.txt")


@pytest.fixture
def {deployment}():
    return None  # stands for the real deployment: only a test that has one can fail for infrastructure


@pytest.mark.criterion("ex02.t1.greets")
def test_greet_through_a_flaky_airflow({deployment}):
    runs = int(RUNS.read_text()) if RUNS.exists() else 0
    RUNS.write_text(str(runs + 1))
    if runs < {fail_times}:
        raise InfrastructureError("GET /api/v2/dags/x: HTTP 500 Database error (8 attempts)")
    assert current_target().module("greeting").greet("Ada") == "Hello, Ada!"
'''


def grade_with(tmp_path: Path, fail_times: int, deployment: str = "airflow_processes") -> tuple[int, dict, Path]:
    workbook = make_workbook(tmp_path / "workbook")
    test_file = workbook / "tests" / "ex02_greeting" / "test_flaky_airflow.py"
    test_file.write_text(FLAKY_INFRASTRUCTURE_TEST.format(fail_times=fail_times, deployment=deployment))
    out = tmp_path / "out"
    code = main(["--root", str(workbook), "grade", "ex02", "--target", "solution", "--out", str(out),
                 "--timeout", "20"])
    return code, json.loads((out / "results.json").read_text(encoding="utf-8")), test_file.with_name("runs.txt")


def criterion(results: dict, criterion_id: str) -> dict:
    return next(c for e in results["exercises"] for t in e["tasks"] for c in t["criteria"] if c["id"] == criterion_id)


def test_an_infrastructure_failure_is_run_once_more_and_then_counts(tmp_path):
    code, results, runs = grade_with(tmp_path, fail_times=1)
    greets = criterion(results, "ex02.t1.greets")
    assert runs.read_text() == "2", f"the flaky test: expected 2 runs (one re-run), got {runs.read_text()}"
    assert code == 0 and greets["status"] == "passed" and greets["points"] == greets["max_points"], (
        f"grade after one infrastructure failure and a passing re-run: exit {code}, criterion {greets!r}"
    )


def test_a_second_infrastructure_failure_is_could_not_grade_and_exit_2(tmp_path, capsys):
    code, results, runs = grade_with(tmp_path, fail_times=2)
    greets = criterion(results, "ex02.t1.greets")
    assert runs.read_text() == "2", f"the flaky test: expected 2 runs and no more, got {runs.read_text()}"
    assert code == 2, f"grade with Airflow failing twice: expected exit 2, got {code}"
    assert greets["status"] == "infrastructure" and greets["message"].startswith("could not grade (infrastructure)"), (
        f"criterion of a test Airflow failed twice: expected status 'infrastructure', got {greets!r}"
    )
    assert "HTTP 500 Database error" in greets["message"], greets["message"]
    assert "could not grade (infrastructure): ex02.t1.greets" in capsys.readouterr().err


def test_an_infrastructure_error_without_a_deployment_is_a_plain_failure(tmp_path):
    # Without a real deployment the code under test runs in the test process: raising the error itself
    # must not turn a failure into "could not grade".
    code, results, runs = grade_with(tmp_path, fail_times=2, deployment="some_fixture")
    greets = criterion(results, "ex02.t1.greets")
    assert runs.read_text() == "1", f"the test: expected 1 run (no re-run), got {runs.read_text()}"
    assert code == 0 and greets["status"] == "failed", (
        f"InfrastructureError raised in a test without airflow_processes: expected a failed criterion and exit 0, "
        f"got exit {code}, criterion {greets!r}"
    )
