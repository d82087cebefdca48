"""The learner's loop on the fixture workbook: one task's check, the progress table under -k, report.md in a
minute, the commit in results.json, and a one-line answer when the wrong Python runs the suite."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grading.cli import main
from tests.workbook.grading_fixtures.builder import make_workbook

# Each test starts pytest or grading runs in subprocesses: on a loaded machine that takes minutes, not seconds.
pytestmark = pytest.mark.timeout(900)

ADD_ONLY = '''"""Exercise 1 (fixture): add done, the rest not started."""
from starters._todo import todo


def add(a, b):
    return {body}


def parse_status(payload):
    raise todo("1", 2, "implement parse_status", "ex01_mini.md#task-2")


class Countdown:
    def __init__(self, start):
        self.start = start

    def ticks(self):
        raise todo("1", 2, "implement Countdown.ticks", "ex01_mini.md#task-2")
'''


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("loop") / "workbook")


def progress_table(workbook: Path, *args: str) -> dict[str, tuple[str, ...]]:
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd=workbook,
                          capture_output=True, text=True, timeout=600, check=False)
    section = done.stdout.split(" progress (", 1)
    assert len(section) == 2, f"no progress table in:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}"
    rows = {}
    for line in section[1].splitlines()[2:]:
        cells = line.split()
        if len(cells) == 5 and re.fullmatch(r"t\d+", cells[1]):
            rows[f"{cells[0]}.{cells[1]}"] = tuple(cells[2:])
    return rows


def test_progress_counts_a_partly_run_criterion_as_not_run(workbook):
    # ex01.t2.parses has two tests; -k runs one of them. ex01.t1 is deselected entirely: shown, not dropped.
    rows = progress_table(workbook, "--target=solution", "-k", "test_parse_known_status", "tests/ex01_mini")
    assert rows == {"ex01.t1": ("0/2", "0", "2"), "ex01.t2": ("0/2", "0", "2")}, rows
    rows = progress_table(workbook, "--target=solution", "tests/ex01_mini")
    assert rows == {"ex01.t1": ("2/2", "0", "0"), "ex01.t2": ("2/2", "0", "0")}, rows


def test_progress_counts_a_failure_even_when_other_tests_did_not_run(workbook):
    rows = progress_table(workbook, "--target=starter", "-m", "not integration", "tests/ex01_mini")
    assert rows["ex01.t2"] == ("0/2", "1", "1"), rows


def test_check_of_one_task_runs_and_shows_only_that_task(workbook, capsys):
    code = main(["--root", str(workbook), "check", "ex01", "t2", "--target", "solution", "--timeout", "60"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "t2   parse and count" in out and "2/2  done" in out, out
    shown, _, following = out.partition("Next task: ")
    assert " t1 " not in shown and "ex02" not in shown, f"check ex01 t2 shows another task:\n{out}"
    assert following.startswith("ex02.t1 greet: make check EXERCISE=ex02 TASK=t1"), f"a done task points on:\n{out}"
    code = main(["--root", str(workbook), "check", "ex01", "t1", "--timeout", "60"])
    out = capsys.readouterr().out
    assert "Next: ex01.t1.adds" in out and "more: make hint EXERCISE=ex01 TASK=t1" in out, out


def test_check_names_an_unknown_task(workbook, capsys):
    assert main(["--root", str(workbook), "check", "ex01", "t9"]) == 2
    assert "ex01 has no task 't9' (tasks: t1, t2)" in capsys.readouterr().err


def _grade(workbook: Path, out: Path) -> tuple[str, dict]:
    assert main(["--root", str(workbook), "grade", "--out", str(out), "--timeout", "60"]) in (0, 1)
    return (out / "report.md").read_text(encoding="utf-8"), json.loads((out / "results.json").read_text("utf-8"))


def test_report_collapses_unstarted_tasks_and_gives_one_line_per_failure(workbook, tmp_path):
    starter = workbook / "starters" / "mini.py"
    shipped = starter.read_text(encoding="utf-8")
    try:
        starter.write_text(ADD_ONLY.format(body="a - b"), encoding="utf-8")
        report, results = _grade(workbook, tmp_path / "wrong")
    finally:
        starter.write_text(shipped, encoding="utf-8")
    lines = report.splitlines()
    assert "| t1 · add | 0/2 | 0/3 |  |" in lines, report
    adds = [line for line in lines if "**ex01.t1.adds**" in line]
    assert len(adds) == 1 and "add(2, 3): expected 5, got -1" in adds[0] and "*Hint:* add(2, 3) is 5." in adds[0], \
        report
    t2 = [line for line in lines if "ex01.t2" in line]
    assert len(t2) == 1 and "**ex01.t2** parse and count: not started (2 criteria): NotImplementedError: " \
        "Exercise 1 · Task 2: implement" in t2[0], f"an unstarted task is one line:\n{report}"
    assert "| t2 · parse and count | 0/2 | 0/3 | not started |" in lines, report
    assert not re.search(r"/tmp/|/var/folders/|pytest-of-", report), f"temp paths in report.md:\n{report}"
    assert results["commit"] is None, "the fixture workbook is not a git repository"


def test_report_of_a_passing_task_lists_nothing_for_it(workbook, tmp_path):
    starter = workbook / "starters" / "mini.py"
    shipped = starter.read_text(encoding="utf-8")
    try:
        starter.write_text(ADD_ONLY.format(body="a + b"), encoding="utf-8")
        report, _ = _grade(workbook, tmp_path / "add")
    finally:
        starter.write_text(shipped, encoding="utf-8")
    assert "| t1 · add | 2/2 | 3/3 | ✅ |" in report.splitlines(), report
    assert "ex01.t1." not in report, f"a met criterion needs no line:\n{report}"


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                           *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_results_json_carries_the_commit_of_a_git_submission(workbook, tmp_path):
    _git(workbook, "init", "-q", "-b", "main")
    try:
        _git(workbook, "add", "-A")
        _git(workbook, "commit", "-q", "-m", "learner")
        _, results = _grade(workbook, tmp_path / "out")
        assert results["commit"] == _git(workbook, "rev-parse", "HEAD"), results["commit"]
        assert f"commit `{results['commit'][:12]}`" in (tmp_path / "out" / "report.md").read_text("utf-8")
    finally:
        import shutil

        shutil.rmtree(workbook / ".git")


WITHOUT_AIOHTTP = ("import sys; sys.modules['aiohttp'] = None; import pytest; "
                   "sys.exit(pytest.main(sys.argv[1:]))")


def test_pytest_outside_the_venv_says_so_in_one_line(workbook):
    done = subprocess.run([sys.executable, "-c", WITHOUT_AIOHTTP, "tests/ex01_mini", "-q"], cwd=workbook,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 4, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "has no aiohttp" in lines[0] and "make install" in lines[0] and \
        "`.venv/bin/pytest tests/ex01_mini -q`" in lines[0], lines[0]


def test_grading_outside_the_venv_says_so_in_one_line(workbook, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    assert main(["--root", str(workbook), "check", "ex01"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "", captured.out
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "has no aiohttp" in lines[0] and ".venv/bin/workbook" in lines[0], lines
