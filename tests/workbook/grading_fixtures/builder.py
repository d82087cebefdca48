"""Builds the fixture workbook (and learners' copies of it) in a temp dir, with the real machinery."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[2]
SUBMISSIONS = HERE / "submissions"
EXPECTED = HERE / "expected"
# The real workbook machinery the fixture workbook runs on: conftest and harness, simulators, pytest config.
MACHINERY = ("tests/__init__.py", "tests/conftest.py", "tests/harness", "fixtures", "pyproject.toml",
             "starters/__init__.py", "starters/_todo.py")
IGNORED = ("__pycache__", "*.pyc")
IGNORE = shutil.ignore_patterns(*IGNORED)
PREPARE = "prepare.py"


def make_workbook(into: Path) -> Path:
    """A tiny instructor repo: the fixture exercises (with solutions and a hidden test) on the real machinery."""
    into.mkdir(parents=True, exist_ok=True)
    for relative in MACHINERY:
        source = REPO_ROOT / relative
        target = into / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=IGNORE)
        else:
            shutil.copyfile(source, target)
    shutil.copytree(HERE / "workbook", into, ignore=IGNORE, dirs_exist_ok=True)
    (into / "solutions" / "__init__.py").touch()
    for side in ("starters", "solutions"):
        (into / side / "dags").mkdir(exist_ok=True)
    return into


def make_submission(name: str, workbook: Path, into: Path) -> Path:
    """A learner's copy: the workbook's learner release with the learner's changes on top."""
    from grading.release.build import build

    release = build(workbook, into)
    assert not release.leaks, release.leaks
    shutil.copytree(SUBMISSIONS / name, into, dirs_exist_ok=True, ignore=shutil.ignore_patterns(PREPARE, *IGNORED))
    prepare = SUBMISSIONS / name / PREPARE
    if prepare.is_file():
        # What a folder of files cannot hold (a symlinked starters/, a binary): made by the fixture's prepare().
        runpy.run_path(str(prepare))["prepare"](into, workbook)
    return into
