"""The suite's target switch: --target, then WORKBOOK_TARGET, then 'starter'."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness.target import REPO_ROOT, Target, UnknownTarget, resolve


def test_option_wins_over_environment():
    assert resolve("solution", {"WORKBOOK_TARGET": "starter"}).package == "solutions"


def test_environment_decides_without_option():
    assert resolve(None, {"WORKBOOK_TARGET": "solution"}) == Target("solution")


def test_default_is_starter():
    assert resolve(None, {}) == Target("starter")


def test_unknown_value_names_the_valid_ones():
    with pytest.raises(UnknownTarget, match="choose one of solution, starter"):
        resolve("solutions", {})


def test_dags_folder_follows_target():
    assert Target("starter").dags_folder == REPO_ROOT / "starters" / "dags"
    assert Target("solution").dags_folder == REPO_ROOT / "solutions" / "dags"


def test_pytest_rejects_unknown_target_with_usage_error():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--target=bogus", "--collect-only", "-q", "tests/workbook"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert "unknown target 'bogus': choose one of solution, starter" in done.stderr


def test_header_names_target_and_folder(pytestconfig):
    results = pytestconfig.hook.pytest_report_header(config=pytestconfig, start_path=REPO_ROOT)
    header = "\n".join(line for lines in results for line in ([lines] if isinstance(lines, str) else lines))
    target = pytestconfig.workbook_target
    assert f"workbook target: {target.name} (loads {target.package}/" in header
