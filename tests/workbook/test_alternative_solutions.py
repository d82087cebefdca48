"""Correct solutions written differently from the reference pass the tests of their task.

A test that fails one of them checks the reference's internals rather than what the chapter promises
(see tests/workbook/alternatives/README.md). Each alternative is graded as a submission: a copy of the repo
whose `starters/` is the reference with the alternative appended to one module, run with `--target=starter`
and the unit tests of that task only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.target import REPO_ROOT

ALTERNATIVES = Path(__file__).with_name("alternatives")
TESTS_OF = {
    "custom_sensors": "tests/ex04_custom_sensors/test_t3_multi_source.py",
    "custom_trigger": "tests/ex11_3_custom_trigger/test_http_trigger.py",
    "vector_store_sensor": "tests/ex11_4_vector_store_sensor/test_health.py",
    "event_driven": "tests/ex11_5_event_driven/test_t3_conditions.py",
}


def test_every_alternative_has_its_tests():
    found = {path.stem for path in ALTERNATIVES.glob("*.alternative")}
    assert found == set(TESTS_OF), f"alternatives {sorted(found)} vs test files listed {sorted(TESTS_OF)}"


def submission_with(module: str, root: Path) -> Path:
    """A copy of the repo whose starters/ are the reference solutions, `module` with its alternative."""
    for name in ("tests", "fixtures", "exercises"):
        shutil.copytree(REPO_ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(REPO_ROOT / "solutions", root / "starters", ignore=shutil.ignore_patterns("__pycache__"))
    target = root / "starters" / f"{module}.py"
    alternative = (ALTERNATIVES / f"{module}.alternative").read_text()
    target.write_text(target.read_text() + "\n\n" + alternative)
    return root


@pytest.mark.integration
@pytest.mark.parametrize("module", sorted(TESTS_OF))
def test_a_correct_alternative_passes_its_task(module, tmp_path):
    root = submission_with(module, tmp_path / "submission")
    env = {**os.environ, "WORKBOOK_TARGET": "starter", "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--target=starter", "-m", "not integration and not e2e", "-q",
         "-p", "no:cacheprovider", TESTS_OF[module]],
        cwd=root, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, (
        f"pytest --target=starter {TESTS_OF[module]} on the reference with tests/workbook/alternatives/"
        f"{module}.alternative (a correct solution written differently): expected every test to pass, got "
        f"exit {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-1500:]}"
    )
