"""`grade-submission --judge-and-subject`: the tests and their verdicts run in a judge process that never
imports the learner's code; that code runs in a subject process of its own sandbox. Attacks on the test
process (a plugin found through the garbage collector, a patched report or recorder, a forged or spliced
record, an exit that launders the rest of the run) have nothing to reach there: each earns exactly what the
submission honestly solves, with verdict `graded`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.workbook.grading_fixtures.builder import SUBMISSIONS, make_workbook
from tests.workbook.test_grading_submissions import (
    LEARNER_FILES,
    SECRET,
    SLOW_MACHINE,
    grade,
    private_tmp,  # noqa: F401 - a fixture
    processes_mentioning,
    secret_lines,
)

ATTACKS = Path(__file__).parent / "grading_fixtures" / "judge_attacks"

# What each submission honestly solves, criterion by criterion (the rest earns nothing).
HONEST = {
    "registers_plugin": {"ex02.t1.greets"},
    "splices_channel": {"ex02.t1.greets"},
    "exits_after_half": {"ex01.t1.adds", "ex01.t1.negative", "ex02.t1.greets"},
    "patches_report": set(),
    "patches_recorder": set(),
    "forges_record": set(),
    "reads_hidden_tests": {"ex01.t2.parses", "ex01.t2.counts_down"},
    "reads_environment": {"ex01.t2.parses", "ex01.t2.counts_down"},
    "half_done": {"ex01.t1.adds", "ex02.t1.greets"},
}
POINTS = {"ex01.t1.adds": 2, "ex01.t1.negative": 1, "ex01.t2.parses": 2, "ex01.t2.counts_down": 1, "ex02.t1.greets": 1}


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("instructor") / "workbook")


def learner_copy(name: str, workbook: Path, into: Path) -> Path:
    from grading.release.build import build

    build(workbook, into)
    source = ATTACKS / name if (ATTACKS / name).is_dir() else SUBMISSIONS / name
    shutil.copytree(source, into, dirs_exist_ok=True)
    return into


@SLOW_MACHINE
@pytest.mark.parametrize("name", sorted(HONEST))
def test_an_attack_on_the_test_process_earns_what_it_honestly_solves(name, workbook, tmp_path, private_tmp, capsys):  # noqa: F811
    learner = learner_copy(name, workbook, tmp_path / "learner")
    out = tmp_path / "report"
    code = grade(workbook, learner, out, "--judge-and-subject")
    printed = capsys.readouterr()
    assert code == 0, f"grade-submission --judge-and-subject {name}: exit {code}\n{printed.out}\n{printed.err}"
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    met = {c["id"] for e in results["exercises"] for t in e["tasks"] for c in t["criteria"] if c["status"] == "passed"}
    assert results["verdict"] == "graded" and met == HONEST[name], (
        f"{name}: verdict {results['verdict']!r}, criteria met {sorted(met)}; expected 'graded' and "
        f"{sorted(HONEST[name])} (what it honestly solves); flags {results['flags']}, notes {results['notes']}")
    assert results["total"]["points"] == sum(POINTS[c] for c in HONEST[name]), results["total"]

    visible = printed.out + printed.err + "".join((out / f).read_text(encoding="utf-8") for f in LEARNER_FILES)
    for leak in ["test_hidden", "test_add_negative", SECRET, *secret_lines(workbook)]:
        assert leak not in visible, f"{name}: learner-visible output contains {leak!r}"
    assert not processes_mentioning(str(private_tmp)), f"{name}: processes outlived the grade"
    assert not list(private_tmp.iterdir()), f"{name}: left behind {sorted(private_tmp.iterdir())}"


def test_the_criteria_measured_inside_the_learners_process_are_listed_for_the_instructor():
    from grading.scoring.run import Run, TestOutcome
    from grading.submission.instructor_report import measured_in_subject

    run = Run(tests={
        "t::a": TestOutcome("t::a", "t", ["ex01.t1.adds"], 0, "passed", measured=["log records"]),
        "t::b": TestOutcome("t::b", "t", ["ex01.t1.adds", "ex02.t1.greets"], 0, "failed", measured=["a dag.test() run"]),
        "t::c": TestOutcome("t::c", "t", ["ex01.t2.parses"], 0, "passed"),
    })
    assert measured_in_subject(run) == {"ex01.t1.adds": {"log records", "a dag.test() run"},
                                        "ex02.t1.greets": {"a dag.test() run"}}
