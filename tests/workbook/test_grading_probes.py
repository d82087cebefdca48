""""Could not grade" is decided by the grader's own probes, run with no learner code, never by a signal the
learner's code can produce: an infrastructure outcome or pytest's error status is the submission's failure
when the grader's control test passes on the same machine, and "could not grade" only when it fails too."""

from __future__ import annotations

from pathlib import Path

import pytest

from grading.scoring.run import Run
from grading.scoring.run import TestOutcome as Outcome  # named Test*, pytest would collect it
from grading.submission import graded_tree, probes
from grading.suite import sandbox
from grading.suite.options import RunOptions, Sandbox
from tests.workbook.grading_fixtures.builder import make_workbook

REPO_ROOT = Path(__file__).resolve().parents[2]


def infrastructure_run() -> Run:
    blamed = Outcome(nodeid="tests/ex11/test_e2e.py::test_run", path="tests/ex11/test_e2e.py",
                         criteria=["ex11.t1.a"], speed=2, outcome="infrastructure", message="the triggerer died")
    passed = Outcome(nodeid="tests/ex11/test_e2e.py::test_other", path="tests/ex11/test_e2e.py",
                         criteria=["ex11.t1.b"], speed=2, outcome="passed", message="")
    return Run(tests={t.nodeid: t for t in (blamed, passed)})


def test_airflow_failing_is_the_submissions_when_the_control_deployment_works(monkeypatch):
    monkeypatch.setattr(probes, "airflow_works", lambda options: True)
    run = infrastructure_run()
    assert probes.settle_infrastructure(object(), run) is True
    blamed = run.tests["tests/ex11/test_e2e.py::test_run"]
    assert (blamed.outcome, blamed.message) == ("failed", probes.AIRFLOW_BLAMED)
    assert run.tests["tests/ex11/test_e2e.py::test_other"].outcome == "passed"


def test_airflow_failing_stands_when_the_control_deployment_fails_too(monkeypatch):
    monkeypatch.setattr(probes, "airflow_works", lambda options: False)
    run = infrastructure_run()
    assert probes.settle_infrastructure(object(), run) is False
    assert run.tests["tests/ex11/test_e2e.py::test_run"].outcome == "infrastructure"


def test_no_probe_without_an_infrastructure_outcome(monkeypatch):
    def must_not_run(options):
        raise AssertionError("the control deployment started for a run with no infrastructure outcome")

    monkeypatch.setattr(probes, "airflow_works", must_not_run)
    run = infrastructure_run()
    run.tests["tests/ex11/test_e2e.py::test_run"].outcome = "failed"
    assert probes.settle_infrastructure(object(), run) is False


def sandboxed_options(tree: Path, log: Path) -> RunOptions:
    try:
        bwrap = sandbox.probe()
    except sandbox.SandboxUnavailable as error:
        pytest.skip(f"no sandbox here: {error}")
    return RunOptions(root=tree, target="starter", paths=[], per_test_timeout=300, run_timeout=900, log=log,
                      log_is_safe=False, sandbox=Sandbox(bwrap=bwrap, cache=tree / graded_tree.CACHE_FOLDER,
                                                         limits=sandbox.Limits(processes=256)))


def test_the_pytest_probe_passes_and_leaves_the_tree_as_it_was(tmp_path):
    workbook = make_workbook(tmp_path / "workbook")
    tree = graded_tree.build(workbook, workbook / "starters", tmp_path / "tree")
    before = graded_tree.digest(tree.root)
    options = sandboxed_options(tree.root, tmp_path / "log.txt")
    assert probes.pytest_starts(options), (tmp_path / "log.txt").read_text(encoding="utf-8")[-3000:]
    assert graded_tree.changes(before, graded_tree.digest(tree.root)) == []


def test_the_pytest_probe_fails_where_pytest_cannot_start(tmp_path):
    workbook = make_workbook(tmp_path / "workbook")
    tree = graded_tree.build(workbook, workbook / "starters", tmp_path / "tree")
    (tree.root / "pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = ['--no-such-option']\n",
                                              encoding="utf-8")
    assert not probes.pytest_starts(sandboxed_options(tree.root, tmp_path / "log.txt"))


