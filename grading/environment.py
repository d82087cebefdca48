"""Is this the workbook's Python? A run outside `.venv/` should say so in one line, not fail as broken code."""

from __future__ import annotations

import importlib.util
import sys

# What the graded suite imports first; any one missing means the wrong interpreter (or `make install` not run).
REQUIRED_MODULES = ("airflow.sdk", "aiohttp", "pytest", "pytest_asyncio", "pytest_timeout")


def missing_modules() -> list[str]:
    missing = []
    for name in REQUIRED_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
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
