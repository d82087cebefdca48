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
        """Import an exercise module of this side, e.g. `module("custom_sensors")`.

        In a graded run (`WORKBOOK_SUBJECT=remote`) the module is imported by the subject process, never here:
        what comes back is a reference to it (tests.harness.remote)."""
        from tests.harness import remote

        if remote.enabled():
            return remote.RemoteModule(f"{self.package}.{name}")  # type: ignore[return-value]
        return importlib.import_module(f"{self.package}.{name}")


def resolve(option: str | None, environ: dict[str, str] | os._Environ = os.environ) -> Target:
    value = option or environ.get(ENV_VAR) or DEFAULT
    return Target(value.strip().lower())


def current_target() -> Target:
    """The target of this test session (the conftest exports it, so subprocesses agree)."""
    return resolve(None)


def import_error(module: str) -> str | None:
    """`starters/custom_sensors.py:80: SyntaxError: '(' was never closed`, or None when the module imports."""
    import sys
    import traceback

    target = current_target()
    try:
        importlib.import_module(f"{target.package}.{module}")
    except SyntaxError as error:
        where = _relative(Path(error.filename)) if error.filename else f"{target.package}/{module}.py"
        return f"{where}:{error.lineno}: {type(error).__name__}: {error.msg}"
    except Exception as error:  # the learner's module raised while importing: name its own line
        sys.modules.pop(f"{target.package}.{module}", None)
        frames = [f for f in traceback.extract_tb(error.__traceback__) if _inside(Path(f.filename), target.folder)]
        where = f"{_relative(Path(frames[-1].filename))}:{frames[-1].lineno}" if frames \
            else f"{target.package}/{module}.py"
        text = str(error).strip().splitlines()
        return f"{where}: {type(error).__name__}: {text[0] if text else ''}".rstrip(": ")
    return None


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def _relative(path: Path) -> str:
    return path.resolve().relative_to(REPO_ROOT).as_posix() if _inside(path, REPO_ROOT) else str(path)
