"""half_done's files in a copy whose .git/HEAD links to /dev/zero and whose packed-refs is a FIFO nobody writes
(a grader reading them whole would hang or run out of memory before grading anything)."""

import os
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent


def prepare(learner: Path, workbook: Path) -> None:
    shutil.copytree(HERE.parent / "half_done" / "starters", learner / "starters", dirs_exist_ok=True)
    git = learner / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").symlink_to("/dev/zero")
    os.mkfifo(git / "packed-refs")
