"""The suite checks itself against exercises/rubric.toml: every criterion has a test, every test names a
known criterion, hidden criteria are tested only in test_hidden.py, and the points add up as declared."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from grading.core.rubric import CRITERION_ID, load
from grading.scoring.run import read_events
from tests.harness.target import REPO_ROOT

RUBRIC = load(REPO_ROOT)
EXERCISE_FOLDERS = sorted(p.name for p in (REPO_ROOT / "tests").glob("ex*") if p.is_dir())
FOLDER_OF = {Path(e.test_folder).name: e for e in RUBRIC.exercises}
# One parameter per exercise and per test folder, so a folder still being written fails on its own.
EXERCISES = sorted({e.id for e in RUBRIC.exercises} | {f for f in EXERCISE_FOLDERS if f not in FOLDER_OF})
# The learner release has no solutions/: there the suite is collected against the starters.
COLLECTED_TARGET = "solution" if (REPO_ROOT / "solutions").is_dir() else "starter"


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The whole suite as pytest collects it (in a subprocess: importing every test module is its business)."""
    record = tmp_path_factory.mktemp("rubric") / "collected.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", f"--target={COLLECTED_TARGET}", "-p", "grading.judge.plugin",
         f"--grading-record={record}", "--continue-on-collection-errors", "tests"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    events = read_events(record)
    tests = [e for e in events if e["event"] == "collected"]
    assert tests, f"collecting the suite recorded nothing:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    errors = {e["path"]: e["message"] for e in events if e["event"] == "collection_error"}
    return {"tests": tests, "errors": errors}


def _folder(path: str) -> str:
    parts = Path(path).parts
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else ""


def _exercise_of_folder(folder: str) -> str:
    exercise = FOLDER_OF.get(folder)
    return exercise.id if exercise else folder


def test_rubric_is_consistent():
    assert RUBRIC.problems_found == [], "exercises/rubric.toml:\n" + "\n".join(RUBRIC.problems_found)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_exercise_has_its_files(exercise_id):
    exercise = next((e for e in RUBRIC.exercises if e.id == exercise_id), None)
    assert exercise is not None, f"tests/{exercise_id}/ has no [[exercise]] in exercises/rubric.toml " \
                                 "(its folder must be named after the exercise's slug, <id>_<module>)"
    # The learner release has no solutions/: there every other file must still be there.
    solution = [f"solutions/{exercise.module}.py"] if (REPO_ROOT / "solutions").is_dir() else []
    missing = [path for path in (exercise.chapter, f"starters/{exercise.module}.py", *solution,
                                 exercise.test_folder)
               if not (REPO_ROOT / path).exists()]
    assert missing == [], f"{exercise_id}: missing {missing}"


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_points_add_up(exercise_id):
    exercise = next((e for e in RUBRIC.exercises if e.id == exercise_id), None)
    assert exercise is not None, f"{exercise_id} is not in the rubric"
    assert exercise.points == exercise.criteria_points, \
        f"{exercise_id} declares {exercise.points} points, its criteria add up to {exercise.criteria_points}"
    bad = {c.id: c.points for c in exercise.criteria if not (isinstance(c.points, int) and 1 <= c.points <= 3)}
    assert bad == {}, f"{exercise_id}: criteria points must be integers 1-3: {bad}"


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_tests_import(exercise_id, collected):
    errors = {path: message for path, message in collected["errors"].items()
              if _exercise_of_folder(_folder(path)) == exercise_id}
    assert errors == {}, f"{exercise_id}: test files that cannot be collected: {errors}"


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_every_criterion_has_a_test(exercise_id, collected):
    tested = {c for t in collected["tests"] for c in t["criteria"]}
    exercise = next((e for e in RUBRIC.exercises if e.id == exercise_id), None)
    assert exercise is not None, f"{exercise_id} is not in the rubric"
    untested = [c.id for c in exercise.criteria if c.id not in tested]
    assert untested == [], f"{exercise_id}: criteria without a test marked @pytest.mark.criterion(id): {untested}"


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_every_exercise_test_names_a_criterion_of_its_exercise(exercise_id, collected):
    known = RUBRIC.criteria
    problems = []
    for test in collected["tests"]:
        folder = _folder(test["path"])
        if _exercise_of_folder(folder) != exercise_id or not folder.startswith("ex"):
            continue
        if not test["criteria"]:
            problems.append(f"{test['nodeid']}: no @pytest.mark.criterion(...)")
        for criterion in test["criteria"]:
            if criterion not in known:
                problems.append(f"{test['nodeid']}: unknown criterion {criterion!r}")
            elif known[criterion].exercise_id != exercise_id:
                problems.append(f"{test['nodeid']}: criterion {criterion} belongs to another exercise")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_hidden_criteria_are_tested_only_in_test_hidden(exercise_id, collected):
    known = RUBRIC.criteria
    problems = []
    for test in collected["tests"]:
        in_hidden_file = Path(test["path"]).name == "test_hidden.py"
        for criterion in test["criteria"]:
            if criterion not in known or known[criterion].exercise_id != exercise_id:
                continue
            if known[criterion].hidden and not in_hidden_file:
                problems.append(f"{test['nodeid']}: hidden criterion {criterion} tested outside test_hidden.py")
            if in_hidden_file and not known[criterion].hidden:
                problems.append(f"{test['nodeid']}: public criterion {criterion} tested in test_hidden.py "
                                "(learners would never see it)")
    assert problems == [], "\n".join(problems)


def test_machinery_tests_carry_no_criterion(collected):
    marked = [t["nodeid"] for t in collected["tests"] if not _folder(t["path"]).startswith("ex") and t["criteria"]]
    assert marked == [], f"tests of the workbook's machinery are not graded; drop their criterion markers: {marked}"


def test_criterion_ids_in_markers_are_well_formed(collected):
    malformed = sorted({c for t in collected["tests"] for c in t["criteria"] if not CRITERION_ID.match(c)})
    assert malformed == [], f"criterion ids must look like ex04.t1.name: {malformed}"


def test_every_test_folder_belongs_to_an_exercise(collected):
    per_folder = defaultdict(int)
    for test in collected["tests"]:
        per_folder[_folder(test["path"])] += 1
    orphans = sorted(f for f in per_folder if f.startswith("ex") and f not in FOLDER_OF)
    assert orphans == [], f"test folders with no exercise in the rubric: {orphans}"
