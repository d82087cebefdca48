"""A compiled module next to the mini.py a reviewer reads: Python would import the .so first."""

import sysconfig
from pathlib import Path


def prepare(learner: Path, workbook: Path) -> None:
    suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
    (learner / "starters" / f"mini{suffix}").write_bytes(b"\x7fELF" + bytes(60))
