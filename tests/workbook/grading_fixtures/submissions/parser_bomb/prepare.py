"""half_done's files, plus a module that is one deeply nested expression (it exhausts the review's parser)."""

import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def prepare(learner: Path, workbook: Path) -> None:
    shutil.copytree(HERE.parent / "half_done" / "starters", learner / "starters", dirs_exist_ok=True)
    (learner / "starters" / "helpers.py").write_text("VALUE = " + "-" * 300_000 + "1\n", encoding="utf-8")
