"""Is a learner release consistent as shipped? Everything it names must be in it.

- No shipped file imports (or loads as a plugin, or names as a module path) a module only the instructor
  repo has: the learner's commands would fail on it, and it would name the judge's machinery.
- Every Makefile target dry-runs (`make -n`) and runs nothing from a folder the release does not have.
- Every `make TARGET` the Markdown, notebooks and Makefile mention exists.
- Every relative link of the Markdown and notebooks (anchors included) resolves, and no text points at a
  folder the release does not have (`solutions/`, `benchmarks/`).
- No hidden criterion's hint is anywhere in it (the hint says what the hidden test checks).
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

from grading.core.rubric import load
from grading.release.policy import release_policy

# Besides the policy's cache names: folders of tools that are no part of either repo.
TOOL_FOLDERS = {".git", "build", "node_modules"}
DOTTED = re.compile(r"(?<![\w.])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)")
MAKE_TARGET = re.compile(r"^([A-Za-z][\w-]*):(?!=)", re.M)
MAKE_MENTION = re.compile(r"`make ([a-z][\w-]*)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)|(?:src|href)=\"([^\"]+)\"")
FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.S | re.M)
CODE_SPAN = re.compile(r"`[^`\n]*`")
SCHEME = re.compile(r"^[A-Za-z][\w+.-]*:")
MIN_HINT = 20


def problems(release: Path, root: Path) -> list[str]:
    """What in `release` (built from the instructor repo `root`) names something the release lacks."""
    absent = absent_folders(release, root)
    found = module_problems(release, instructor_only_modules(release, root))
    found += makefile_problems(release, absent)
    found += document_problems(release, absent)
    found += hint_problems(release, root)
    return found


def absent_folders(release: Path, root: Path) -> set[str]:
    """Top-level folders of the instructor repo the release does not have (what learners cannot open)."""
    ignored = set()
    gitignore = root / ".gitignore"
    if gitignore.is_file():
        ignored = {line.strip().strip("/") for line in gitignore.read_text(encoding="utf-8").splitlines()
                   if line.strip() and not line.startswith("#") and "*" not in line}
    skipped = _skipped_folders() | ignored
    return {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
            and p.name not in skipped and not p.name.endswith(".egg-info")
            and not (release / p.name).exists()}


def instructor_only_modules(release: Path, root: Path) -> set[str]:
    """Dotted names of the instructor repo's modules and packages that the release does not ship."""
    names = set()
    skipped = _skipped_folders()
    for folder, children, files in os.walk(root):
        children[:] = [c for c in children if c not in skipped and not c.startswith(".")
                       and not c.endswith(".egg-info")]
        here = Path(folder).relative_to(root)
        if here.parts and not (release / here).exists() and any(f.endswith(".py") for f in files):
            names.add(".".join(here.parts))
        for name in files:
            if name.endswith(".py") and not (release / here / name).exists():
                parts = [*here.parts, name[:-3]]
                names.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def module_problems(release: Path, instructor_only: set[str]) -> list[str]:
    found = []
    for path in _files(release):
        relative = path.relative_to(release).as_posix()
        named: list[tuple[int, str]] = []
        if path.suffix == ".py":
            named = python_names(path.read_text(encoding="utf-8", errors="replace"))
        elif path.suffix == ".ipynb":
            named = [(0, name) for source in _cells(path, "code") for _, name in python_names(_no_magics(source))]
        elif path.name == "Makefile":
            named = [(number, match[1]) for number, line in enumerate(_lines(path), start=1) if line.startswith("\t")
                     for match in re.finditer(r"(?:-m|-p)\s+([\w.]+)", line)]
        elif path.suffix == ".toml":
            named = [(0, match[1]) for text in _strings(tomllib.loads(path.read_text(encoding="utf-8")))
                     for match in DOTTED.finditer(text)]
        for line, name in named:
            module = _instructor_module(name, instructor_only)
            if module:
                where = f"{relative}:{line}" if line else relative
                found.append(f"{where} names {name}, a module only the instructor repo has ({module})")
    return found