@pytest.mark.timeout(1200)
def test_the_control_deployment_runs_in_the_sandbox_with_no_learner_code(tmp_path):
    """A real deployment (the slow part): its DAG folder holds only the grader's DAG, so learner DAGs that would
    break Airflow (here: one that kills every process of the sandbox, the probe's pytest too, once parsed; with
    it in the probe's DAG folder the probe fails) cannot make the probe fail."""
    starters = tmp_path / "learner" / "starters"
    starters.mkdir(parents=True)
    (starters / "dags").mkdir()
    (starters / "dags" / "breaks_airflow.py").write_text(
        "# an airflow dag file (so the dag-processor parses it)\nimport os\nimport signal\n\n"
        "os.kill(-1, signal.SIGKILL)\n", encoding="utf-8")
    tree = graded_tree.build(REPO_ROOT, starters, tmp_path / "tree")
    before = graded_tree.digest(tree.root)
    options = sandboxed_options(tree.root, tmp_path / "log.txt")
    assert probes.airflow_works(options), (tmp_path / "log.txt").read_text(encoding="utf-8")[-5000:]
    assert graded_tree.changes(before, graded_tree.digest(tree.root)) == []


E2E_TEST = '''import pytest

from tests.harness.airflow_processes import airflow_extra_env, airflow_processes  # noqa: F401 (fixtures)
from tests.harness.target import current_target

mini = current_target().module("mini")
pytestmark = pytest.mark.E2E_MARK


@pytest.mark.criterion("ex01.t1.adds")
def test_add_beside_a_deployment(airflow_processes):
    assert mini.add(20, 30) == 50
'''
# Spelled apart: this suite's own check reads that marker in a test file as an e2e test of the file itself.
E2E_TEST = E2E_TEST.replace("E2E_MARK", "e" + "2e")
FAKES_AIRFLOW_FAILING = '''import importlib


def add(a: int, b: int) -> int:
    if a == 20:  # only in the e2e test, where the harness believes an InfrastructureError
        harness = importlib.import_module("tests.harness." + "infra" + "structure")
        raise harness.InfrastructureError("the API server answered 503 after its retries")
    return abs(a) + abs(b)
'''


@pytest.mark.timeout(1800)
def test_an_infrastructure_error_raised_by_learner_code_beside_a_deployment_is_its_failure(tmp_path, capsys):
    """End to end: the learner's code raises the harness's InfrastructureError inside an e2e test (where the
    harness believes it), twice; the grader's control deployment works, so the test fails: a score, exit 0,
    not "could not grade"."""
    import json
    import shutil

    from grading.cli import main
    from tests.workbook.grading_fixtures.builder import make_submission

    workbook = make_workbook(tmp_path / "workbook")
    (workbook / "tests" / "ex01_mini" / "test_e2e_mini.py").write_text(E2E_TEST, encoding="utf-8")
    template = next((REPO_ROOT / ".cache").glob("airflow-db-*/airflow.db"), None)
    if template is not None:  # else the sandboxed harness migrates one in its own tmpfs (slower)
        (workbook / ".cache" / template.parent.name).mkdir(parents=True)
        shutil.copyfile(template, workbook / ".cache" / template.parent.name / "airflow.db")
    learner = make_submission("half_done", workbook, tmp_path / "learner")
    mini = learner / "starters" / "mini.py"
    head, rest = mini.read_text(encoding="utf-8").split("def add", 1)
    mini.write_text(head + FAKES_AIRFLOW_FAILING + "\n\ndef parse_status" + rest.split("def parse_status", 1)[1],
                    encoding="utf-8")
    out = tmp_path / "report"
    code = main(["--root", str(workbook), "grade-submission", str(learner), "--out", str(out), "--timeout", "300",
                 "--max-processes", "512", "--one-process"])  # the probe decides only where learner code
    printed = capsys.readouterr()                           # can raise in the test process itself
    full = json.loads((out / "instructor" / "results.json").read_text(encoding="utf-8"))
    assert code == 0, f"exit {code}: {printed.err[-2000:]}\n{full['notes']}"
    adds = next(c for e in full["exercises"] for t in e["tasks"] for c in t["criteria"] if c["id"] == "ex01.t1.adds")
    assert (full["verdict"], adds["status"], adds["points"]) == ("graded", "failed", 0), (full["verdict"], adds)
    assert probes.AIRFLOW_BLAMED in adds["message"], adds
    assert any("control deployment worked" in note for note in full["notes"]), full["notes"]
