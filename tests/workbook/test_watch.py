"""`workbook watch` on the fixture workbook: the real warm worker forks a pytest run per save; the saves are
written by the test between runs (the file watcher itself is watchfiles' business)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from grading.core.rubric import load
from grading.learner.watch import watch_loop
from grading.learner.watch_worker import Worker
from tests.workbook.grading_fixtures.builder import REPO_ROOT, make_workbook

# The worker imports Airflow once; on a loaded machine that alone can take a minute.
pytestmark = pytest.mark.timeout(900)

ADD_DONE = '''from starters._todo import todo


def add(a, b):
    return a + b


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
    return make_workbook(tmp_path_factory.mktemp("watch") / "workbook")


def test_watch_reruns_the_current_task_on_each_save_and_moves_on(workbook, tmp_path):
    starter = workbook / "starters" / "mini.py"
    screens: list[str] = []
    out = io.StringIO()

    def saves():
        screens.append(out.getvalue())
        starter.write_text(ADD_DONE, encoding="utf-8")
        yield {starter}
        screens.append(out.getvalue())
        starter.write_text((REPO_ROOT / "tests/workbook/grading_fixtures/workbook/solutions/mini.py")
                           .read_text(encoding="utf-8"), encoding="utf-8")
        yield {starter}
        screens.append(out.getvalue())

    rubric = load(workbook)
    stats = tmp_path / "stats.jsonl"
    worker = Worker(workbook, "starter")
    try:
        watch_loop(workbook, rubric, [rubric.exercise("ex01")], target="starter", run_tests=worker.run,
                   changes=saves(), out=out, clear=False, stats=stats)
    finally:
        worker.close()
    first, after_add, after_all = (screens[0], screens[1][len(screens[0]):], screens[2][len(screens[1]):])
    assert "<- you are here" in first.split("t1   add", 1)[1].splitlines()[0], first
    assert "Next: ex01.t1.adds" in first and "NotImplementedError: Exercise 1 · Task 1" in first, first
    assert "ex01.t1 fast tests pass" in after_add and "on to ex01.t2" in after_add, after_add
    assert "Next: ex01.t2.parses" in after_add and "implement parse_status" in after_add, after_add
    assert "Every fast test passes" in after_all, after_all
    assert "[#.] 1/2  fast tests pass, 1 with DAG runs" in after_all, "counts_down is a DAG-run (integration) test"
    runs = [json.loads(line) for line in stats.read_text(encoding="utf-8").splitlines()]
    # the last save re-runs ex01.t1 too: a task done before the current one is watched for breaking
    assert [r["tasks"] for r in runs] == [["ex01.t1", "ex01.t2"], ["ex01.t1"], ["ex01.t2"], ["ex01.t1", "ex01.t2"]], runs
    assert all(r["cpu_s"] > 0 for r in runs), runs


def test_a_broken_starter_is_one_line_in_the_watch(workbook):
    starter = workbook / "starters" / "mini.py"
    shipped = starter.read_text(encoding="utf-8")
    out = io.StringIO()
    rubric = load(workbook)
    starter.write_text("def add(a, b:\n    return a + b\n", encoding="utf-8")
    worker = Worker(workbook, "starter")
    try:
        watch_loop(workbook, rubric, [rubric.exercise("ex01")], target="starter", run_tests=worker.run,
                   changes=(), out=out, clear=False)
    finally:
        worker.close()
        starter.write_text(shipped, encoding="utf-8")
    why = [line for line in out.getvalue().splitlines() if line.startswith("  why:")]
    assert len(why) == 1 and "SyntaxError" in why[0], out.getvalue()
