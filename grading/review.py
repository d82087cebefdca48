"""Review flags: what in a submission's starters an instructor should read before trusting the grade.

Flags, not verdicts: an exercise may have a good reason to use `inspect` or `subprocess`. Each flag names
the file and line; results.json carries the short form ("review: imports subprocess").
"""

from __future__ import annotations

import ast
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


@dataclass(frozen=True)
class Flag:
    what: str  # "imports subprocess"
    where: str  # "starters/custom_sensors.py:12"

    @property
    def short(self) -> str:
        return f"review: {self.what}"


def scan(starters: Path) -> list[Flag]:
    flags = []
    for path in sorted(starters.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        relative = f"starters/{path.relative_to(starters).as_posix()}"
        text = path.read_text(encoding="utf-8", errors="replace")
        flags += _scan_source(text, relative)
    return flags


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
