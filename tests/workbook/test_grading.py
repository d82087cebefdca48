"""`python -m grading grade | check | hint` on a tiny fixture workbook (tests/workbook/grading_fixtures/)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from grading.cli import main
from grading.core.rubric import load
from grading.scoring.grade import RESULTS_SCHEMA
from tests.workbook.grading_fixtures.builder import make_workbook

REPORT_FILES = ("report.md", "results.json", "junit.xml", "report.txt")


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("grading") / "workbook")


def grade(workbook: Path, out: Path, *args: str) -> tuple[int, dict]:
    code = main(["--root", str(workbook), "grade", "--out", str(out), "--timeout", "20", *args])
    return code, json.loads((out / "results.json").read_text(encoding="utf-8"))


def statuses(results: dict) -> dict[str, str]:
    return {c["id"]: c["status"] for e in results["exercises"] for t in e["tasks"] for c in t["criteria"]}


def test_solutions_earn_every_point(workbook, tmp_path):
    code, results = grade(workbook, tmp_path, "--target", "solution")
    assert code == 0, f"grade --target solution exited {code}"
    assert results["total"] == {"points": 7, "max_points": 7, "percent": 100.0, "criteria_passed": 5,
                                "criteria": 5}, f"grade of the fixture solutions: {results['total']}"


def test_starters_earn_nothing_and_say_what_to_do(workbook, tmp_path, capsys):
    code, results = grade(workbook, tmp_path)
    assert code == 0, f"grade exits 0 whenever it ran, got {code}"
    assert results["total"]["points"] == 0, f"starters: expected 0 points, got {results['total']}"
    assert set(statuses(results).values()) == {"failed"}, statuses(results)
    adds = results["exercises"][0]["tasks"][0]["criteria"][0]
    assert adds["message"] == ("NotImplementedError: Exercise 1 · Task 1: implement add "
                               "(exercises/ex01_mini.md#task-1)"), f"message of ex01.t1.adds: {adds['message']!r}"
    assert adds["hint"] == "add(2, 3) is 5."
    table = capsys.readouterr().out
    assert "total: 0/7 points (0 %), target starter" in table, table


def test_every_report_is_written_and_readable(workbook, tmp_path):
    code, results = grade(workbook, tmp_path, "--target", "solution", "--format", "json")
    assert code == 0
    assert all((tmp_path / name).is_file() for name in REPORT_FILES), sorted(p.name for p in tmp_path.iterdir())
    assert results["schema"] == RESULTS_SCHEMA
    exercise = results["exercises"][0]
    assert {"id", "title", "points", "max_points", "percent", "tasks"} <= exercise.keys(), exercise.keys()
    criterion = exercise["tasks"][0]["criteria"][0]
    assert {"id", "title", "status", "points", "max_points", "message", "hint", "visibility", "tests"} <= \
        criterion.keys(), criterion.keys()
    suites = ET.parse(tmp_path / "junit.xml").getroot()
    cases = suites.findall("testsuite/testcase")
    assert len(cases) == 5 and suites.get("failures") == "0", ET.tostring(suites, encoding="unicode")[:500]
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert markdown.startswith("# Workbook grade: 7 / 7 points (100 %)"), markdown[:200]
    assert "| ex01 · Mini | 4/4 | 6/6 |" in markdown, markdown


def test_junit_has_a_failure_per_missed_criterion_with_its_hint(workbook, tmp_path):
    grade(workbook, tmp_path)
    failures = ET.parse(tmp_path / "junit.xml").getroot().findall("testsuite/testcase/failure")
    assert len(failures) == 5, f"expected 5 failed criteria in junit.xml, got {len(failures)}"
    assert "Hint: add(2, 3) is 5." in (failures[0].text or ""), failures[0].text


def test_min_score_gates_ci(workbook, tmp_path):
    code, _ = grade(workbook, tmp_path / "starter", "--min-score", "50")
    assert code == 1, f"0 % with --min-score 50: expected exit 1, got {code}"
    code, _ = grade(workbook, tmp_path / "solution", "--target", "solution", "--min-score", "100")
    assert code == 0, f"100 % with --min-score 100: expected exit 0, got {code}"


def test_grading_that_cannot_run_exits_non_zero(tmp_path, capsys):
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "rubric.toml").write_text("schema = 99\n", encoding="utf-8")
    code = main(["--root", str(tmp_path), "grade", "--out", str(tmp_path / "out")])
    assert code == 2, f"an unreadable rubric: expected exit 2, got {code}"
    assert "schema = 99" in capsys.readouterr().err


def test_recorded_run_grades_without_running_again(workbook, tmp_path):
    record = tmp_path / "record.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--target=solution", "-p", "grading.judge.plugin",
         f"--grading-record={record}", "-q", "tests/ex01_mini", "tests/ex02_greeting"],
        cwd=workbook, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:]
    code, results = grade(workbook, tmp_path / "out", "--target", "solution", "--results-from", str(record))
    assert (code, results["total"]["percent"]) == (0, 100.0), results["total"]


def test_check_runs_unit_tests_first_and_names_the_next_step(workbook, capsys):
    code = main(["--root", str(workbook), "check", "ex01", "--timeout", "20"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "ex01  Mini: 0/4 criteria, 0/6 points" in out, out
    assert "ex02" not in out, f"check ex01 must not grade ex02:\n{out}"
    # The integration test waits for the unit tests of its exercise: it is not run, not failed.
    assert "t2   parse and count" in out and "Next: ex01.t1.adds: add() adds two numbers" in out, out
    assert "why:  NotImplementedError: Exercise 1 · Task 1: implement add (exercises/ex01_mini.md#task-1)" \
        in out, out
    assert "hint: add(2, 3) is 5." in out and "more: make hint EXERCISE=ex01 TASK=t1" in out, out


def test_check_gate_skips_slow_tests_of_an_exercise_whose_unit_tests_fail(workbook, tmp_path):
    from grading.suite.options import RunOptions
    from grading.suite.runner import run_suite

    run = run_suite(RunOptions(root=workbook, target="starter", paths=["tests/ex01_mini"], gate="exercise",
                               per_test_timeout=20))
    outcome = run.tests["tests/ex01_mini/test_mini.py::test_countdown"]
    assert outcome.outcome == "not_run", f"integration test with failing unit tests: {outcome}"
    assert "unit tests fail first" in outcome.message, outcome.message


def test_check_with_an_unknown_exercise_says_which_exist(workbook, capsys):
    code = main(["--root", str(workbook), "check", "ex99"])
    assert code == 2
    assert "no exercise 'ex99' in the rubric (known: ex01, ex02)" in capsys.readouterr().err


def test_hint_gives_one_level_at_a_time(workbook, capsys):
    main(["--root", str(workbook), "hint", "ex01", "t1", "--reset"])
    first = capsys.readouterr().out
    main(["--root", str(workbook), "hint", "ex01", "1"])
    second = capsys.readouterr().out
    assert "hint 1/2: Read the chapter." in first and "hint 2/2" not in first, first
    assert "hint 2/2: Use the + operator." in second and "last hint" in second, second


def test_exercise_names_a_learner_may_use(workbook):
    rubric = load(workbook)
    for name in ("ex01", "1", "01", "ex01_mini", "mini", "tests/ex01_mini/"):
        assert rubric.exercise(name).id == "ex01", name


def test_rubric_problems_are_found(tmp_path):
    (tmp_path / "exercises").mkdir()
    (tmp_path / "exercises" / "rubric.toml").write_text(
        'schema = 1\n[[exercise]]\nid = "ex09"\ntitle = "x"\nmodule = "x"\n'
        'points = 5\n[[task]]\nid = "ex09.t1"\ntitle = "t"\nhints = []\n'
        '[[criterion]]\nid = "ex09.t1.a"\ntitle = "a"\npoints = 2\nhint = "h"\nvisibility = "secret"\n'
        '[[criterion]]\nid = "ex09.t2.b"\ntitle = "b"\npoints = 1\nhint = "h"\nvisibility = "public"\n',
        encoding="utf-8")
    problems = load(tmp_path).problems_found
    assert "ex09: declares 5 points, its criteria add up to 2" in problems, problems
    assert "ex09.t1.a: visibility 'secret', expected one of public, hidden" in problems, problems
    assert "criteria ex09.t2.b name task 'ex09.t2', which is not declared" in problems, problems


def test_console_script_and_module_agree():
    done = subprocess.run([sys.executable, "-m", "grading", "--help"], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and "grade-submission" in done.stdout, done.stdout + done.stderr
    script = Path(sys.executable).with_name("workbook")
    assert script.exists(), f"{script}: the `workbook` console script is not installed (pip install -e .)"


def test_the_installed_grading_package_needs_nothing_else_from_the_repo(workbook, tmp_path):
    """`workbook` is installed as `grading` alone and runs from any folder (an instructor's CI job): a copy of
    the package with every subpackage, and nothing else of the repo, imports each of its modules, lists its
    commands and builds a learner release."""
    import shutil
    import sysconfig

    lone = tmp_path / "lone"
    shutil.copytree(Path(__file__).parents[2] / "grading", lone / "grading",
                    ignore=shutil.ignore_patterns("__pycache__"))
    # -S keeps this repo's editable install out (its finder would lend the copy any module it lacks);
    # site-packages comes back as a plain folder for the third-party packages.
    bootstrap = (f"import sys\nsys.path[:0] = [{str(lone)!r}]\n"
                 f"sys.path.append({sysconfig.get_paths()['purelib']!r})\n")

    def lone_python(code: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-S", "-c", bootstrap + code, *args], cwd=lone,
                              capture_output=True, text=True, check=False, timeout=300)

    modules = sorted(".".join(p.relative_to(lone).with_suffix("").parts) for p in (lone / "grading").rglob("*.py")
                     if p.name not in ("__init__.py", "__main__.py"))
    assert "grading.judge.plugin" in modules and "grading.release.build" in modules, modules
    imported = lone_python("import importlib, sys\nfor name in sys.argv[1:]:\n"
                           f"    assert importlib.import_module(name).__file__.startswith({str(lone)!r}), name\n",
                           *modules)
    assert imported.returncode == 0, f"importing grading.* from the copy alone:\n{imported.stderr[-2000:]}"
    command = "import runpy\nsys.argv = ['workbook', *sys.argv[1:]]\nrunpy.run_module('grading', run_name='__main__')\n"
    listed = lone_python(command, "--help")
    assert listed.returncode == 0 and "grade-submission" in listed.stdout, listed.stdout + listed.stderr
    release = tmp_path / "release"
    built = lone_python(command, "--root", str(workbook), "release", str(release), "--allow-dirty")
    assert built.returncode == 0 and (release / "starters").is_dir(), built.stdout + built.stderr


def test_a_hidden_criterion_keeps_its_hint_for_the_instructor(workbook, tmp_path):
    """A hidden criterion's hint says what its hidden test checks: learners see a generic line instead."""
    hidden_hint = load(workbook).criteria["ex01.t1.negative"].hint
    _, results = grade(workbook, tmp_path / "learner")
    negative = next(c for e in results["exercises"] for t in e["tasks"] for c in t["criteria"]
                    if c["id"] == "ex01.t1.negative")
    assert negative["status"] == "failed" and negative["hint"] != hidden_hint, negative
    for name in REPORT_FILES:
        assert hidden_hint not in (tmp_path / "learner" / name).read_text(encoding="utf-8"), name
    _, revealed = grade(workbook, tmp_path / "instructor", "--reveal-hidden")
    assert hidden_hint in json.dumps(revealed), "--reveal-hidden shows the instructor the hint"
