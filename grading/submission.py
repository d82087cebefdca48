"""`grade-submission PATH`: grade a learner's copy of the repo without trusting anything in it but starters/.

A pristine copy of this repo (its tests, conftest, rubric, grading code, fixtures) is made in a temp dir,
its starters/ replaced by the submission's (regular files only: a symlink could point at the solutions),
and graded there with this repo's Python. Neither the submission nor this repo is modified.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from grading.grade import add_grading_options, grade_tree, publish
from grading.runner import GradingError

LEARNER_OWNED = "starters"
# Never part of the pristine copy: environments, caches, VCS data, earlier reports.
SKIP_NAMES = {".venv", ".git", ".cache", "__pycache__", ".pytest_cache", ".ruff_cache", "build", "reports",
              ".ipynb_checkpoints", "node_modules", ".mypy_cache"}
MAX_FILE_BYTES = 5 * 1024 * 1024


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("grade-submission", help="grade a learner's repo (only its starters/ count)",
                                 description="Grade a learner's copy: only its starters/ are taken, into a "
                                             "pristine copy of this repo in a temp dir.")
    parser.add_argument("path", type=Path, help="the learner's copy of the repo (or its starters/ folder)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the graded copy in this folder (debugging)")
    add_grading_options(parser, default_out="reports/submission")
    parser.set_defaults(handler=run)


def submission_starters(path: Path) -> Path:
    path = path.resolve()
    for candidate in (path / LEARNER_OWNED, path):
        if candidate.name == LEARNER_OWNED and candidate.is_dir():
            return candidate
    raise GradingError(f"{path} has no {LEARNER_OWNED}/ folder: pass the learner's repo")


def pristine_copy(root: Path, into: Path) -> None:
    """Copy the instructor repo's tree (not its venv, caches or VCS data)."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP_NAMES or n.endswith((".pyc", ".egg-info"))}

    shutil.copytree(root, into, ignore=ignore, symlinks=True, dirs_exist_ok=True)
    # Share the migrated metadata DB template (derived from Airflow alone; it saves a migration per grade).
    cache = root / ".cache"
    if cache.is_dir():
        os.symlink(cache, into / ".cache")


def take_learner_files(starters: Path, into: Path) -> list[str]:
    """Replace the copy's starters/ by the submission's regular files; returns what was left out."""
    pristine = into / LEARNER_OWNED
    shipped = {p.relative_to(pristine): p.read_bytes() for p in pristine.rglob("*") if p.is_file()}
    shutil.rmtree(pristine)
    skipped = []
    for source in sorted(starters.rglob("*")):
        relative = source.relative_to(starters)
        if any(part in SKIP_NAMES for part in relative.parts):
            continue
        if source.is_symlink():
            skipped.append(f"{LEARNER_OWNED}/{relative} (a symlink)")
            continue
        if source.is_dir():
            continue
        if source.stat().st_size > MAX_FILE_BYTES:
            skipped.append(f"{LEARNER_OWNED}/{relative} (larger than {MAX_FILE_BYTES // 1024 // 1024} MiB)")
            continue
        target = pristine / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    # The workbook's own plumbing in starters/ (package marker, the todo helper) is restored if deleted.
    for relative in (Path("__init__.py"), Path("_todo.py")):
        if relative in shipped and not (pristine / relative).exists():
            (pristine / relative).parent.mkdir(parents=True, exist_ok=True)
            (pristine / relative).write_bytes(shipped[relative])
    (pristine / "dags").mkdir(parents=True, exist_ok=True)
    return skipped


def run(args: argparse.Namespace) -> int:
    starters = submission_starters(args.path)
    root = args.root.resolve()
    with tempfile.TemporaryDirectory(prefix="workbook-submission-") as scratch:
        copy = Path(args.keep).resolve() if args.keep else Path(scratch) / "repo"
        pristine_copy(root, copy)
        skipped = take_learner_files(starters, copy)
        grade = grade_tree(copy, target="starter", per_test_timeout=args.per_test_timeout,
                           run_timeout=args.run_timeout, out=args.out.resolve(), echo=args.echo,
                           reveal_hidden=args.reveal_hidden, submission=str(args.path))
        grade.notes += [f"not taken from the submission: {item}" for item in skipped]
        return publish(grade, args)
