"""The release policy (policy.toml next to this module): what the learner release ships and what stays with the
instructor. Read once, checked whole: a key missing, misspelt or of the wrong type is one line of error naming
it, before anything is copied.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from grading.core.errors import GradingError

POLICY_PATH = Path(__file__).with_name("policy.toml")


@dataclass(frozen=True)
class ReleasePolicy:
    cache_names: frozenset[str]
    folders: tuple[str, ...]
    files: tuple[str, ...]
    workflow_source: str
    workflow_target: str
    instructor_only_grading: frozenset[str]  # packages of grading/
    hidden_tests: str  # file name
    machinery_tests: str  # folder
    grading_tests_prefix: str
    fixture_workbook_tests: frozenset[str]
    instructor_only_tests: frozenset[str]
    dropped_make_targets: frozenset[str]
    author: tuple[str, str]  # name, email
    message: str

    def is_hidden_test(self, relative: Path) -> bool:
        return relative.name == self.hidden_tests

    def is_machinery_test(self, relative: Path) -> bool:
        """In the workbook's own tests (of its machinery, not of the exercises)."""
        machinery = PurePosixPath(self.machinery_tests).parts
        return relative.parts[:len(machinery)] == machinery

    def is_instructor_only_test(self, relative: Path) -> bool:
        """A test of the workbook's machinery that needs solutions/, the fixture workbook or instructor-only
        grading (or a folder of alternatives and mistakes, which are solutions too)."""
        if not self.is_machinery_test(relative):
            return False
        inside = relative.parts[len(PurePosixPath(self.machinery_tests).parts):]
        excluded = self.fixture_workbook_tests | self.instructor_only_tests
        return relative.name.startswith(self.grading_tests_prefix) or any(part in excluded for part in inside)

    def is_excluded_test(self, relative: Path) -> bool:
        """Hidden tests, and the workbook's own tests that need solutions/ or instructor-only grading."""
        return self.is_hidden_test(relative) or self.is_instructor_only_test(relative)


@functools.cache
def release_policy() -> ReleasePolicy:
    """The policy of this installation (read on first use, so a broken policy fails the command using it)."""
    return load_policy(POLICY_PATH)


def load_policy(path: Path) -> ReleasePolicy:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise GradingError(f"release policy {path}: cannot be read ({error.strerror or error})") from None
    except tomllib.TOMLDecodeError as error:
        raise GradingError(f"release policy {path}: not valid TOML ({error})") from None
    read = _Reader(path, data)
    policy = ReleasePolicy(
        cache_names=frozenset(read.names("cache_names")),
        folders=read.paths("ship.folders"),
        files=read.paths("ship.files"),
        workflow_source=read.path("ship.workflow.source"),
        workflow_target=read.path("ship.workflow.target"),
        instructor_only_grading=frozenset(read.names("grading.instructor_only")),
        hidden_tests=read.name("tests.hidden"),
        machinery_tests=read.path("tests.machinery"),
        grading_tests_prefix=read.name("tests.grading_prefix"),
        fixture_workbook_tests=frozenset(read.names("tests.fixture_workbook")),
        instructor_only_tests=frozenset(read.names("tests.instructor_only")),
        dropped_make_targets=frozenset(read.names("makefile.dropped_targets")),
        author=(read.text("repository.author_name"), read.text("repository.author_email")),
        message=read.text("repository.message"),
    )
    read.no_other_keys()
    return policy


class _Reader:
    """Takes each key of the policy by its dotted name, checking its type; what is left over is a typo."""

    def __init__(self, path: Path, data: dict) -> None:
        self.source, self.data, self.taken = path, data, set()

    def _value(self, key: str) -> object:
        value: object = self.data
        for part in key.split("."):
            if not isinstance(value, dict) or part not in value:
                raise self._error(key, "is missing")
            value = value[part]
        self.taken.add(key)
        return value

    def _error(self, key: str, problem: str) -> GradingError:
        return GradingError(f"release policy {self.source}: {key} {problem}")

    def _one(self, key: str, check: Callable[[object], str | None]) -> str:
        value = self._value(key)
        problem = check(value)
        if problem:
            raise self._error(key, problem)
        return str(value)

    def _many(self, key: str, check: Callable[[object], str | None]) -> tuple[str, ...]:
        value = self._value(key)
        if not isinstance(value, list):
            raise self._error(key, f"must be a list of strings, not {value!r}")
        for index, item in enumerate(value):
            problem = check(item)
            if problem:
                raise self._error(f"{key}[{index}]", problem)
        return tuple(value)

    def text(self, key: str) -> str:
        return self._one(key, _text_problem)

    def name(self, key: str) -> str:
        return self._one(key, _name_problem)

    def path(self, key: str) -> str:
        return self._one(key, _path_problem)

    def names(self, key: str) -> tuple[str, ...]:
        return self._many(key, _name_problem)

    def paths(self, key: str) -> tuple[str, ...]:
        return self._many(key, _path_problem)

    def no_other_keys(self) -> None:
        unknown = sorted(set(_leaf_keys(self.data)) - self.taken)
        if unknown:
            raise self._error(unknown[0], "is not a key of the release policy (misspelt?)")


def _text_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"must be a non-empty string, not {value!r}"
    return None


def _name_problem(value: object) -> str | None:
    """A file or folder name: no path in it."""
    if _text_problem(value):
        return _text_problem(value)
    if "/" in str(value) or value in (".", ".."):
        return f"must be a single name, not the path {value!r}"
    return None


def _path_problem(value: object) -> str | None:
    """A path inside the repository (relative, never climbing out of it)."""
    if _text_problem(value):
        return _text_problem(value)
    if str(value).startswith("/") or ".." in PurePosixPath(str(value)).parts:
        return f"must be a path inside the repository, not {value!r}"
    return None


def _leaf_keys(table: dict, prefix: str = "") -> list[str]:
    keys = []
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        keys += _leaf_keys(value, f"{dotted}.") if isinstance(value, dict) else [dotted]
    return keys
