"""`grade-submission`: each fixture submission produces the report in grading_fixtures/expected/, taking
only starters/ from the learner's copy and changing neither that copy nor the instructor repo."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from grading.cli import main
from tests.workbook.grading_fixtures.builder import EXPECTED, SUBMISSIONS, make_submission, make_workbook

NAMES = sorted(p.name for p in SUBMISSIONS.iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("instructor") / "workbook")


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts}


def test_every_fixture_submission_has_its_expected_report():
    assert NAMES == sorted(p.stem for p in EXPECTED.glob("*.json")), (NAMES, sorted(EXPECTED.glob("*.json")))
    assert {"hangs", "crashes_on_import", "edits_tests", "half_done"} <= set(NAMES), NAMES


@pytest.mark.parametrize("name", NAMES)
def test_submission_report(name, workbook, tmp_path, capsys):
    learner = make_submission(name, workbook, tmp_path / "learner")
    before = {"learner": tree_digest(learner), "instructor": tree_digest(workbook)}
    out = tmp_path / "report"
    code = main(["--root", str(workbook), "grade-submission", str(learner), "--out", str(out), "--timeout", "3"])
    printed = capsys.readouterr()
    assert code == 0, f"grade-submission {name}: exit {code}\n{printed.out}\n{printed.err}"

    expected = json.loads((EXPECTED / f"{name}.json").read_text(encoding="utf-8"))
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    total = {k: results["total"][k] for k in expected["total"]}
    assert total == expected["total"], f"{name}: total {total}, expected {expected['total']}"
    got = {c["id"]: c for e in results["exercises"] for t in e["tasks"] for c in t["criteria"]}
    for criterion_id, want in expected["criteria"].items():
        have = got[criterion_id]
        assert (have["status"], have["points"]) == (want["status"], want["points"]), \
            f"{name}: {criterion_id} is {have['status']} with {have['points']} points, expected " \
            f"{want['status']} with {want['points']} ({have['message']!r})"
        assert want["message"] in have["message"], \
            f"{name}: {criterion_id} message {have['message']!r} lacks {want['message']!r}"
    for note in expected.get("notes", []):
        assert any(note in n for n in results["notes"]), f"{name}: no note like {note!r} in {results['notes']}"
    assert results["submission"] == str(learner)
    assert all((out / f).is_file() for f in ("report.md", "junit.xml", "report.txt"))

    after = {"learner": tree_digest(learner), "instructor": tree_digest(workbook)}
    assert after == before, f"{name}: grading changed the learner's copy or the instructor repo"


def test_symlinks_in_starters_are_not_followed(workbook, tmp_path, capsys):
    """A starter that links to the instructor's solution must not be graded as the learner's work."""
    learner = make_submission("edits_tests", workbook, tmp_path / "learner")
    (learner / "starters" / "greeting.py").unlink()
    (learner / "starters" / "greeting.py").symlink_to(workbook / "solutions" / "greeting.py")
    out = tmp_path / "report"
    main(["--root", str(workbook), "grade-submission", str(learner), "--out", str(out), "--timeout", "3"])
    capsys.readouterr()
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    greets = results["exercises"][1]["tasks"][0]["criteria"][0]
    assert greets["status"] != "passed", f"a symlinked solution earned points: {greets}"
    assert any("starters/greeting.py (a symlink)" in note for note in results["notes"]), results["notes"]


def test_a_path_without_starters_cannot_be_graded(workbook, tmp_path, capsys):
    code = main(["--root", str(workbook), "grade-submission", str(tmp_path), "--out", str(tmp_path / "out")])
    assert code == 2, f"a folder with no starters/: expected exit 2, got {code}"
    assert "has no starters/ folder" in capsys.readouterr().err
