"""The tree grade-class grades for a learner: their folder as it is, or a clone at the roster's commit, fetched
without running any of the learner's code; `--fetch-only` does only that, for a later grade-class."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from grading.classroom.roster import Entry
from grading.core.atomic import write_text
from grading.core.errors import GradingError
from grading.core.git_head import checked_out_commit

# The commit of a tree is read from its .git's files, never by git, which would obey the learner's .git/config
# (grading.core.git_head: bounded reads, no link followed, nothing outside the learner's folder).
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1", "GIT_CONFIG_NOSYSTEM": "1"}


def checkout(entry: Entry, into: Path) -> tuple[Path, str | None, bool]:
    """The tree to grade, its commit, and whether it is a clone: the folder itself, or a clone at the commit."""
    if not entry.is_url and not entry.commit:
        path = Path(entry.repo)
        if not path.is_dir():
            raise GradingError(f"{entry.repo}: no such folder")
        return path, checked_out_commit(path, confined=True), False
    env = os.environ | GIT_ENV
    # No hooks, no submodules, no LFS filters: nothing of the learner's runs while it is fetched.
    git = ["git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"]
    clone = subprocess.run([*git, "clone", "--quiet", "--no-checkout", "--no-hardlinks", entry.repo, str(into)],
                           capture_output=True, text=True, env=env, check=False, timeout=600)
    if clone.returncode != 0:
        raise GradingError(f"git clone {entry.repo} failed: {_first_line(clone.stderr)}")
    revision = entry.commit or "HEAD"
    switch = subprocess.run([*git, "-C", str(into), "checkout", "--quiet", "--detach", revision],
                            capture_output=True, text=True, env=env, check=False, timeout=600)
    if switch.returncode != 0:
        raise GradingError(f"{entry.repo} has no commit {revision}: {_first_line(switch.stderr)}")
    return into, checked_out_commit(into, confined=True), True


def starters_digest(path: Path) -> str:
    """What grade-submission takes from a folder that is not at a known commit: its starters/ tree."""
    digest = hashlib.sha256()
    starters = path / "starters"
    if starters.is_symlink():
        digest.update(b"symlink:" + os.readlink(starters).encode())
    elif starters.is_dir():
        for item in sorted(starters.rglob("*")):
            if "__pycache__" in item.parts:
                continue
            # os.fsencode: a name that is not UTF-8 is still hashed by its bytes (grade-submission refuses it).
            digest.update(os.fsencode(item.relative_to(starters)) + b"\0")
            if item.is_symlink():
                digest.update(b"symlink:" + os.fsencode(os.readlink(item)))
            elif item.is_file():
                digest.update(_file_digest(item))
    return digest.hexdigest()


def _file_digest(path: Path) -> bytes:
    """sha256 of a regular file read in chunks (a huge file costs time, never memory), without following a
    link or waiting on a FIFO swapped in."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b"unreadable"
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b"not a file"
        return hashlib.file_digest(file, "sha256").digest()


def fetch_only(entries: list[Entry], into: Path) -> int:
    """Clone each learner's repo at its commit (running none of its code) and write the roster of the clones."""
    into.mkdir(parents=True, exist_ok=True)
    rows = ["learner,repo,commit"]
    for entry in entries:
        target = into / entry.learner
        shutil.rmtree(target, ignore_errors=True)
        try:
            if not entry.is_url and not entry.commit:
                shutil.copytree(entry.repo, target, symlinks=True)
                commit = checked_out_commit(target, confined=True)
            else:
                _, commit, _ = checkout(entry, target)
        except (GradingError, OSError) as error:
            # Left out of the folder: grade-class will report the learner as "could not grade".
            print(f"{entry.learner}: not fetched: {error}", file=sys.stderr)
            commit = entry.commit
        else:
            print(f"{entry.learner}: fetched {commit or 'its folder (no commit)'}")
        rows.append(f"{entry.learner},{entry.learner},{commit or ''}")
    write_text(into / "roster.csv", "\n".join(rows) + "\n")
    return 0


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no message")[:300]
