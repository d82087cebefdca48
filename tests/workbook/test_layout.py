"""grading/ keeps its shape: one declared boundary each way between the tool and the test harness (grading uses
only tests.harness.api; the harness, the suite's conftest and the exercises' tests use only grading.api), no
import cycle between grading's modules, and small modules.

Read from the source (every import, every dotted module name in a string, every Python snippet grading writes
into a test tree), so a forbidden import fails here even on a path no test runs.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
GRADING = REPO_ROOT / "grading"
TESTS = REPO_ROOT / "tests"
HARNESS_API = "tests.harness.api"
GRADING_API = "grading.api"
LINE_LIMIT = 300
# Modules allowed over LINE_LIMIT lines: path -> why it cannot be split by concern yet. An entry goes when
# its module is split.
ALLOWED_LONG: dict[str, str] = {}
# Dotted names grading spells without importing them: name -> why.
NAMED_NOT_IMPORTED = {
    "tests.workbook.grading_fixtures": "grading/release: a workbook test importing it is left out of the release",
}
DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")


def _relative(path: Path) -> str:
    return path.relative_to(REPO_ROOT).as_posix() if path.is_relative_to(REPO_ROOT) else str(path)


def _module_name(path: Path) -> str:
    parts = Path(_relative(path)).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, module: str, *, top_level_only: bool = False) -> Iterator[tuple[int, str]]:
    """(line, dotted name) for each name an import statement imports: `from a.b import c` gives a.b.c (c may be
    a module or a name of a.b); relative imports resolved against `module`."""
    nodes = _top_level(tree) if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level] if module else []
                base = ".".join([*package, *([base] if base else [])])
            for alias in node.names:
                yield node.lineno, base if alias.name == "*" else f"{base}.{alias.name}"


def _top_level(tree: ast.AST) -> Iterator[ast.AST]:
    """The statements run when the module is imported: its body, into if/try/with blocks, not into functions,
    classes or `if TYPE_CHECKING:`."""
    pending = list(getattr(tree, "body", []))
    while pending:
        node = pending.pop(0)
        yield node
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
        elif isinstance(node, ast.If | ast.With | ast.Try):
            for field in ("body", "orelse", "finalbody", "handlers"):
                pending.extend(getattr(node, field, []))
        elif isinstance(node, ast.ExceptHandler):
            pending.extend(node.body)


def _is_module(dotted: str) -> bool:
    """`tests.harness.remote` names a module of this repo; `tests.hidden` (a key of a TOML table) does not."""
    path = REPO_ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or path.is_dir()


def _named_modules(path: Path) -> Iterator[tuple[int, str]]:
    """Every module `path` imports, names in a string (`importlib.import_module("x.y")`, `-p x.y`,
    `sys.modules.get("x.y")`: a string naming a module of this repo), or imports in a Python snippet held in a
    string (a test it writes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    module = _module_name(path)
    yield from _imports(tree, module)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        text = node.value
        if DOTTED_NAME.fullmatch(text) and _is_module(text):
            yield node.lineno, text
        elif "import " in text:
            try:
                snippet = ast.parse(text)
            except SyntaxError:
                continue
            for line, name in _imports(snippet, ""):
                yield node.lineno + line - 1, name


def _crossings(files: list[Path], other: str, allowed: str) -> list[str]:
    return sorted({f"{_relative(path)}:{line}: {name}"
                   for path in files for line, name in _named_modules(path)
                   if (name == other or name.startswith(f"{other}."))
                   and name != allowed and not name.startswith(f"{allowed}.")
                   and name not in NAMED_NOT_IMPORTED})


def _grading_files() -> list[Path]:
    return sorted(p for p in GRADING.rglob("*.py") if "__pycache__" not in p.parts)


def _suite_files() -> list[Path]:
    """The graded suite's own code: the harness, its conftest and the exercises' tests."""
    return sorted([*(TESTS / "harness").rglob("*.py"), TESTS / "conftest.py", *TESTS.glob("ex*/**/*.py")])


def test_grading_uses_only_the_harness_api_of_the_tests():
    assert (TESTS / "harness" / "api.py").is_file()
    crossings = _crossings(_grading_files(), "tests", HARNESS_API)
    assert not crossings, (f"grading may import from tests/ only {HARNESS_API} (add the name there):\n"
                           + "\n".join(crossings))


def test_the_suite_uses_only_the_grading_api():
    assert (GRADING / "api.py").is_file()
    crossings = _crossings(_suite_files(), "grading", GRADING_API)
    assert not crossings, (f"tests/harness, tests/conftest.py and tests/ex*/ may import from grading only "
                           f"{GRADING_API} (add the name there):\n" + "\n".join(crossings))


def test_each_api_names_only_what_exists():
    """A declared name that its module no longer has would fail only when a rare path first uses it."""
    import importlib

    for api in (GRADING_API, HARNESS_API):
        module = importlib.import_module(api)
        missing = [name for name in dir(module) if not _resolves(module, name)]
        assert not missing, f"{api} declares names its modules do not have: {missing}"


def _resolves(module, name: str) -> bool:
    try:
        getattr(module, name)
    except AttributeError:
        return False
    return True


def test_the_boundary_check_sees_every_kind_of_import(tmp_path):
    """The checks above read imports, module names in strings and snippets: each kind is caught."""
    sample = tmp_path / "sample.py"
    sample.write_text('import tests.harness.target\nfrom tests.harness import remote\n'
                      'from tests.harness import api\nWARM = ("tests.harness.wire",)\n'
                      'SNIPPET = """from tests.harness.dagrun import run_dag\n"""\nKEY = "tests.hidden"\n',
                      encoding="utf-8")
    names = {name for _, name in _named_modules(sample)}
    assert {"tests.harness.target", "tests.harness.remote", "tests.harness.wire",
            "tests.harness.dagrun.run_dag"} <= names, names
    assert "tests.hidden" not in names, "a dotted string naming no module is not an import"
    crossings = {entry.rsplit(": ", 1)[1] for entry in _crossings([sample], "tests", HARNESS_API)}
    assert "tests.harness.api" not in crossings and "tests.harness.remote" in crossings, crossings


def test_no_import_cycle_between_grading_modules():
    modules = {_module_name(path): path for path in _grading_files()}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = {target for _, imported in _imports(tree, name, top_level_only=True)
                       for target in _importing_runs(imported, modules) if target != name}
    cycle = _a_cycle(graph)
    assert cycle is None, "grading's modules import each other at import time: " + " -> ".join(cycle or [])


def _importing_runs(imported: str, modules: dict[str, Path]) -> Iterator[str]:
    """The grading modules whose code an import runs: the module and the packages above it (`imported` may end
    in a name of the module rather than a module)."""
    parts = imported.split(".")
    for end in range(2, len(parts) + 1):  # `grading` itself (the top __init__) is empty and runs nothing
        name = ".".join(parts[:end])
        if name in modules:
            yield name


def _a_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for following in sorted(graph.get(node, ())):
            if state.get(following) == 1:
                return [*path[path.index(following):], following]
            if following not in state and (found := visit(following)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_check_finds_a_cycle():
    assert _a_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _a_cycle({"a": {"b"}, "b": set()}) is None


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_grading_modules_stay_small():
    long = {_relative(path): _line_count(path) for path in _grading_files() if _line_count(path) > LINE_LIMIT}
    unexplained = {path: lines for path, lines in long.items() if path not in ALLOWED_LONG}
    assert not unexplained, (f"modules over {LINE_LIMIT} lines (split them by concern): "
                             + ", ".join(f"{path} ({lines})" for path, lines in sorted(unexplained.items())))


def test_every_module_allowed_to_be_long_still_is():
    """An entry whose module was split goes: the allowance is not there for the next long module."""
    # A learner release has no instructor packages: an entry there is neither long nor stale.
    stale = [path for path in ALLOWED_LONG if (REPO_ROOT / path).parent.is_dir()
             and (not (REPO_ROOT / path).is_file() or _line_count(REPO_ROOT / path) <= LINE_LIMIT)]
    assert not stale, f"ALLOWED_LONG names modules no longer over {LINE_LIMIT} lines: {stale}"
