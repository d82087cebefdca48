"""Atomic writes: a reader sees the old file or the new one, never half of either.

Not fixtures.atomic: `workbook` is installed as the `grading` package alone and runs from any folder (an
instructor's CI job), where the repo's fixtures/ is not importable.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """`data` in `path`, written to a temporary file beside it and renamed; `mode` is set before the rename
    (mkstemp creates the file 0600, private to its owner until then)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str, *, mode: int = 0o644) -> None:
    write_bytes(path, text.encode("utf-8"), mode=mode)


def write_json(path: Path, data: Any, *, indent: int | None = 2, sort_keys: bool = True,
               mode: int = 0o644) -> None:
    write_text(path, json.dumps(data, indent=indent, sort_keys=sort_keys) + "\n", mode=mode)
