"""Helpers of Exercise 4's tests."""

from __future__ import annotations

import json
from pathlib import Path


def json_files(folder: Path) -> list[Path]:
    """The files under `folder` holding JSON (a state file, whatever its name; not a lock or temp file)."""
    found = []
    for path in sorted(folder.rglob("*")) if folder.exists() else []:
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        found.append(path)
    return found
