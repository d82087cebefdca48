"""Canary tests: planted by the grader in the graded tree with random names in random exercise folders,
shaped and marked like the real tests there. Some must fail, some must pass: a run that reports any of
them otherwise has been tampered with (a patched report, a forged record, a recorder that lies).
"""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from pathlib import Path

from grading.core.rubric import Exercise
from grading.scoring.run import Run

WORDS = ("status", "payload", "window", "retry", "poke", "event", "batch", "deadline", "marker", "backoff",
         "cursor", "queue", "watermark", "interval", "response", "asset", "partition", "freshness")
PASSING, FAILING = 2, 2


@dataclass(frozen=True)
class Canary:
    nodeid: str
    must: str  # "passed" | "failed"


def plant(tree: Path, exercises: list[Exercise], rng: random.Random | None = None) -> list[Canary]:
    """Write the canaries into the tree's exercise test folders; returns what each must report."""
    rng = rng or random.SystemRandom()
    folders = [e for e in exercises if (tree / e.test_folder).is_dir() and e.criteria]
    canaries = []
    if not folders:
        return canaries
    for must in ["passed"] * PASSING + ["failed"] * FAILING:
        exercise = rng.choice(folders)
        criterion = rng.choice([c for c in exercise.criteria if not c.hidden] or list(exercise.criteria))
        name = f"test_{rng.choice(WORDS)}_{rng.choice(WORDS)}_{secrets.token_hex(3)}"
        path = tree / exercise.test_folder / f"{name}.py"
        while path.exists():
            path = path.with_name(f"test_{rng.choice(WORDS)}_{secrets.token_hex(4)}.py")
        path.write_text(_source(name, criterion.id, must, rng), encoding="utf-8")
        path.chmod(0o644)
        canaries.append(Canary(nodeid=f"{path.relative_to(tree).as_posix()}::{name}", must=must))
    return canaries


def _source(name: str, criterion: str, must: str, rng: random.Random) -> str:
    values = [rng.randrange(1, 1000) for _ in range(rng.randrange(3, 7))]
    total = sum(values)
    expected = total if must == "passed" else total + rng.randrange(1, 50)
    return f'''import pytest


@pytest.mark.criterion("{criterion}")
def {name}():
    values = {values!r}
    result = sum(values)
    assert result == {expected}, f"sum({{values!r}}): expected {expected}, got {{result!r}}"
'''


def evidence(canaries: list[Canary], run: Run, *, run_was_cut: bool,
             exercises: list[Exercise] = ()) -> list[str]:
    """One line per canary that did not report what it must (empty: the run told the truth)."""
    lines = []
    for canary in canaries:
        test = run.tests.get(canary.nodeid)
        outcome = test.outcome if test else "missing"
        if outcome == canary.must:
            continue
        if run_was_cut and outcome in {"not_run", "missing"}:
            continue  # the run ended before it: no evidence either way
        if outcome == "missing" and _module_did_not_import(canary, run, exercises):
            continue  # its folder was not collected, as every test file of an exercise that cannot import
        lines.append(f"canary {canary.nodeid} must have {canary.must}, the run reported {outcome}")
    return lines


def _module_did_not_import(canary: Canary, run: Run, exercises: list[Exercise]) -> bool:
    """Whether the canary's exercise was reported as a module that does not import: one failed item that
    stands for (and so fails) every criterion of the exercise, or a folder whose collection killed the test
    process; claiming either gains nothing."""
    folder = canary.nodeid.split("::", 1)[0].rsplit("/", 1)[0]
    if folder in run.collection_errors:
        return True  # the test process died importing the folder: every criterion of the exercise fails
    exercise = next((e for e in exercises if e.test_folder.rstrip("/") == folder), None)
    if exercise is None:
        return False
    every = {c.id for c in exercise.criteria}
    return any(t.nodeid == f"{folder}::{exercise.module}_imports" and t.outcome in {"failed", "error"}
               and every <= set(t.criteria) for t in run.tests.values())


def remove(canaries: list[Canary], run: Run) -> None:
    """Take the canaries out of the run before it is graded (they prove nothing about the submission)."""
    for canary in canaries:
        run.tests.pop(canary.nodeid, None)
