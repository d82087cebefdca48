"""Is this the workbook's Python? A run outside `.venv/` should say so in one line, not fail as broken code."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# What the graded suite imports first; any one missing means the wrong interpreter (or `make install` not run).
REQUIRED_MODULES = ("airflow.sdk", "aiohttp", "pytest", "pytest_asyncio", "pytest_timeout")


def missing_modules() -> list[str]:
    """Looked up without importing anything: find_spec("airflow.sdk") would import airflow, which reads its
    configuration once, before the suite has set AIRFLOW_HOME."""
    missing = []
    for name in REQUIRED_MODULES:
        top, _, sub = name.partition(".")
        try:
            spec = importlib.util.find_spec(top)
        except (ImportError, ValueError):
            spec = None
        found = spec is not None and (not sub or any(
            (Path(folder) / sub).is_dir() or (Path(folder) / f"{sub}.py").is_file()
            for folder in (spec.submodule_search_locations or ())))
        if not found:
            missing.append(name)
    return missing


def wrong_environment(use_instead: str) -> str | None:
    """One line naming the interpreter, what it lacks and the command to run instead; None when all is there."""
    missing = missing_modules()
    if not missing:
        return None
    return (f"{sys.executable} is not the workbook's Python (it has no {', '.join(missing)}): "
            f"run `make install` once, then `{use_instead}`")
