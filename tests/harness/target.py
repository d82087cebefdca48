"""Which side the suite grades: the learner's `starters/` or the reference `solutions/`.

`pytest --target=starter|solution`; without the option `WORKBOOK_TARGET`; with neither, `starter`.
Tests never import a side directly: they ask `current_target().module("custom_sensors")`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
ENV_VAR = "WORKBOOK_TARGET"
DEFAULT = "starter"
PACKAGES = {"starter": "starters", "solution": "solutions"}


class UnknownTarget(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    name: str

    def __post_init__(self) -> None:
        if self.name not in PACKAGES:
            raise UnknownTarget(
                f"unknown target {self.name!r}: choose one of {', '.join(sorted(PACKAGES))}"
            )

    @property
    def package(self) -> str:
        return PACKAGES[self.name]

    @property
    def folder(self) -> Path:
        return REPO_ROOT / self.package

    @property
    def dags_folder(self) -> Path:
        return self.folder / "dags"

    def module(self, name: str) -> ModuleType:
        """Import an exercise module of this side, e.g. `module("custom_sensors")`."""
        return importlib.import_module(f"{self.package}.{name}")


def resolve(option: str | None, environ: dict[str, str] | os._Environ = os.environ) -> Target:
    value = option or environ.get(ENV_VAR) or DEFAULT
    return Target(value.strip().lower())


def current_target() -> Target:
    """The target of this test session (the conftest exports it, so subprocesses agree)."""
    return resolve(None)