def python_names(source: str) -> list[tuple[int, str]]:
    """Modules a Python source imports or names in a string (`import_module("x.y")`, `-p x.y`); docstrings
    and comments are prose, not names."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [(node.lineno, node.module)] + [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            names += [(node.lineno, match[1]) for match in DOTTED.finditer(node.value)]
    return names


def _instructor_module(name: str, instructor_only: set[str]) -> str | None:
    parts = name.split(".")
    return next((".".join(parts[:n]) for n in range(1, len(parts) + 1) if ".".join(parts[:n]) in instructor_only),
                None)


def makefile_problems(release: Path, absent: set[str]) -> list[str]:
    makefile = release / "Makefile"
    if not makefile.is_file():
        return []
    text = makefile.read_text(encoding="utf-8")
    targets = sorted(set(MAKE_TARGET.findall(text)))
    found = []
    for target in targets:
        done = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=release, capture_output=True,
                              text=True, check=False, timeout=60)
        if done.returncode != 0:
            why = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            found.append(f"Makefile: `make -n {target}` fails: {why}")
            continue
        for word in _words(done.stdout):
            path = word.rsplit("=", 1)[-1]
            top = path.split("/", 1)[0]
            if "/" not in path or path.startswith("/") or top in (".", "..") or any(c in path for c in "*$?[{"):
                continue
            if top in absent:
                found.append(f"Makefile: `make {target}` runs {path}, and the release has no {top}/")
            elif (release / top).exists() and not (release / path).exists():
                found.append(f"Makefile: `make {target}` uses {path}, which the release does not have")
    mentioned = {(path.relative_to(release).as_posix(), m) for path in _files(release)
                 if path.suffix in (".md", ".ipynb") or path.name == "Makefile"
                 for m in MAKE_MENTION.findall(_text(path))}
    found += [f"{where}: mentions `make {target}`, which the release's Makefile does not have"
              for where, target in sorted(mentioned) if target not in targets]
    return found


def document_problems(release: Path, absent: set[str]) -> list[str]:
    """Relative links that do not resolve, and text that points at a folder the release does not have."""
    found = []
    pointer = re.compile(rf"(?<![\w./-])({'|'.join(map(re.escape, sorted(absent)))})/") if absent else None
    for path in _files(release):
        if path.suffix == ".md":
            texts = [path.read_text(encoding="utf-8")]
        elif path.suffix == ".ipynb":
            texts = _cells(path, "markdown")
        else:
            continue
        relative = path.relative_to(release).as_posix()
        for text in texts:
            if pointer:
                found += [f"{relative}: points at {m[0]}..., which the release does not have"
                          for m in pointer.finditer(text)]
            prose = CODE_SPAN.sub("", FENCE.sub("", text))
            for match in LINK.finditer(prose):
                problem = _link_problem(release, path, match[1] or match[2])
                if problem:
                    found.append(f"{relative}: link {match[1] or match[2]}: {problem}")
    return found


def _link_problem(release: Path, page: Path, link: str) -> str | None:
    if SCHEME.match(link) or link.startswith("//"):
        return None
    target, _, anchor = link.partition("#")
    resolved = (page.parent / target).resolve() if target else page
    if not resolved.is_relative_to(release.resolve()):
        return "points outside the release"
    if not resolved.exists():
        return "no such file in the release"
    if anchor and resolved.suffix == ".md" and anchor not in heading_anchors(resolved.read_text(encoding="utf-8")):
        return f"{resolved.name} has no heading #{anchor}"
    return None


def heading_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (lower case, punctuation dropped, spaces to -),
    and its explicit `<a id="...">` anchors."""
    anchors = set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", markdown))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", markdown), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", "")).replace(" ", "-")
        anchor, n = slug, 1
        while anchor in anchors:
            anchor, n = f"{slug}-{n}", n + 1
        anchors.add(anchor)
    return anchors


def hint_problems(release: Path, root: Path) -> list[str]:
    hints = {c.id: " ".join(c.hint.split()) for c in load(root).criteria.values()
             if c.hidden and len(c.hint.strip()) >= MIN_HINT}
    found = []
    for path in _files(release):
        text = " ".join(_text(path).split())
        found += [f"{path.relative_to(release).as_posix()}: has the hint of hidden criterion {criterion}"
                  for criterion, hint in hints.items() if hint in text]
    return found


def _skipped_folders() -> set[str]:
    return set(release_policy().cache_names) | TOOL_FOLDERS


def _files(release: Path) -> list[Path]:
    return sorted(p for p in release.rglob("*") if p.is_file() and ".git" not in p.relative_to(release).parts)


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return ""


def _lines(path: Path) -> list[str]:
    return _text(path).splitlines()


def _cells(notebook: Path, kind: str) -> list[str]:
    try:
        cells = json.loads(_text(notebook)).get("cells", [])
    except (ValueError, AttributeError):
        return []
    return ["".join(c.get("source", "")) if isinstance(c.get("source"), list) else str(c.get("source", ""))
            for c in cells if c.get("cell_type") == kind]


def _no_magics(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _words(commands: str) -> list[str]:
    words = []
    for line in commands.splitlines():
        try:
            words += shlex.split(line)
        except ValueError:
            words += line.split()
    return [w.rstrip(";,") for w in words]
