"""git for the release: is the instructor repo committed, the files of its last commit, and the release as a
new repository with one initial commit."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

from grading.core.errors import GradingError
from grading.release.policy import release_policy


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=120,
                          check=False)


def uncommitted_changes(root: Path) -> list[str] | None:
    """`git status` of the instructor repo, one path a line; None when it is not a git repository."""
    inside = _git(root, "rev-parse", "--show-toplevel")
    if inside.returncode != 0:
        return None
    status = _git(root, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    if status.returncode != 0:
        raise GradingError(f"git status failed in {root}: {status.stderr.strip()}")
    return [line for line in status.stdout.splitlines() if line.strip()]


def export_commit(root: Path, into: Path) -> tuple[str, Path]:
    """The files of HEAD (what is committed, nothing else) into `into`; returns the commit's SHA."""
    sha = _git(root, "rev-parse", "HEAD")
    if sha.returncode != 0:
        raise GradingError(f"{root} has no commit to build a release from: {sha.stderr.strip()}")
    prefix = _git(root, "rev-parse", "--show-prefix").stdout.strip()
    archive = into / "head.tar"
    done = _git(root, "archive", "--format=tar", f"--output={archive}", "HEAD", *([prefix] if prefix else []))
    if done.returncode != 0:
        raise GradingError(f"git archive failed in {root}: {done.stderr.strip()}")
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return sha.stdout.strip(), tree / prefix if prefix else tree


def init_repository(out: Path) -> None:
    """The release as a git repository with one initial commit (the learner's history starts there)."""
    policy = release_policy()
    name, email = policy.author
    identity = ["-c", f"user.name={name}", "-c", f"user.email={email}", "-c", "commit.gpgsign=false"]
    for command, args in (("init", ["init", "-q", "-b", "main"]), ("add", ["add", "-A"]),
                          ("commit", [*identity, "commit", "-q", "--no-verify", "-m", policy.message])):
        done = _git(out, *args)
        if done.returncode != 0:
            raise GradingError(f"git {command} in {out} failed: {done.stderr.strip() or done.stdout.strip()}")
