"""The tree a submission is graded in: what a learner release holds, plus the hidden tests and the full
rubric, with the learner's starters/ in it. No solutions/, no .git, no instructor-only tools, nothing of the
instructor repo but copies. Built fresh for every submission; hashed before and after the run.

Only regular `.py` files of the submission's starters/ (and DAG folder files) are taken. Files that would
run code outside the graded modules (compiled modules, site hooks, conftest.py, Airflow's local settings)
refuse the whole submission: a reviewer reads the `.py`, the interpreter would run something else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import unicodedata
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

from grading.release.policy import release_policy

LEARNER_OWNED = "starters"
MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_FILES, MAX_TOTAL_BYTES = 2000, 64 * 1024 * 1024
# Linux allows 255-byte names; a learner's module needs far less, and reports show every name.
MAX_NAME_BYTES, MAX_PATH_CHARS, MAX_DEPTH, SHOWN_NAME_CHARS = 100, 200, 12, 80
# Data files a DAG folder may carry next to its DAGs (SQL, templates, small configs).
DAG_DATA_SUFFIXES = {".sql", ".json", ".yaml", ".yml", ".txt", ".md", ".csv", ".j2", ".jinja"}
COMPILED_SUFFIXES = {".so", ".pyd", ".pyc", ".pyo", ".dll", ".dylib"}
# Names Python or Airflow import on their own, before or beside the graded code.
AUTO_IMPORTED = {"sitecustomize.py", "usercustomize.py", "conftest.py", "airflow_local_settings.py"}
CACHE_FOLDER = ".cache"
# The copy of the metadata DB template lives here. In the sandbox this folder is a capped tmpfs with the
# template bound read-only (grading.suite.sandbox): the harness's lock goes to memory, never to the host's disk.
# Not hashed: unsandboxed (trusted code), the harness writes its lock here.
UNHASHED = {CACHE_FOLDER}


@dataclass
class GradedTree:
    root: Path
    refusals: list[str] = field(default_factory=list)  # any of them: the submission is not graded
    skipped: list[str] = field(default_factory=list)  # left out, noted in the report


def refusal_reason(relative: Path) -> str | None:
    """Why a file in starters/ makes the submission ungradable, or None."""
    name = relative.name
    if relative.suffix in COMPILED_SUFFIXES and "__pycache__" not in relative.parts:
        return f"{LEARNER_OWNED}/{relative.as_posix()} is a compiled module (only .py source is graded)"
    if name.endswith(".pth"):
        return f"{LEARNER_OWNED}/{relative.as_posix()} is a .pth file (it would run at interpreter start)"
    if name in AUTO_IMPORTED:
        return f"{LEARNER_OWNED}/{relative.as_posix()} would be imported by Python, pytest or Airflow on its own"
    return None


def build(root: Path, starters: Path, into: Path) -> GradedTree:
    """Build the graded tree of `starters` (the submission's folder) into `into` (a new folder)."""
    root = root.resolve()
    tree = GradedTree(root=into)
    if starters.is_symlink():
        tree.refusals.append(f"{LEARNER_OWNED}/ is a symlink (to {os.readlink(starters)})")
        return tree
    into.mkdir(parents=True)
    _copy_instructor_side(root, into)
    _take_learner_files(root, starters, tree)
    _copy_db_template(root, into)
    _make_readable(into)
    return tree


def _copy_instructor_side(root: Path, into: Path) -> None:
    policy = release_policy()

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder)
        skipped = set()
        for name in names:
            relative = (here / name).relative_to(root)
            if name in policy.cache_names or name.endswith((".pyc", ".egg-info")) or (here / name).is_symlink():
                skipped.add(name)
            elif policy.is_instructor_only_test(relative):
                skipped.add(name)  # the grading tool's own tests (they carry fixture solutions)
            elif relative.parts[0] == "grading" and len(relative.parts) == 2 and name in policy.instructor_only_grading:
                skipped.add(name)
        return skipped

    for folder in policy.folders:
        if folder != LEARNER_OWNED and (root / folder).is_dir():
            shutil.copytree(root / folder, into / folder, ignore=ignore)
    # grading/ is this grader's own code (its pytest plugin runs in the graded process), never a copy's.
    grader = Path(__file__).resolve().parents[1]
    shutil.copytree(grader, into / "grading", ignore=lambda folder, names: {
        n for n in names if n in policy.cache_names or n.endswith(".pyc") or
        (Path(folder) == grader and n in policy.instructor_only_grading)})
    for name in policy.files:
        if (root / name).is_file():
            shutil.copyfile(root / name, into / name)
    # The full rubric (hidden criteria included) replaces nothing: the policy's folders hold exercises/ whole.


def _take_learner_files(root: Path, starters: Path, tree: GradedTree) -> None:
    target = tree.root / LEARNER_OWNED
    target.mkdir()
    if starters.is_dir():
        entries = _learner_entries(starters, tree)
        if tree.refusals:
            return
        cache_names = release_policy().cache_names
        for relative, mode in entries:
            if any(part in cache_names for part in relative.parts[:-1]) or relative.name in cache_names:
                continue
            if stat.S_ISLNK(mode):
                tree.skipped.append(f"{LEARNER_OWNED}/{relative.as_posix()} (a symlink)")
                continue
            reason = refusal_reason(relative)
            if reason:
                tree.refusals.append(reason)
                continue
            if stat.S_ISDIR(mode):
                continue
            wanted = relative.suffix == ".py" or (relative.parts[0] == "dags" and relative.suffix in DAG_DATA_SUFFIXES)
            if not stat.S_ISREG(mode) or not wanted:
                tree.skipped.append(f"{LEARNER_OWNED}/{relative.as_posix()} (only .py files are graded)")
                continue
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            if not _copy_bounded(starters / relative, target / relative, MAX_FILE_BYTES):
                (target / relative).unlink(missing_ok=True)
                tree.skipped.append(f"{LEARNER_OWNED}/{relative.as_posix()} "
                                    f"(larger than {MAX_FILE_BYTES // 1024 // 1024} MiB, or not a plain file)")
    # The workbook's own plumbing in starters/ (package marker, the todo helper) is restored if deleted.
    for name in ("__init__.py", "_todo.py"):
        shipped = root / LEARNER_OWNED / name
        if shipped.is_file() and not (target / name).exists():
            shutil.copyfile(shipped, target / name)
    (target / "dags").mkdir(exist_ok=True)


