"""The commit a folder has checked out, read from its .git's files without running git (git would obey the
folder's own .git/config, hooks and filters) and without trusting them.

Every file is opened one path component at a time below the folder, never through a symlink, and only when
it is a regular file; at most READ_LIMIT bytes of it are read. A HEAD that links to /dev/zero, a FIFO that no
one writes, a packed-refs of gigabytes: the commit is unknown (None), the caller goes on.

`confined=True` (a submission): a `gitdir:` file (a worktree or a submodule) is followed only to a folder
inside the submission. `confined=False` (the learner's own repo, graded on their own machine): it may point
anywhere, as `git worktree add` makes it; the files there are read with the same care.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path, PurePosixPath

READ_LIMIT = 64 * 1024  # HEAD and a loose ref are one line; a packed-refs of this size holds ~700 refs
PACKED_REFS_LIMIT = 4 * 1024 * 1024
SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
REF = re.compile(r"refs/[\w./-]+")


def checked_out_commit(folder: Path, *, confined: bool) -> str | None:
    """The checked-out commit of `folder` (a repository's top), or None when it cannot be told safely.

    `confined`: True for a submission (nothing outside `folder` is read), False for the learner's own repo."""
    top = Path(os.path.abspath(folder))
    try:
        git_dir = _git_dir(top, confined)
        if git_dir is None:
            return None
        base, relative = git_dir
        head = _text(base, relative / "HEAD", READ_LIMIT)
        if head is None:
            return None
        head = head.strip()
        if SHA.fullmatch(head):
            return head
        ref = head.removeprefix("ref:").strip()
        if not head.startswith("ref:") or not REF.fullmatch(ref) or ".." in PurePosixPath(ref).parts:
            return None
        common = _common_dir(base, relative, confined)
        for where in dict.fromkeys(((base, relative), common)):
            value = _text(where[0], where[1] / ref, READ_LIMIT)
            if value is not None:
                value = value.strip()
                return value if SHA.fullmatch(value) else None
        packed = _text(common[0], common[1] / "packed-refs", PACKED_REFS_LIMIT)
        for line in (packed or "").splitlines():
            value, _, name = line.partition(" ")
            if name.strip() == ref and SHA.fullmatch(value):
                return value
    except OSError:
        return None
    return None


def _git_dir(top: Path, confined: bool) -> tuple[Path, PurePosixPath] | None:
    """Where the repository's files are: (a folder opened as is, a path below it opened with care)."""
    kind = _kind(top, PurePosixPath(".git"))
    if kind == "dir":
        return top, PurePosixPath(".git")
    if kind != "file":
        return None
    pointer = _text(top, PurePosixPath(".git"), READ_LIMIT)
    if pointer is None or not pointer.startswith("gitdir:"):
        return None
    return _follow(top, top, pointer.removeprefix("gitdir:").strip(), confined)


def _common_dir(base: Path, relative: PurePosixPath, confined: bool) -> tuple[Path, PurePosixPath]:
    """A worktree's shared refs (its `commondir` file), else the git dir itself."""
    pointer = _text(base, relative / "commondir", READ_LIMIT)
    if pointer is None:
        return base, relative
    followed = _follow(base, base / relative, pointer.strip(), confined)
    return followed if followed is not None else (base, relative)


def _follow(top: Path, here: Path, pointer: str, confined: bool) -> tuple[Path, PurePosixPath] | None:
    """The folder a `gitdir:`/`commondir` pointer names, relative to `here`: inside `top` when confined."""
    if not pointer or "\0" in pointer:
        return None
    target = Path(os.path.normpath(here / pointer))
    if not confined:
        return target, PurePosixPath(".")
    # git writes a `gitdir:` with every link resolved: a folder reached through a linked path is still itself.
    for spelled in dict.fromkeys((top, Path(os.path.realpath(top)))):
        try:
            inside = target.relative_to(spelled)
        except ValueError:
            continue
        return top, PurePosixPath(inside.as_posix())
    return None  # a submission's repository is whole inside it; anything else is not its own


def _kind(top: Path, relative: PurePosixPath) -> str | None:
    """"dir", "file" or None (missing, a link, anything else), without following a link anywhere."""
    fd = _open_parent(top, relative)
    if fd is None:
        return None
    try:
        mode = os.stat(relative.name, dir_fd=fd, follow_symlinks=False).st_mode
    except OSError:
        return None
    finally:
        os.close(fd)
    return "dir" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else None


def _text(top: Path, relative: PurePosixPath, limit: int) -> str | None:
    """The file `top/relative` as text when it is a regular file of at most `limit` bytes, reached without a
    link; else None."""
    if relative.name in ("", ".", ".."):
        return None
    parent = _open_parent(top, relative)
    if parent is None:
        return None
    try:
        if not stat.S_ISREG(os.stat(relative.name, dir_fd=parent, follow_symlinks=False).st_mode):
            return None
        # O_NONBLOCK: a FIFO swapped in after the check opens without waiting for a writer (fstat refuses it).
        fd = os.open(relative.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=parent)
    except OSError:
        return None
    finally:
        os.close(parent)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = os.read(fd, limit + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    if len(data) > limit:
        return None
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        return None


def _open_parent(top: Path, relative: PurePosixPath) -> int | None:
    """A descriptor of the folder holding `top/relative`, each folder below `top` entered without a link."""
    if relative.is_absolute() or ".." in relative.parts:
        return None
    try:
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    for part in relative.parts[:-1]:
        if part == ".":
            continue
        try:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        except OSError:
            os.close(fd)
            return None
        os.close(fd)
        fd = inner
    return fd
