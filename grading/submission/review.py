"""Review flags: what in a submission's starters an instructor should read before trusting the grade.

Flags, not verdicts: an exercise may have a good reason to use `inspect` or `subprocess`. Each flag names
the file and line; results.json carries the short form ("review: imports subprocess").

Each file is parsed in a child process with a memory, CPU and time limit: a source built to exhaust the
parser (a deeply nested expression, a gigantic literal) ends that child, not the grader, and refuses the
submission with the reason (`Flag.refuses`).
"""

from __future__ import annotations

import ast
import json
import resource
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Modules a starter has no business importing unless it is reaching into the grader or the interpreter.
FLAGGED_MODULES = ("_pytest", "pytest", "grading", "solutions", "tests", "ctypes", "gc", "inspect",
                   "importlib", "subprocess", "multiprocessing", "pty", "signal", "builtins")
FLAGGED_CALLS = {("os", "fork"): "calls os.fork", ("os", "forkpty"): "calls os.forkpty",
                 ("os", "_exit"): "calls os._exit", ("os", "kill"): "calls os.kill",
                 ("os", "killpg"): "calls os.killpg", ("os", "system"): "calls os.system",
                 ("os", "execv"): "calls os.execv", ("os", "execve"): "calls os.execve",
                 ("os", "popen"): "calls os.popen", ("os", "setsid"): "calls os.setsid",
                 ("sys", "modules"): "uses sys.modules", ("sys", "settrace"): "calls sys.settrace",
                 ("sys", "setprofile"): "calls sys.setprofile", ("sys", "_getframe"): "calls sys._getframe",
                 ("sys", "meta_path"): "changes sys.meta_path", ("sys", "path_hooks"): "changes sys.path_hooks"}
FLAGGED_BUILTINS = {"exec": "calls exec", "eval": "calls eval", "compile": "calls compile",
                    "__import__": "calls __import__", "globals": "calls globals"}
FLAGGED_TEXT = {"/proc": "mentions /proc", "/dev/fd": "mentions /dev/fd"}


PARSE_MEMORY_BYTES = 1024**3
PARSE_CPU_SECONDS = 30
PARSE_WALL_SECONDS = 120  # a loaded machine: CPU time is what the limit is about


@dataclass(frozen=True)
class Flag:
    what: str  # "imports subprocess"
    where: str  # "starters/custom_sensors.py:12"
    refuses: bool = False  # the file could not be reviewed at all: the submission is not graded

    @property
    def short(self) -> str:
        return f"review: {self.what}"


def scan(starters: Path) -> list[Flag]:
    flags = []
    for path in sorted(starters.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        relative = f"starters/{path.relative_to(starters).as_posix()}"
        flags += scan_file(path, relative)
    return flags


def refusals(flags: list[Flag]) -> list[str]:
    """The reasons a submission cannot be graded, from flags that refuse it."""
    return [f"{flag.where} {flag.what}" for flag in flags if flag.refuses]


def scan_file(path: Path, relative: str) -> list[Flag]:
    """The flags of one file, found by a child process under limits; its failure is a refusing flag."""
    command = [sys.executable, "-I", "-S", "-c",
               "import sys; sys.path.insert(0, sys.argv[1]); from grading.submission.review import _child; _child(sys.argv[2])",
               str(Path(__file__).resolve().parents[2]), relative]
    try:
        with path.open("rb") as source:
            done = subprocess.run(command, stdin=source, capture_output=True, check=False,
                                  timeout=PARSE_WALL_SECONDS, preexec_fn=_parse_limits)
    except subprocess.TimeoutExpired:
        return [Flag(f"could not be reviewed: parsing it took longer than {PARSE_WALL_SECONDS} s", relative,
                     refuses=True)]
    except OSError as error:
        return [Flag(f"could not be reviewed: {error.strerror}", relative, refuses=True)]
    if done.returncode != 0:
        why = done.stderr.decode("utf-8", "replace").strip().splitlines()
        if done.returncode < 0 or not why:  # a signal: the CPU limit, a crash, memory the allocator could not get
            return [Flag(f"could not be reviewed: the parser was ended (exit {done.returncode}: out of memory or "
                         "time, or it crashed)", relative, refuses=True)]
        return [Flag(f"could not be reviewed: {why[-1][:200]}", relative, refuses=True)]
    try:
        return [Flag(**item) for item in json.loads(done.stdout)]
    except (ValueError, TypeError):
        return [Flag("could not be reviewed: the parser's answer was unreadable", relative, refuses=True)]


def _parse_limits() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (PARSE_MEMORY_BYTES, PARSE_MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (PARSE_CPU_SECONDS, PARSE_CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _child(relative: str) -> None:
    """In the child: the source on stdin, the flags as JSON on stdout; a parser that gives up exits 1 with why."""
    text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    try:
        flags = _scan_source(text, relative)
    except RecursionError:
        sys.exit("RecursionError: the source is nested too deeply to parse")
    except MemoryError:
        sys.exit("MemoryError: parsing the source ran out of memory")
    json.dump([{"what": f.what, "where": f.where} for f in flags], sys.stdout)


def _scan_source(text: str, relative: str) -> list[Flag]:
    flags = []
    for needle, what in FLAGGED_TEXT.items():
        for number, line in enumerate(text.splitlines(), start=1):
            if needle in line:
                flags.append(Flag(what, f"{relative}:{number}"))
                break
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        return [*flags, Flag("does not parse", f"{relative}:{error.lineno or 0}")]
    for node in ast.walk(tree):
        line = f"{relative}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            flags += [Flag(f"imports {_top(a.name)}", line) for a in node.names if _top(a.name) in FLAGGED_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if _top(node.module) in FLAGGED_MODULES:
                flags.append(Flag(f"imports {_top(node.module)}", line))
            if node.module in {"os", "sys"}:
                flags += [Flag(FLAGGED_CALLS[(node.module, a.name)], line) for a in node.names
                          if (node.module, a.name) in FLAGGED_CALLS]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            what = FLAGGED_CALLS.get((node.value.id, node.attr))
            if what:
                flags.append(Flag(what, line))
        elif isinstance(node, ast.Name) and node.id in FLAGGED_BUILTINS:
            flags.append(Flag(FLAGGED_BUILTINS[node.id], line))
    unique: dict[tuple[str, str], Flag] = {}
    for flag in flags:
        unique.setdefault((flag.what, flag.where.rsplit(":", 1)[0]), flag)
    return list(unique.values())


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def short_flags(flags: list[Flag]) -> list[str]:
    return sorted({f.short for f in flags})
