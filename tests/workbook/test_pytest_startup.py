"""What a pytest start of the suite loads: nbval (about 3.5 s of imports) only where it is asked for."""

from __future__ import annotations

import subprocess
import sys

from tests.harness.target import REPO_ROOT

PROBE = """
import sys
import pytest
code = pytest.main(sys.argv[1:])
print("nbval imported:", "nbval" in sys.modules)
sys.exit(code)
"""


def run(*args: str) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          check=False, timeout=300)
    assert done.returncode == 0, f"pytest {' '.join(args)}: exit {done.returncode}\n{done.stdout[-1500:]}"
    return done.stdout


def test_the_suite_starts_without_the_notebook_plugin():
    out = run("--co", "-q", "tests/workbook/test_rubric.py")
    assert "nbval imported: False" in out, f"pytest --co of one test file imported nbval:\n{out[-500:]}"


def test_the_notebooks_get_it_when_asked():
    out = run("-p", "nbval", "--co", "-q", "--nbval", "notebooks/00_getting_started.ipynb")
    assert "nbval imported: True" in out and "Cell" in out, out[-500:]
