"""The first cell of every walkthrough imports this: the repo on the path, the notebook's own Airflow,
and one place that stops whatever the notebook started.

The walkthroughs use the tests' target switch: the reference solutions by default (when solutions/ is
there), your starters with `WORKBOOK_TARGET=starter`.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("WORKBOOK_TARGET", "solution" if (REPO_ROOT / "solutions").is_dir() else "starter")

from tests.harness import airflow_env  # noqa: E402  (needs the path above)
from tests.harness.target import current_target  # noqa: E402

target = current_target()
airflow_home = airflow_env.configure(target)  # before anything imports airflow
_started: list[Any] = []


def start(simulator: Any) -> Any:
    """Start a simulator (anything with start()/stop()) and remember to stop it in `finish()`."""
    simulator.start()
    _started.append(simulator)
    return simulator


def finish() -> str:
    """Stop every simulator this notebook started and remove its Airflow home."""
    while _started:
        _started.pop().stop()
    shutil.rmtree(airflow_home, ignore_errors=True)
    return "stopped every simulator; removed the notebook's Airflow home"


def module(name: str):
    """The exercise module of the chosen target, e.g. `module("custom_sensors")`."""
    return target.module(name)


print(f"walkthrough target: {target.name} ({target.package}/)")
