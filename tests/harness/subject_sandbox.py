"""The subject's own sandbox in a graded run: started by the judge, inside the judge's sandbox.

The judge runs in the grader's sandbox (grading.suite.sandbox: loopback-only network, read-only tree, private
/tmp). It starts the subject in a nested bubblewrap that shares only that loopback network (the judge's
simulators, and the channel) and:
- shares the judge's PID namespace (a nested one could not mount its own /proc, and Airflow's supervisors
  need a /proc that matches their PIDs), but cannot trace the judge or read its memory, environment or
  descriptors: the judge is non-dumpable and the subject holds no capability in the judge's user namespace.
  It can signal the judge (same uid): that ends the run early, which costs only the tests not run;
- sees no test file at all (public, hidden or planted: every `test_*.py` under tests/ reads as empty), and
  none of the grader's instructor-only modules or the rubric;
- sees none of the judge's /tmp but the folders the tests share with the code under test: the session's
  AIRFLOW_HOME and pytest's temporary folders;
- inherits none of the judge's descriptors but its end of the channel.

The judge makes itself non-dumpable first: a process of the same uid in a child user namespace then cannot
read its memory or descriptors through /proc.
"""

from __future__ import annotations

import ctypes
import os
import resource
import sys
from pathlib import Path

from grading.api import SUBJECT_BWRAP_VAR as BWRAP_VAR  # set by the grader: start the subject in it

PR_SET_DUMPABLE = 4
# The grader's instructor-side packages (a graded tree has none: this holds if one ever ships) and the full rubric.
HIDDEN_GRADER_FOLDERS = ("grading/submission", "grading/classroom", "grading/release", "grading/instrument",
                         "grading/dev")
HIDDEN_GRADER_FILES = ("exercises/rubric.toml",)


def wanted() -> str | None:
    return os.environ.get(BWRAP_VAR) or None


def protect_judge() -> None:
    """No core dumps, no /proc access from other processes of this uid (the subject's among them)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed: the judge cannot protect itself")


def command(bwrap: str, tree: Path, shared: list[Path]) -> list[str]:
    """The bwrap prefix that runs the subject (its Python command follows)."""
    args = [bwrap, "--unshare-user", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session", "--ro-bind", "/", "/", "--dev", "/dev",
            "--perms", "1777", "--tmpfs", "/dev/shm", "--perms", "1777", "--tmpfs", "/tmp"]
    # What lives in the judge's /tmp and the subject needs, back, read-only: the graded tree, and the Python
    # installation (a workbook checked out under /tmp has its venv there).
    for folder in sorted({tree, *python_installation()}):
        if folder.is_relative_to("/tmp") and folder.is_dir():
            args += ["--ro-bind", str(folder), str(folder)]
    for folder in shared:
        if folder.is_dir():
            args += ["--bind", str(folder), str(folder)]
    for path in hidden_files(tree):
        args += ["--ro-bind", "/dev/null", str(path)]
    for folder in hidden_folders(tree):
        args += ["--tmpfs", str(folder), "--remount-ro", str(folder)]
    return [*args, "--chdir", str(tree), "--"]


def python_installation() -> set[Path]:
    """The folders the subject's Python runs from: the venv and the interpreter it was made from."""
    return {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent.parent}


def hidden_files(tree: Path) -> list[Path]:
    """What the subject must not read: every test file (the subject runs none), the grader's own tools."""
    tests = sorted(p for p in (tree / "tests").rglob("test_*.py") if p.is_file() and not p.is_symlink())
    return tests + [tree / name for name in HIDDEN_GRADER_FILES if (tree / name).is_file()]


def hidden_folders(tree: Path) -> list[Path]:
    return [tree / name for name in HIDDEN_GRADER_FOLDERS if (tree / name).is_dir() and not (tree / name).is_symlink()]


def starter(config) -> object:
    """How the judge of this session starts its subject: `remote.Link` in the nested sandbox."""
    from tests.harness import remote

    bwrap = wanted()
    if not os.access(bwrap, os.X_OK):  # the grader's bwrap is not mounted in its sandbox: the one that is
        from grading.api import find_bwrap

        bwrap = str(find_bwrap())
    protect_judge()

    def start(root: Path) -> remote.Link:
        shared = [Path(os.environ["AIRFLOW_HOME"]), config._tmp_path_factory.getbasetemp()]
        return remote.Link(root, command=command(bwrap, root, shared), preexec=half_the_processes, sweep=True)

    return start


def half_the_processes() -> None:
    """The subject may have half the processes the judge may: RLIMIT_NPROC counts every process of the uid
    they share, so a fork bomb in the subject stops at half and the judge keeps room to fail its test."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if soft != resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NPROC, (max(soft // 2, 1), hard))
