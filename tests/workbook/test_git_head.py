"""Reading the checked-out commit from .git without running git (grading.core.git_head): real repositories made
with git (worktrees, packed refs, a git dir kept elsewhere, SHA-256) give the commit git names; hostile files
(links, devices, FIFOs, huge files, refs and pointers out of the folder) give None, without waiting or reading
them whole. `confined=True` is a submission's reading, `confined=False` the learner's own repository's."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

import pytest

from grading.core.git_head import checked_out_commit
from tests.workbook.hand_made_git import SHA, hand_made, released, within

OTHER_SHA = "89abcdef0123456789abcdef0123456789abcdef"
# git with no configuration of the machine's or the user's: what it writes depends only on these tests.
QUIET_GIT = {"GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1", "GIT_AUTHOR_NAME": "t",
             "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
             "GIT_COMMITTER_EMAIL": "t@example.invalid"}


def git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, **QUIET_GIT})
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def committed(folder: Path, *init: str) -> Path:
    """A repository at `folder` with one commit on `main`."""
    folder.mkdir(parents=True, exist_ok=True)
    git(folder, "init", "-q", "-b", "main", *init)
    git(folder, "commit", "-q", "--allow-empty", "-m", "first")
    return folder


@pytest.fixture(params=[True, False], ids=["submission", "own repository"])
def read(request):
    return functools.partial(checked_out_commit, confined=request.param)


# ---- honest repositories -----------------------------------------------------------------------------------
def test_a_repository_gives_the_commit_git_names(read, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    assert read(repo) is None, "not a repository"
    git(repo, "init", "-q", "-b", "main")
    assert read(repo) is None, "a repository without a commit: HEAD names a branch that does not exist yet"
    git(repo, "commit", "-q", "--allow-empty", "-m", "first")
    assert read(repo) == git(repo, "rev-parse", "HEAD"), "a loose branch ref"
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert read(repo) == git(repo, "rev-parse", "HEAD"), "a packed branch ref"
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    assert read(repo) == git(repo, "rev-parse", "HEAD"), "a loose ref newer than its packed line"
    git(repo, "checkout", "-q", "--detach", "HEAD~1")
    assert read(repo) == git(repo, "rev-parse", "HEAD") == git(repo, "rev-parse", "main~1"), "a detached HEAD"


def test_a_sha256_repository_gives_its_commit(read, tmp_path):
    repo = committed(tmp_path / "repo", "--object-format=sha256")
    commit = git(repo, "rev-parse", "HEAD")
    assert len(commit) == 64 and read(repo) == commit


def test_a_git_dir_kept_inside_the_folder_is_followed_however_the_folder_is_reached(read, tmp_path):
    repo = tmp_path / "real" / "repo"
    repo.mkdir(parents=True)
    committed(repo, f"--separate-git-dir={repo / '.gitdata'}")
    commit = git(repo, "rev-parse", "HEAD")
    assert (repo / ".git").read_text(encoding="ascii").startswith("gitdir: /"), "git writes an absolute path"
    assert read(repo) == commit
    (tmp_path / "linked").symlink_to(tmp_path / "real")
    assert read(tmp_path / "linked" / "repo") == commit, "the same folder, reached through a linked path"
    (repo / ".git").write_text("gitdir: .gitdata\n", encoding="ascii")
    assert read(repo) == commit, "a relative gitdir:"


def test_a_worktree_gives_its_own_commit_from_the_shared_refs(tmp_path):
    repo = committed(tmp_path / "repo")
    git(repo, "worktree", "add", "-q", "-b", "other", str(tmp_path / "other"))
    git(tmp_path / "other", "commit", "-q", "--allow-empty", "-m", "on other")
    own = functools.partial(checked_out_commit, confined=False)
    assert own(tmp_path / "other") == git(tmp_path / "other", "rev-parse", "HEAD") != git(repo, "rev-parse", "HEAD")
    assert own(repo) == git(repo, "rev-parse", "HEAD"), "the main worktree is not confused by the other"
    git(repo, "pack-refs", "--all")
    assert own(tmp_path / "other") == git(tmp_path / "other", "rev-parse", "HEAD"), "its branch packed"
    git(tmp_path / "other", "checkout", "-q", "--detach", "main")
    assert own(tmp_path / "other") == git(repo, "rev-parse", "main"), "a detached worktree"
    # A submission's repository is whole inside it: a worktree's lives in another folder.
    assert checked_out_commit(tmp_path / "other", confined=True) is None
    assert checked_out_commit(repo, confined=True) == git(repo, "rev-parse", "HEAD")


def test_a_worktree_kept_inside_the_folder_reads_its_shared_refs_only_from_there(tmp_path):
    top = tmp_path / "learner"
    worktree = top / ".gitdata" / "worktrees" / "wt"
    worktree.mkdir(parents=True)
    (top / ".git").write_text("gitdir: .gitdata/worktrees/wt\n", encoding="ascii")
    (worktree / "HEAD").write_text("ref: refs/heads/other\n", encoding="ascii")
    (worktree / "commondir").write_text("../..\n", encoding="ascii")
    (top / ".gitdata" / "packed-refs").write_text(f"# pack-refs with: peeled\n{SHA} refs/heads/other\n^{OTHER_SHA}\n",
                                                  encoding="ascii")
    for confined in (True, False):
        assert checked_out_commit(top, confined=confined) == SHA, f"confined={confined}"
    outside = hand_made(tmp_path / "instructor", OTHER_SHA)
    (outside / ".git" / "refs" / "heads" / "main").rename(outside / ".git" / "refs" / "heads" / "other")
    (top / ".gitdata" / "packed-refs").unlink()
    (worktree / "commondir").write_text(f"{outside / '.git'}\n", encoding="ascii")
    assert checked_out_commit(top, confined=True) is None, "shared refs taken from another repository"
    assert checked_out_commit(top, confined=False) == OTHER_SHA, "the learner's own worktree may share any repo's"


# ---- what is not followed ----------------------------------------------------------------------------------
def test_pointers_out_of_a_submission_are_not_followed(tmp_path):
    outside = hand_made(tmp_path / "instructor")
    learner = tmp_path / "learner"
    learner.mkdir()
    (learner / ".git").write_text(f"gitdir: {outside / '.git'}\n", encoding="ascii")
    assert checked_out_commit(learner, confined=True) is None, "an absolute gitdir: out of the submission"
    assert checked_out_commit(learner, confined=False) == SHA, "the learner's own repository: followed"
    (learner / ".git").write_text("gitdir: ../instructor/.git\n", encoding="ascii")
    assert checked_out_commit(learner, confined=True) is None, "a relative gitdir: out of the submission"
    (learner / ".git").write_bytes(b"gitdir: ../instructor/.git\0/x\n")
    assert checked_out_commit(learner, confined=False) is None, "a gitdir: with a NUL in it"


def test_links_are_not_followed(read, tmp_path):
    outside = hand_made(tmp_path / "instructor")
    learner = tmp_path / "learner"
    learner.mkdir()
    (learner / ".git").symlink_to(outside / ".git")
    assert read(learner) is None, ".git linked to another repository's"
    (learner / ".git").unlink()
    heads = hand_made(learner, OTHER_SHA) / ".git" / "refs" / "heads"
    (heads / "main").unlink()
    (heads / "main").symlink_to(outside / ".git" / "refs" / "heads" / "main")
    assert read(learner) is None, "a branch ref linked to another repository's"
    (heads / "main").unlink()
    heads.rmdir()
    heads.symlink_to(outside / ".git" / "refs" / "heads")
    assert read(learner) is None, "refs/heads linked to another repository's"
    (learner / ".git" / "HEAD").unlink()
    (learner / ".git" / "HEAD").symlink_to(outside / ".git" / "HEAD")
    assert read(learner) is None, "HEAD linked to another repository's"


@pytest.mark.parametrize("head", [
    "ref: refs/heads/../../../../instructor/.git/refs/heads/main",
    "ref: ../../instructor/.git/refs/heads/main",
    "ref: /etc/passwd",
    "ref: refs/heads/gone",  # a missing ref, neither loose nor packed
    "ref: refs/heads/other",  # a ref naming another ref, not a commit
    "ref: refs/heads/short",  # a ref holding an abbreviated commit
    "0123456789abcdef",  # a detached HEAD that is not a whole commit id
    "ref: refs/heads/mäin",
], ids=["climbs out", "relative path", "absolute path", "missing", "symbolic", "abbreviated", "short detached",
        "not ascii"])
def test_a_head_naming_no_commit_of_the_folder_gives_none(read, tmp_path, head):
    hand_made(tmp_path / "instructor")
    learner = hand_made(tmp_path / "learner", OTHER_SHA)
    (learner / ".git" / "refs" / "heads" / "other").write_text("ref: refs/heads/main\n", encoding="ascii")
    (learner / ".git" / "refs" / "heads" / "short").write_text(OTHER_SHA[:12] + "\n", encoding="ascii")
    (learner / ".git" / "HEAD").write_text(head + "\n", encoding="utf-8")
    assert read(learner) is None


# ---- hostile files -----------------------------------------------------------------------------------------
def test_a_head_linked_to_dev_zero_gives_none(read, tmp_path):
    repo = hand_made(tmp_path)
    (repo / ".git" / "HEAD").unlink()
    (repo / ".git" / "HEAD").symlink_to("/dev/zero")
    assert within(30, read, repo) is None


@pytest.mark.parametrize("name", ["HEAD", "packed-refs", "refs/heads/main"])
def test_a_fifo_gives_none_without_waiting_for_a_writer(read, tmp_path, name):
    repo = hand_made(tmp_path)
    fifo = repo / ".git" / name
    fifo.unlink(missing_ok=True)
    if name == "packed-refs":
        (repo / ".git" / "refs" / "heads" / "main").unlink()
    os.mkfifo(fifo)
    with released(fifo):
        assert within(30, read, repo) is None


@pytest.mark.parametrize("name", ["HEAD", "refs/heads/main", "packed-refs"])
def test_a_huge_file_gives_none_unread(read, tmp_path, name):
    repo = hand_made(tmp_path)
    if name == "packed-refs":
        (repo / ".git" / "refs" / "heads" / "main").unlink()
    start = {"HEAD": "ref: refs/heads/main\n", "refs/heads/main": SHA + "\n"}.get(name, f"{SHA} refs/heads/main\n")
    with (repo / ".git" / name).open("w", encoding="ascii") as huge:
        huge.write(start)
        huge.truncate(2 * 1024**3)  # sparse: 2 GiB that nobody should read
    assert within(30, read, repo) is None


def test_a_head_or_git_that_is_no_regular_file_gives_none(read, tmp_path):
    repo = hand_made(tmp_path / "repo")
    (repo / ".git" / "HEAD").unlink()
    (repo / ".git" / "HEAD").mkdir()
    assert read(repo) is None, "HEAD a folder"
    (repo / ".git" / "HEAD").rmdir()
    assert read(repo) is None, "no HEAD"
    fifo_top = tmp_path / "fifo"
    fifo_top.mkdir()
    os.mkfifo(fifo_top / ".git")
    assert within(30, read, fifo_top) is None, ".git a FIFO"