def name_problem(relative: str) -> str | None:
    """Why a path in starters/ cannot be graded by its name: every name reaches reports and imports as text."""
    try:
        relative.encode("utf-8")
    except UnicodeEncodeError:
        return "has a name that is not valid UTF-8"
    if any(unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp") for char in relative):
        return "has a control or invisible character in its name"
    if len(relative) > MAX_PATH_CHARS or any(len(part.encode()) > MAX_NAME_BYTES for part in relative.split("/")):
        return f"has a name longer than {MAX_NAME_BYTES} bytes or a path longer than {MAX_PATH_CHARS} characters"
    if relative.count("/") >= MAX_DEPTH:
        return f"is nested more than {MAX_DEPTH} folders deep"
    return None


def shown_name(relative: str) -> str:
    """A path of the submission as a report may show it: undecodable bytes and control characters escaped, cut."""
    text = os.fsencode(relative).decode("utf-8", "backslashreplace")
    text = "".join(char if unicodedata.category(char)[0] != "C" else f"\\u{ord(char):04x}" for char in text)
    return text if len(text) <= SHOWN_NAME_CHARS else text[: SHOWN_NAME_CHARS - 1] + "…"


def _learner_entries(starters: Path, tree: GradedTree) -> list[tuple[Path, int]]:
    """Every path below starters/ with its lstat mode, no link followed; a name no report or import can carry,
    two names one case-insensitive or normalising file system would merge, or too many files refuse it."""
    entries: list[tuple[Path, int]] = []
    seen: dict[str, str] = {}
    total = 0
    for folder, dirs, files in os.walk(starters, followlinks=False):
        here = Path(folder)
        dirs.sort()
        for name in sorted(dirs) + sorted(files):
            path = here / name
            relative = path.relative_to(starters).as_posix()
            problem = name_problem(relative)
            if problem:
                tree.refusals.append(f"{LEARNER_OWNED}/{shown_name(relative)} {problem}")
                dirs[:] = [d for d in dirs if d != name]
                continue
            key = unicodedata.normalize("NFKC", relative).casefold()
            if key in seen:
                tree.refusals.append(f"{LEARNER_OWNED}/{shown_name(relative)} and {LEARNER_OWNED}/"
                                     f"{shown_name(seen[key])} differ only by case or Unicode normalisation")
                continue
            seen[key] = relative
            try:
                info = path.lstat()
            except OSError:
                continue
            entries.append((Path(relative), info.st_mode))
            total += info.st_size if stat.S_ISREG(info.st_mode) else 0
            if len(entries) > MAX_FILES or total > MAX_TOTAL_BYTES:
                tree.refusals.append(f"{LEARNER_OWNED}/ holds more than {MAX_FILES} files or "
                                     f"{MAX_TOTAL_BYTES // 1024 // 1024} MiB")
                return entries
    return entries


def _copy_bounded(source: Path, destination: Path, limit: int) -> bool:
    """Copy a regular file of at most `limit` bytes, never through a link, never waiting on a FIFO."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as file, destination.open("wb") as out:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        copied = 0
        while chunk := file.read(1024 * 1024):
            copied += len(chunk)
            if copied > limit:
                return False
            out.write(chunk)
    return True


def _copy_db_template(root: Path, into: Path) -> None:
    """Copy (never link) the migrated metadata DB template, so the graded run cannot spoil the instructor's."""
    name = f"airflow-db-{version('apache-airflow')}"
    template = root / CACHE_FOLDER / name / "airflow.db"
    folder = into / CACHE_FOLDER / name
    folder.mkdir(parents=True)
    if template.is_file():
        shutil.copyfile(template, folder / "airflow.db")


def _make_readable(into: Path) -> None:
    """The sandboxed user is not the owner: everything readable, nothing writable (the sandbox's writable
    places are its own tmpfs folders)."""
    for folder, _dirs, files in os.walk(into):
        here = Path(folder)
        here.chmod(0o755)
        for name in files:
            (here / name).chmod(0o644)
    into.chmod(0o755)


def digest(root: Path) -> dict[str, str]:
    """sha256 of every file (and the target of every link) in the tree, by relative path."""
    hashes = {}
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = sorted(d for d in dirs if not (here == root and d in UNHASHED))
        for name in sorted(files) + [d for d in dirs if (here / d).is_symlink()]:
            path = here / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                hashes[relative] = "link:" + os.readlink(path)
            else:
                hashes[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What differs between two digests, one line per file."""
    lines = [f"changed: {p}" for p in sorted(before) if p in after and after[p] != before[p]]
    lines += [f"removed: {p}" for p in sorted(set(before) - set(after))]
    lines += [f"added: {p}" for p in sorted(set(after) - set(before))]
    return lines
