"""Taking a task's code from a solution into a starter: its top-level definitions spliced in with what they
need (the solution's helpers, constants and imports), and a solution DAG file turned into a starter one."""

from __future__ import annotations

import ast

DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


class SpliceError(ValueError):
    """A task's symbols cannot be taken from the solution into the starter."""


def _top_level(tree: ast.Module) -> dict[str, ast.stmt]:
    """Names bound by top-level definitions and assignments (not imports), to the statement binding them."""
    bound: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, DEFINITIONS):
            bound[node.name] = node
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                for name in ast.walk(target):
                    if isinstance(name, ast.Name):
                        bound[name.id] = node
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            bound[node.target.id] = node
    return bound


def _imports(tree: ast.Module) -> dict[str, ast.stmt]:
    """Names bound by top-level imports, to a one-name import statement binding just that name."""
    bound: dict[str, ast.stmt] = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound[(alias.asname or alias.name).split(".")[0]] = ast.Import(names=[alias])
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            for alias in node.names:
                bound[alias.asname or alias.name] = ast.ImportFrom(module=node.module, names=[alias],
                                                                   level=node.level)
    return bound


def _names_used(node: ast.AST) -> set[str]:
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    # String annotations (`from __future__ import annotations` keeps them unevaluated) name types too.
    for constant in ast.walk(node):
        if isinstance(constant, ast.Constant) and isinstance(constant.value, str) and constant.value.isidentifier():
            used.add(constant.value)
    return used


def _span(node: ast.stmt) -> tuple[int, int]:
    """The statement's lines (1-based, inclusive), decorators included."""
    first = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return first, node.end_lineno or node.lineno


def _source(lines: list[str], node: ast.stmt) -> str:
    first, last = _span(node)
    return "".join(lines[first - 1:last])


def splice(starter: str, solution: str, symbols: list[str], *, filename: str = "<starter>") -> str:
    """The starter's source with the top-level `symbols` replaced by the solution's definitions.

    What those definitions need and the starter lacks comes along: the solution's private helpers and
    constants (inserted before the first spliced definition) and its imports (after the starter's).
    """
    try:
        starter_tree, solution_tree = ast.parse(starter, filename), ast.parse(solution)
    except SyntaxError as error:
        raise SpliceError(f"{filename}: {error.msg} (line {error.lineno})") from None
    starter_defs, solution_defs = _top_level(starter_tree), _top_level(solution_tree)
    missing = [s for s in symbols if s not in starter_defs or s not in solution_defs]
    if missing:
        raise SpliceError(f"{filename}: {', '.join(missing)} not defined at the top level of both the starter "
                          "and the solution")
    starter_names = set(starter_defs) | set(_imports(starter_tree))
    solution_imports = _imports(solution_tree)

    # What the spliced definitions need, transitively, that the starter does not define itself.
    helpers: list[ast.stmt] = []
    imports: dict[str, ast.stmt] = {}
    pending = [solution_defs[s] for s in symbols]
    visited: set[int] = set()
    while pending:
        node = pending.pop()
        if id(node) in visited:
            continue
        visited.add(id(node))
        for name in _names_used(node):
            if name in starter_names or name in symbols:
                continue
            if name in solution_defs:
                helper = solution_defs[name]
                if helper not in helpers:
                    helpers.append(helper)
                pending.append(helper)
            elif name in solution_imports:
                imports[name] = solution_imports[name]
    solution_lines = solution.splitlines(keepends=True)
    helpers.sort(key=lambda node: node.lineno)  # the solution's order satisfies its own dependencies

    lines = starter.splitlines(keepends=True)
    replacements = {_span(starter_defs[s]): _source(solution_lines, solution_defs[s]) for s in symbols}
    first_spliced = min(first for first, _ in replacements)
    last_import = max((n.end_lineno for n in starter_tree.body if isinstance(n, (ast.Import, ast.ImportFrom))),
                      default=0)
    insertions = {}
    if imports:
        insertions[last_import] = "".join(ast.unparse(i) + "\n" for i in sorted(imports.values(), key=ast.unparse))
    if helpers:
        block = "".join(_source(solution_lines, h) + "\n\n" for h in helpers)
        insertions[first_spliced - 1] = insertions.get(first_spliced - 1, "") + "\n" + block

    out: list[str] = []
    skip_until = 0
    for number, line in enumerate(lines, start=1):
        if number <= skip_until:
            continue
        span = next((s for s in replacements if s[0] == number), None)
        if span is not None:
            out.append(replacements[span])
            skip_until = span[1]
        else:
            out.append(line)
        if number in insertions:
            out.append(insertions[number])
    if 0 in insertions:
        out.insert(0, insertions[0])
    return "".join(out)


def solution_dag(source: str) -> str:
    """A solution DAG file as a starter DAG file: it imports the starter's module, not the solution's."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "solutions":
            for number in range(node.lineno - 1, node.end_lineno):
                lines[number] = lines[number].replace("solutions.", "starters.")
    return "".join(lines)
