"""The running playground's control file: how `workbook steer` finds the playground `workbook airflow`
started in this workbook (its pid, UI, control server and token), and whether that playground still runs."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from grading.core.atomic import write_json

CONTROL_FILE = "control.json"
STEER_TOKEN_HEADER = "X-Playground-Token"


def state_dir(args: argparse.Namespace) -> Path:
    return (args.state_dir or args.root / ".cache" / "playground").resolve()


def read_control(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / CONTROL_FILE).read_text())
    except (OSError, ValueError):
        return None


def write_control(folder: Path, data: dict[str, Any]) -> None:
    write_json(folder / CONTROL_FILE, data, mode=0o600)  # the control token steers the simulators


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
