"""The graded tests as the grader knows them from its own files, and a record held to them.

A record's node ids, paths and criteria are claims of the test process. Before a name from it can reach a
learner-visible file it must be one the grader has: a test file of an exercise in the graded tree, a test
function defined in it (read from the grader's own source), criteria of that exercise only. The part of a
parametrized id in brackets is shown only when it is made of literals of that test file or of its exercise's
conftest, where parametrized fixtures live (how pytest builds it); otherwise the test still counts but is shown
as `name[…]`. With the grader's own collection (`Inventory.nodeids`) the names must match it exactly.

A name the grader does not have is a violation: the verdict is then `tampered`, and nothing of the record
reaches the learner's files.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from grading.core.rubric import Exercise
from grading.scoring.run import Run

HIDDEN_PREFIX = "test_hidden"
UNVERIFIED_PARAMETERS = "[…]"
MAX_SHOWN_PARAMETERS = 100
NODE = re.compile(r"(?P<path>[^:\[]+)::(?P<function>(?:[A-Za-z_]\w*::)?[A-Za-z_]\w*)(?P<parameters>\[.*\])?")


@dataclass
class Inventory:
    files: dict[str, str] = field(default_factory=dict)  # test file -> its exercise's id
    folders: dict[str, str] = field(default_factory=dict)  # test folder -> its exercise's id
    functions: dict[str, frozenset[str]] = field(default_factory=dict)  # test file -> its test functions
    literals: dict[str, frozenset[str]] = field(default_factory=dict)  # test file -> what its ids can be made of
    folder_items: dict[str, str] = field(default_factory=dict)  # "folder::module_imports" -> exercise id
    criteria: dict[str, frozenset[str]] = field(default_factory=dict)  # exercise id -> its criteria
    nodeids: frozenset[str] | None = None  # the grader's own collection, when there is one

    @classmethod
    def of_tree(cls, tree: Path, exercises: list[Exercise], nodeids: frozenset[str] | None = None) -> Inventory:
        inventory = cls(nodeids=nodeids)
        for exercise in exercises:
            folder = exercise.test_folder.rstrip("/")
            inventory.folders[folder] = exercise.id
            inventory.folder_items[f"{folder}::{exercise.module}_imports"] = exercise.id
            inventory.criteria[exercise.id] = frozenset(c.id for c in exercise.criteria)
            if not (tree / folder).is_dir():
                continue
            # A parametrized fixture's ids come from its conftest (the grader's own: a submission's is refused).
            fixture_literals = frozenset().union(*(_defined(conftest)[1] for conftest in (
                tree / "tests" / "conftest.py", tree / folder / "conftest.py") if conftest.is_file()))
            for path in sorted((tree / folder).rglob("test_*.py")):
                relative = path.relative_to(tree).as_posix()
                inventory.files[relative] = exercise.id
                functions, literals = _defined(path)
                inventory.functions[relative], inventory.literals[relative] = functions, literals | fixture_literals
        return inventory

    def exercise_of(self, nodeid: str) -> str | None:
        """The exercise of a test the grader has, or None."""
        if nodeid in self.folder_items:
            return self.folder_items[nodeid]
        if self.nodeids is not None and nodeid not in self.nodeids:
            return None
        match = NODE.fullmatch(nodeid)
        if not match or match["path"] not in self.files or match["function"] not in self.functions[match["path"]]:
            return None
        return self.files[match["path"]]

    def shown(self, nodeid: str) -> str:
        """How a known test is named in a report: its parameters only when the grader can vouch for them."""
        match = NODE.fullmatch(nodeid)
        if match is None or not match["parameters"] or self.nodeids is not None:
            return nodeid
        inner = match["parameters"][1:-1]
        if not inner or (len(inner) <= MAX_SHOWN_PARAMETERS
                         and _made_of(inner, self.literals.get(match["path"], frozenset()))):
            return nodeid
        return f"{match['path']}::{match['function']}{UNVERIFIED_PARAMETERS}"

    def knows_path(self, path: str) -> bool:
        return path in self.files or path.rstrip("/") in self.folders or path in ("", "tests")


def is_hidden_path(path: str) -> bool:
    return Path(path.split("::", 1)[0]).name.startswith(HIDDEN_PREFIX)


def confine(run: Run, inventory: Inventory) -> list[str]:
    """Hold `run` (read from a record) to what the grader has: tests it does not have are dropped, paths and
    criteria are the grader's, shown names are vouched for. Returns one violation per claim it had to drop."""
    violations = []
    for nodeid in list(run.tests):
        test = run.tests[nodeid]
        exercise = inventory.exercise_of(nodeid)
        if exercise is None:
            violations.append(f"the record names a test the grader does not have: {ascii(nodeid)[:120]}")
            del run.tests[nodeid]
            continue
        known = inventory.criteria.get(exercise, frozenset())
        foreign = [c for c in test.criteria if c not in known]
        if foreign:
            violations.append(f"the record gives {nodeid} criteria of another exercise or none: "
                              f"{ascii(foreign)[:120]}")
        test.criteria = [c for c in test.criteria if c in known]
        test.path = nodeid.split("::", 1)[0]
        test.nodeid = inventory.shown(nodeid)
        test.hidden = is_hidden_path(nodeid)
    for path in list(run.collection_errors):
        if not inventory.knows_path(path):
            violations.append(f"the record names a test file the grader does not have: {ascii(path)[:120]}")
            del run.collection_errors[path]
    renamed = sorted(((nodeid, test.nodeid) for nodeid, test in run.tests.items() if nodeid != test.nodeid),
                     key=lambda pair: len(pair[0]), reverse=True)
    for number, note in enumerate(run.notes):
        for raw, shown in renamed:
            note = note.replace(raw, shown)
        run.notes[number] = note
    return violations


def _defined(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    """The test functions a file of the grader's defines, and the literals and names its parameter ids can be
    built from."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return frozenset(), frozenset()
    functions = {node.name for node in tree.body
                 if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")}
    functions |= {f"{node.name}::{method.name}" for node in tree.body
                  if isinstance(node, ast.ClassDef) and node.name.startswith("Test") for method in node.body
                  if isinstance(method, ast.FunctionDef | ast.AsyncFunctionDef) and method.name.startswith("test")}
    literals: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes | int | float | bool | type(None)):
            value = node.value
            literals.add(str(value) if not isinstance(value, bytes) else value.decode("ascii", "backslashreplace"))
            if isinstance(value, str):
                literals.add(value.encode("unicode_escape").decode("ascii"))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            literals.add(f"-{node.operand.value}")  # pytest shows -5 as "-5"
        elif isinstance(node, ast.Name):
            literals.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            literals.add(node.name)
    literals.discard("")
    return frozenset(functions), frozenset(literals)


def _made_of(parameters: str, literals: frozenset[str]) -> bool:
    """Whether a parameter id is literals of the file joined by "-" (each may carry pytest's index suffix)."""
    def piece_ok(piece: str) -> bool:
        if piece in literals:
            return True
        stem = piece.rstrip("0123456789")
        return stem != piece and stem in literals

    reachable, ends = {0}, [i for i, char in enumerate(parameters) if char == "-"] + [len(parameters)]
    for start in sorted(range(len(parameters) + 1)):
        if start not in reachable:
            continue
        for end in (e for e in ends if e >= start):
            if piece_ok(parameters[start:end]):
                if end == len(parameters):
                    return True
                reachable.add(end + 1)
    return False
