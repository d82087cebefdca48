"""The mistake catalogue (`workbook mistakes`): plausible wrong solutions, each caught by the criterion it
breaks, and correct alternatives, each earning its whole task.

Here: the runner's verdicts on the tiny fixture workbook (a caught mistake, a missed one, a broken one, an
alternative), and the committed catalogue held to account without running it (every criterion has two
mistakes, every task an alternative, the committed results say each is as expected and are those of the
files as they are now, and the report is what those results make). `make mistakes` runs the real thing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from grading.core.rubric import load
from grading.instrument import catalogue, mistakes, mistakes_report
from tests.harness.target import REPO_ROOT
from tests.workbook.grading_fixtures.builder import make_workbook

HAS_SOLUTIONS = (REPO_ROOT / "solutions").is_dir()
RUBRIC = load(REPO_ROOT)


# ---- the runner, on the fixture workbook -------------------------------------------------------------------
@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_workbook(tmp_path_factory.mktemp("mistakes") / "workbook")
    folder = root / catalogue.CATALOGUE / "ex01"
    folder.mkdir(parents=True)
    (folder / "t2.parses__accepts_anything.mistake").write_text(
        '# criterion: ex01.t2.parses\n# violates: "raise ValueError for unknown ones"\n'
        "def parse_status(payload):\n    return str(payload.get('status', '')).lower()\n")
    (folder / "t1.adds__named_for_the_wrong_criterion.mistake").write_text(
        '# criterion: ex01.t1.adds\n# violates: "rejects others"\n'
        "def parse_status(payload):\n    return str(payload.get('status', '')).lower()\n")
    (folder / "t1.adds__declared_gap.mistake").write_text(
        '# criterion: ex01.t1.adds\n# violates: "rejects others"\n# gap: no test of add() sees parse_status\n'
        "def parse_status(payload):\n    return str(payload.get('status', '')).lower()\n")
    (folder / "t1.adds__forgets_an_import.mistake").write_text(
        '# criterion: ex01.t1.adds\n# violates: "add() adds two numbers"\n'
        "def add(a, b):\n    return operator.add(a, b)\n")
    alternatives = root / catalogue.ALTERNATIVES
    alternatives.mkdir(parents=True, exist_ok=True)
    (alternatives / "ex01.t1.alternative").write_text(
        "# task: ex01.t1\n# how it differs: sum() of a tuple\ndef add(a, b):\n    return sum((a, b))\n")
    (alternatives / "ex01.t1.reading_in_place.alternative").write_text(
        "# task: ex01.t1\n# how it differs: the reference changed in place\n# replace: return a + b => return b + a\n")
    (alternatives / "ex01.t1.reading_of_nothing.alternative").write_text(
        "# task: ex01.t1\n# how it differs: replaces what is not there\n# replace: return a - b => return b - a\n")
    return root


@pytest.fixture(scope="module")
def verdicts(workbook: Path) -> dict[str, mistakes.Verdict]:
    done = subprocess.run([sys.executable, "-m", "grading", "--root", str(workbook), "mistakes", "--jobs", "2"],
                          cwd=workbook, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 1, f"workbook mistakes with one missed and one broken mistake: expected exit 1, got " \
                                 f"{done.returncode}:\n{done.stdout}{done.stderr}"
    saved = mistakes_report.load_results(workbook / mistakes_report.RESULTS / "ex01.json")
    return {Path(v["mistake"]).name: mistakes.Verdict(**v) for v in saved}


def test_a_mistake_its_criterion_fails_on_is_caught(verdicts):
    verdict = verdicts["t2.parses__accepts_anything.mistake"]
    assert verdict.status == "caught" and verdict.caught, f"expected caught, got {verdict}"
    assert any("test_parse_rejects_unknown_status" in n for n in verdict.failing_tests), verdict.failing_tests


def test_a_catch_by_another_criterions_tests_does_not_count(verdicts):
    verdict = verdicts["t1.adds__named_for_the_wrong_criterion.mistake"]
    assert verdict.status == "missed" and not verdict.caught and verdict.tests_run >= 1, (
        f"a parse_status mistake named for ex01.t1.adds (whose tests pass): expected missed, got {verdict}")


def test_a_declared_gap_that_is_missed_is_reported_as_a_gap(workbook, verdicts):
    verdict = verdicts["t1.adds__declared_gap.mistake"]
    assert verdict.status == "gap" and not verdict.caught, f"expected gap, got {verdict}"
    report = (workbook / mistakes_report.REPORT).read_text(encoding="utf-8")
    assert "known gap**: no test of add() sees parse_status" in report, report


def test_a_mistake_that_only_fails_with_a_name_error_is_broken_not_caught(verdicts):
    verdict = verdicts["t1.adds__forgets_an_import.mistake"]
    assert verdict.status == "broken" and not verdict.caught, f"expected broken, got {verdict}"


def test_an_alternative_earning_its_whole_task_passes(verdicts):
    for name in ("ex01.t1.alternative", "ex01.t1.reading_in_place.alternative"):
        assert verdicts[name].status == "passes", f"{name}: expected passes, got {verdicts[name]}"


def test_a_reading_that_replaces_nothing_is_broken(verdicts):
    verdict = verdicts["ex01.t1.reading_of_nothing.alternative"]
    assert verdict.status == "broken" and "return a - b" in json.dumps(verdict.failing_tests), verdict


def test_the_report_lists_every_entry_with_its_verdict(workbook, verdicts):
    report = (workbook / mistakes_report.REPORT).read_text(encoding="utf-8")
    for name, verdict in verdicts.items():
        stem = name.rsplit(".", 1)[0]
        assert f"`{stem}`" in report and verdict.status in report, f"{stem} ({verdict.status}) not in:\n{report}"


@pytest.mark.parametrize(("header", "why"), [
    ('# violates: "x"\ndef f():\n    pass\n', "no criterion"),
    ("# criterion: ex01.t1.adds\ndef f():\n    pass\n", "no violates"),
    ('# criterion: ex01.t1.adds\n# violates: "x"\n# target: ../../etc/passwd\n', "target must be"),
])
def test_a_malformed_entry_is_refused_naming_what_is_missing(tmp_path, header, why):
    path = tmp_path / "t1.adds__x.mistake"
    path.write_text(header)
    with pytest.raises(catalogue.MistakeError, match=why):
        catalogue.parse(path, tmp_path)


# ---- the committed catalogue -------------------------------------------------------------------------------
CATALOGUE = catalogue.catalogue(REPO_ROOT) if HAS_SOLUTIONS else []
CRITERIA = [c for e in RUBRIC.exercises for t in e.tasks for c in t.criteria]
TASKS = [t for e in RUBRIC.exercises for t in e.tasks]
needs_solutions = pytest.mark.skipif(not HAS_SOLUTIONS, reason="needs solutions/ (the instructor repo)")


@needs_solutions
@pytest.mark.parametrize("criterion", [c.id for c in CRITERIA])
def test_every_criterion_has_two_mistakes(criterion):
    found = [m.path for m in CATALOGUE if m.kind == "mistake" and m.criterion == criterion]
    assert len(found) >= 2, f"{criterion}: expected at least two mistakes in {catalogue.CATALOGUE}/, got {found}"


@needs_solutions
@pytest.mark.parametrize("task", [t.id for t in TASKS])
def test_every_task_has_a_correct_alternative(task):
    found = [m.path for m in CATALOGUE if m.kind == "alternative" and m.criterion == task]
    assert found, f"{task}: expected an alternative {catalogue.ALTERNATIVES}/{task}.alternative"


@needs_solutions
def test_every_mistake_names_a_criterion_of_the_rubric_and_quotes_the_chapter():
    known = {c.id for c in CRITERIA} | {t.id for t in TASKS}
    texts = {e.id: (REPO_ROOT / e.chapter).read_text(encoding="utf-8") + (REPO_ROOT / "exercises/rubric.toml").read_text(
        encoding="utf-8") for e in RUBRIC.exercises}
    problems = [f"{m.path}: {m.criterion} is not in the rubric" for m in CATALOGUE if m.criterion not in known]
    for mistake in (m for m in CATALOGUE if m.kind == "mistake" and m.exercise in texts):
        quote = mistake.violates.strip().strip('"').strip("“”")
        if " ".join(quote.split()) not in " ".join(texts[mistake.exercise].split()):
            problems.append(f"{mistake.path}: its quote {quote[:80]!r} is not in the chapter or the rubric")
    assert not problems, "\n".join(problems)


@needs_solutions
def test_the_committed_results_are_of_the_catalogue_as_it_is():
    """Each entry was run as it is now (its text and the reference module's), and came out as expected."""
    problems = []
    for entry in CATALOGUE:
        results = {v["mistake"]: v for v in mistakes_report.load_results(REPO_ROOT / mistakes_report.RESULTS / f"{entry.exercise}.json")}
        result = results.get(entry.path)
        if result is None:
            problems.append(f"{entry.path}: never run (make mistakes)")
        elif result.get("digest") != mistakes.digest(REPO_ROOT, entry):
            problems.append(f"{entry.path}: changed, or its reference module did, since it was run (make mistakes)")
        elif result["status"] not in ({"passes"} if entry.kind == "alternative" else
                                      {"caught", "gap"} if entry.gap else {"caught"}):
            problems.append(f"{entry.path}: {result['status']}: {json.dumps(result['failing_tests'])[:300]}")
    assert not problems, f"{len(problems)} of {len(CATALOGUE)}:\n" + "\n".join(problems)


@needs_solutions
def test_the_committed_report_is_what_the_results_make():
    committed = (REPO_ROOT / mistakes_report.REPORT).read_text(encoding="utf-8")
    assert committed == mistakes_report.report_text(REPO_ROOT), (
        f"{mistakes_report.REPORT} is stale: run `.venv/bin/python -m grading mistakes --report-only`")


@needs_solutions
def test_every_requirement_the_chapters_list_is_broken_by_a_caught_mistake():
    """The traceability table: each task's listed requirement (a "Build" item) has a mistake that quotes it and
    that its criterion's tests caught, so some test fails when that requirement alone is broken."""
    gaps = []
    for exercise in RUBRIC.exercises:
        results = {v["mistake"]: v for v in mistakes_report.load_results(REPO_ROOT / mistakes_report.RESULTS / f"{exercise.id}.json")}
        mine = [m for m in CATALOGUE if m.kind == "mistake" and m.exercise == exercise.id]
        chapter = (REPO_ROOT / exercise.chapter).read_text(encoding="utf-8")
        for task, number, text in mistakes_report.requirements(chapter):
            words = mistakes_report.words(text)
            if not any(mistakes_report.quote(m) and mistakes_report.quote(m) in words
                       and results.get(m.path, {}).get("status") == "caught" for m in mine):
                gaps.append(f"{exercise.id} task {task} item {number}: {text[:100]}")
    assert not gaps, f"{len(gaps)} requirement(s) no caught mistake breaks:\n" + "\n".join(gaps)
