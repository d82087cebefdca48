"""starters/ is a symlink to the instructor's solutions/."""

import shutil
from pathlib import Path


def prepare(learner: Path, workbook: Path) -> None:
    shutil.rmtree(learner / "starters")
    (learner / "starters").symlink_to(workbook / "solutions", target_is_directory=True)
