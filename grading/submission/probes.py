"""What decides "could not grade" for a submission: the grader's own probes, run after the fact in a fresh
sandbox with no learner code, never a signal the learner's code could produce.

A graded run can end in two ways that would blame the machine: pytest exiting with its usage or internal
error status before any test ran, and tests ending as infrastructure (Airflow failed) even after their re-run.
Code under test can produce both: `os._exit(4)` while its module is imported, an `InfrastructureError` built
through a string import, a trigger that kills the triggerer. So neither is believed on its own. The grader then
runs its own control test in the same sandbox and the same tree, whose files it writes and takes away again:

- `pytest_starts`: a test that asserts nothing, outside every exercise's folder (no learner module is
  imported), with the same command line, plugin and conftest;
- `airflow_works`: an e2e test starting a deployment whose DAG folder holds only the grader's control DAG (a
  task deferring to Airflow's own DateTimeTrigger), run to success.

When the probe passes, the machine was fine and the run's signal was the submission's doing: the tests it
affected fail. Only when the probe fails too is the grade "could not grade". A token would not do: anything
the test process knows, the learner's code running in it knows too.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from grading.core.errors import GradingError
from grading.scoring.run import Run
from grading.suite.options import RunOptions
from grading.suite.runner import run_suite

PYTEST_CONTROL = '''def test_the_graders_pytest_starts():
    assert True
'''
AIRFLOW_CONTROL_DAG = '''from datetime import UTC, datetime, timedelta

from airflow.providers.standard.triggers.temporal import DateTimeTrigger
from airflow.sdk import BaseOperator, dag


class WaitOnTheTriggerer(BaseOperator):
    def execute(self, context):
        self.defer(trigger=DateTimeTrigger(moment=datetime.now(UTC) + timedelta(seconds=2)), method_name="fired")

    def fired(self, context, event=None):
        return "fired"


@dag(dag_id="grading_control", schedule=None, catchup=False)
def grading_control():
    WaitOnTheTriggerer(task_id="wait")


grading_control()
'''
AIRFLOW_CONTROL_TEST = '''from pathlib import Path

import pytest

from tests.harness.api import airflow_processes  # noqa: F401 (the fixture)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def airflow_extra_env():
    return {"AIRFLOW__CORE__DAGS_FOLDER": str(Path(__file__).parent / "dags")}


def test_the_graders_control_dag_runs(airflow_processes):
    run_id = airflow_processes.trigger_dag("grading_control")
    assert airflow_processes.wait_for_run("grading_control", run_id, timeout=180) == "success"
'''
PROBE_TEST_TIMEOUT, PROBE_TIMEOUT = 300.0, 600.0
AIRFLOW_BLAMED = ("Airflow failed while this test ran the submission's code, and the grader's own control "
                  "deployment ran fine on the same machine afterwards: counted as the submission's failure")


_pytest_started: dict[Path, bool] = {}  # graded tree -> the answer (a run restarts many times; one probe does)


def pytest_starts(options: RunOptions) -> bool:
    """Whether pytest, the grading plugin and the suite's conftest start here and run a test of the grader's."""
    if options.root not in _pytest_started:
        name = f"test_grading_control_{secrets.token_hex(4)}"
        with _planted(options.root, {f"tests/{name}.py": PYTEST_CONTROL}):
            _pytest_started[options.root] = _passes(options, f"tests/{name}.py",
                                                    f"tests/{name}.py::test_the_graders_pytest_starts")
    return _pytest_started[options.root]


def airflow_works(options: RunOptions) -> bool:
    """Whether a deployment of the grader's own (no learner DAG, trigger or module) runs a deferrable DAG here."""
    folder = f"tests/grading_control_{secrets.token_hex(4)}"
    files = {f"{folder}/__init__.py": "", f"{folder}/test_control.py": AIRFLOW_CONTROL_TEST,
             f"{folder}/dags/grading_control.py": AIRFLOW_CONTROL_DAG}
    with _planted(options.root, files):
        return _passes(options, folder, f"{folder}/test_control.py::test_the_graders_control_dag_runs")


def settle_infrastructure(options: RunOptions, run: Run) -> bool:
    """Tests that ended as infrastructure fail as the submission's when the grader's control deployment works;
    returns whether any did (False: Airflow is broken here, the infrastructure outcomes stand)."""
    blamed = [test for test in run.tests.values() if test.outcome == "infrastructure"]
    if not blamed or not airflow_works(options):
        return False
    for test in blamed:
        test.outcome, test.message = "failed", AIRFLOW_BLAMED
    run.notes.append(f"{len(blamed)} test(s) ended with Airflow failing, but the grader's control deployment "
                     "worked: they count as failed")
    return True


def _passes(options: RunOptions, path: str, nodeid: str) -> bool:
    # The grader's own test gets the time it needs, whatever budget the learner's tests were given.
    probe = replace(options, paths=[path], gate="none", markers=None, extra_args=(), pytest_starts=None,
                    per_test_timeout=max(options.per_test_timeout, PROBE_TEST_TIMEOUT),
                    run_timeout=PROBE_TIMEOUT)
    try:
        run = run_suite(probe)
    except GradingError:
        return False
    test = run.tests.get(nodeid)
    return test is not None and test.outcome == "passed" and not run.violations


@contextmanager
def _planted(root: Path, files: dict[str, str]) -> Generator[None, None, None]:
    """The grader's control files in the tree for the probe, and gone afterwards (before the tree's hash)."""
    written: list[Path] = []
    try:
        for relative, text in files.items():
            path = root / relative
            for parent in reversed(path.relative_to(root).parents[:-1]):
                if not (root / parent).exists():
                    (root / parent).mkdir()
                    (root / parent).chmod(0o755)
                    written.append(root / parent)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o644)
            written.append(path)
        yield
    finally:
        for path in reversed(written):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
