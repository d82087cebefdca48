"""`workbook dev new` and `dev check`: an exercise declared once, in the rubric, and everything else named
after it, scaffolded honest (every test fails until written) and checked for what is missing or stale."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from grading.cli import main
from grading.core.rubric import RUBRIC_PATH, RubricError, load
from tests.harness.target import REPO_ROOT
from tests.workbook.grading_fixtures.builder import make_workbook

NEW_EXERCISE = '''
[[exercise]]
id = "ex03"
title = "Clock"
module = "clock"
points = 4

[[task]]
id = "ex03.t1"
title = "Tick"
symbols = ["Ticker", "tick_rate"]
hints = ["Count first.", "See https://docs.python.org/3/library/time.html.", "Sketch: keep the count on self."]

[[task]]
id = "ex03.t2"
title = "format time"
hints = ["Pad with zeros."]

[[criterion]]
id = "ex03.t1.counts"
title = "Ticker counts ticks"
points = 1
hint = "Start at zero."
visibility = "public"

[[criterion]]
id = "ex03.t1.resets"
title = "Ticker resets"
points = 1
hint = "Back to zero."
visibility = "hidden"

[[criterion]]
id = "ex03.t2.pads"
title = "format_time pads minutes"
points = 2
hint = "f'{m:02d}'"
visibility = "public"
'''


def dev(root: Path, *args: str, capsys) -> tuple[int, list[str]]:
    code = main(["--root", str(root), "dev", *args])
    captured = capsys.readouterr()
    return code, [line for line in (captured.out + captured.err).splitlines() if line.strip()]


@pytest.fixture
def workbook(tmp_path: Path, capsys) -> Path:
    """The fixture workbook with ex03 declared in its rubric and scaffolded by `dev new`."""
    root = make_workbook(tmp_path / "workbook")
    with (root / RUBRIC_PATH).open("a", encoding="utf-8") as rubric:
        rubric.write(NEW_EXERCISE)
    code, out = dev(root, "new", "ex03_clock", capsys=capsys)
    assert code == 0, out
    return root


def test_dev_check_passes_on_this_workbook():
    done = subprocess.run([sys.executable, "-m", "grading", "dev", "check"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, f"workbook dev check on the repo:\n{done.stdout}{done.stderr}"


def test_a_scaffolded_exercise_is_complete_and_its_tests_fail_on_the_starter(workbook, capsys):
    for name in ("exercises/ex03_clock.md", "starters/clock.py", "solutions/clock.py", "notebooks/ex03_clock.ipynb",
                 "tests/ex03_clock/__init__.py", "tests/ex03_clock/conftest.py", "tests/ex03_clock/test_t1_tick.py",
                 "tests/ex03_clock/test_t2_format_time.py", "tests/ex03_clock/test_hidden.py"):
        assert (workbook / name).is_file(), f"dev new did not write {name}"
    assert dev(workbook, "check", "ex03", capsys=capsys) == (0, ["every exercise has its files, hint blocks and tests"])
    done = subprocess.run([sys.executable, "-m", "pytest", "--target=starter", "-q", "-p", "no:randomly",
                           "-p", "no:cacheprovider", "tests/ex03_clock"],
                          cwd=workbook, capture_output=True, text=True, timeout=300, check=False)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr
    assert done.returncode == 1 and "3 failed" in summary and "passed" not in summary, done.stdout[-3000:]
    lint = subprocess.run([str(Path(sys.executable).with_name("ruff")), "check", "--config", str(REPO_ROOT / "pyproject.toml"),
                           "starters/clock.py", "solutions/clock.py", "tests/ex03_clock"],
                          cwd=workbook, capture_output=True, text=True, timeout=120, check=False)
    assert lint.returncode == 0, f"the scaffold is not ruff clean:\n{lint.stdout}{lint.stderr}"
    starter = subprocess.run([sys.executable, "-c", "from starters.clock import Ticker, format_time\nTicker()"],
                             cwd=workbook, capture_output=True, text=True, timeout=60, check=False)
    assert "Exercise 3 · Task 1: implement Ticker (exercises/ex03_clock.md#task-1)" in starter.stderr, starter.stderr


def test_dev_new_never_overwrites(workbook, capsys):
    chapter = (workbook / "exercises/ex03_clock.md").read_text(encoding="utf-8")
    code, out = dev(workbook, "new", "ex03_clock", capsys=capsys)
    assert code == 2 and "not overwriting" in out[-1] and "exercises/ex03_clock.md" in out[-1], out
    assert (workbook / "exercises/ex03_clock.md").read_text(encoding="utf-8") == chapter


def test_dev_new_of_an_undeclared_exercise_says_to_declare_it(workbook, capsys):
    code, out = dev(workbook, "new", "ex09_nothing", capsys=capsys)
    assert code == 2 and "no [[exercise]] with the slug 'ex09_nothing'" in out[-1], out


@pytest.mark.parametrize(("remove", "expected"), [
    ("notebooks/ex03_clock.ipynb", "notebooks/ex03_clock.ipynb: missing (the walkthrough of ex03)"),
    ("solutions/clock.py", "solutions/clock.py: missing (the module of ex03)"),
    ("tests/ex03_clock/test_t2_format_time.py", "tests/ex03_clock/: no test_t2_<what>.py for ex03.t2"),
])
def test_a_missing_piece_is_named(workbook, capsys, remove, expected):
    (workbook / remove).unlink()
    code, out = dev(workbook, "check", "ex03", capsys=capsys)
    assert code == 1 and out[0] == expected, out
    if remove.startswith("tests/"):
        assert out[1:-1] == ['tests/ex03_clock/: no test marked @pytest.mark.criterion("ex03.t2.pads")'], out


def test_a_criterion_without_a_test_is_named(workbook, capsys):
    hidden = workbook / "tests/ex03_clock/test_hidden.py"
    hidden.write_text('"""No hidden tests yet."""\n', encoding="utf-8")
    code, out = dev(workbook, "check", "ex03", capsys=capsys)
    assert (code, out[:-1]) == (1, ['tests/ex03_clock/: no test marked @pytest.mark.criterion("ex03.t1.resets")']), out


def test_a_fixture_not_named_after_the_module_is_named(workbook, capsys):
    conftest = workbook / "tests/ex03_clock/conftest.py"
    conftest.write_text(conftest.read_text(encoding="utf-8").replace("def clock(", "def the_clock("), encoding="utf-8")
    code, out = dev(workbook, "check", "ex03", capsys=capsys)
    assert code == 1 and out[0].startswith("tests/ex03_clock/conftest.py: no fixture named clock"), out


def test_a_stale_hint_block_is_named_and_dev_hints_rewrites_it(workbook, capsys):
    rubric = workbook / RUBRIC_PATH
    rubric.write_text(rubric.read_text(encoding="utf-8").replace("Pad with zeros.", "Pad the minutes with zeros."),
                      encoding="utf-8")
    code, out = dev(workbook, "check", "ex03", capsys=capsys)
    assert (code, out[:-1]) == (1, ["exercises/ex03_clock.md: the hint block of ex03.t2 is stale "
                                    "(run `workbook dev hints`)"]), out
    assert dev(workbook, "hints", "ex03", capsys=capsys) == (0, ["rewrote the hint blocks of exercises/ex03_clock.md"])
    assert "1. Pad the minutes with zeros." in (workbook / "exercises/ex03_clock.md").read_text(encoding="utf-8")
    assert dev(workbook, "check", "ex03", capsys=capsys)[0] == 0


def test_a_missing_hint_block_is_named(workbook, capsys):
    chapter = workbook / "exercises/ex03_clock.md"
    text = chapter.read_text(encoding="utf-8")
    start, end = text.index("<!-- hints: ex03.t1 -->"), text.index("<!-- /hints -->") + len("<!-- /hints -->")
    chapter.write_text(text[:start] + text[end:], encoding="utf-8")
    code, out = dev(workbook, "check", "ex03", capsys=capsys)
    assert code == 1 and out[:-1] == [
        "exercises/ex03_clock.md: no hint block for ex03.t1 (add '<!-- hints: ex03.t1 -->' and '<!-- /hints -->' "
        "where its hints go, then run `workbook dev hints`)"], out


def test_the_chapter_shows_the_rubrics_hints_for_every_task():
    rubric = load(REPO_ROOT)
    for exercise in rubric.exercises:
        chapter = (REPO_ROOT / exercise.chapter).read_text(encoding="utf-8")
        for task in exercise.tasks:
            assert f"<!-- hints: {task.id} -->" in chapter, f"{exercise.chapter}: no hint block for {task.id}"


@pytest.mark.parametrize(("key", "value", "accepted"), [
    ("text", "exercises/ex02_greeting.md", True), ("text", "ex02_greeting.md", True),
    ("tests", "tests/ex02_greeting", True), ("notebook", "notebooks/ex02_greeting.ipynb", True),
    ("text", "exercises/ex02_hello.md", False), ("notebook", "", False), ("tests", "tests/greetings", False),
])
def test_a_declared_path_must_be_the_derived_one(tmp_path, key, value, accepted):
    root = make_workbook(tmp_path / "workbook")
    rubric = root / RUBRIC_PATH
    text = rubric.read_text(encoding="utf-8")
    rubric.write_text(text.replace('module = "greeting"\n', f'module = "greeting"\n{key} = "{value}"\n'),
                      encoding="utf-8")
    if accepted:
        assert load(root).exercise("ex02").chapter == "exercises/ex02_greeting.md"
    else:
        with pytest.raises(RubricError, match=rf"declares {key} = .*drop the '{key}' key"):
            load(root)


def test_an_exercise_with_dags_the_playground_does_not_know_is_named(monkeypatch):
    from grading.dev import registries
    from grading.learner import playground

    monkeypatch.setattr(playground, "EXERCISE_SIMULATORS", {k: v for k, v in playground.EXERCISE_SIMULATORS.items()
                                                            if k != "ex11_4"} | {"ex99": ()})
    rubric = load(REPO_ROOT)
    assert registries.playground_problems(rubric, list(rubric.exercises)) == [
        "grading/learner/playground.py: EXERCISE_SIMULATORS has no entry for ex11_4 (its DAGs run in `workbook airflow`)",
        "grading/learner/playground.py: EXERCISE_SIMULATORS names ex99, which the rubric does not declare"]
