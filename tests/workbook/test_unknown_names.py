"""An exercise or task named on the command line that the rubric does not have: one line naming what exists,
exit 2, no traceback and nothing run or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from grading.cli import main
from grading.core.errors import GradingError, UnknownExercise
from grading.core.rubric import load
from tests.workbook.grading_fixtures.builder import make_workbook

EXERCISES = "(known: ex01, ex02)"
TASKS_OF_EX01 = "ex01 has no task 't9' (tasks: t1, t2)"


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("unknown") / "workbook")


CASES = {
    "check ex99": f"workbook check: no exercise 'ex99' in the rubric {EXERCISES}",
    "check ex01 t9": f"workbook check: {TASKS_OF_EX01}",
    "hint ex99 t1": f"workbook hint: no exercise 'ex99' in the rubric {EXERCISES}",
    "hint ex01 t9": f"workbook hint: {TASKS_OF_EX01}",
    "grade ex01 ex99": f"workbook grade: no exercise 'ex99' in the rubric {EXERCISES}",
    "watch ex99 --once": f"workbook watch: no exercise 'ex99' in the rubric {EXERCISES}",
}


@pytest.mark.parametrize(("command", "expected"), [(c.split(), e) for c, e in CASES.items()], ids=list(CASES))
def test_an_unknown_name_is_one_line_and_exit_2(workbook, tmp_path, capsys, command, expected):
    out = tmp_path / "out"
    extra = ["--out", str(out)] if command[0] == "grade" else []
    code = main(["--root", str(workbook), command[0], *extra, *command[1:]])
    captured = capsys.readouterr()
    assert code == 2, f"{command}: expected exit 2, got {code}"
    assert captured.err.splitlines() == [expected], captured.err
    assert captured.out == "", f"{command}: nothing but the error line, got {captured.out!r}"
    assert not out.exists(), f"{command}: wrote reports for a name that is not in the rubric"


def test_the_rubric_names_what_it_has(workbook):
    rubric = load(workbook)
    with pytest.raises(UnknownExercise) as unknown:
        rubric.exercise("ex99")
    assert isinstance(unknown.value, GradingError), "the CLI reports GradingError as a user error"
    assert (unknown.value.name, unknown.value.known) == ("ex99", ("ex01", "ex02"))
    with pytest.raises(UnknownExercise) as unknown:
        rubric.task(rubric.exercise("ex01"), "9")
    assert (unknown.value.name, unknown.value.known, unknown.value.exercise) == ("9", ("t1", "t2"), "ex01")
    assert rubric.task(rubric.exercise("1"), "ex01.t2").id == "ex01.t2"
