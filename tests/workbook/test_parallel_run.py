"""`make test` runs the suite on pytest-xdist workers: the grading record and the progress table still tell
each test once, and the e2e tests still get one Airflow deployment at a time."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import E2E_FILE
from tests.harness.target import REPO_ROOT
from tests.workbook.grading_fixtures.builder import make_workbook


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("parallel") / "workbook")


def recorded_run(workbook: Path, record: Path, *workers: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--target=solution", *workers, "-p", "grading.judge.plugin",
         f"--grading-record={record}", "tests/ex01_mini", "tests/ex02_greeting"],
        cwd=workbook, capture_output=True, text=True, timeout=300, check=False,
    )


def events_of(record: Path) -> list[dict]:
    return [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]


def test_every_e2e_test_is_in_a_file_the_scheduler_keeps_on_one_worker():
    marked = {path for path in (REPO_ROOT / "tests").rglob("test_*.py")
              if re.search(r"mark\.e2e\b", path.read_text(encoding="utf-8"))}
    assert marked, "no e2e test found: the check below would prove nothing"
    elsewhere = sorted(str(path.relative_to(REPO_ROOT)) for path in marked if path.name != E2E_FILE)
    assert not elsewhere, (f"e2e tests outside a {E2E_FILE}: {elsewhere}; the parallel run's scheduler "
                           f"(tests/conftest.py) would start their deployment beside another one")


def test_a_parallel_run_records_each_test_once_with_the_serial_outcomes(workbook, tmp_path):
    serial, parallel = tmp_path / "serial.jsonl", tmp_path / "parallel.jsonl"
    done = recorded_run(workbook, serial)
    assert done.returncode == 0, done.stdout[-3000:]
    done = recorded_run(workbook, parallel, "-n", "2", "--dist", "loadfile")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 workers" in done.stdout, f"expected a run on 2 xdist workers:\n{done.stdout[-3000:]}"

    expected = {e["nodeid"]: e["outcome"] for e in events_of(serial) if e["event"] == "result"}
    events = events_of(parallel)
    kinds = Counter(e["event"] for e in events)
    collected = Counter(e["nodeid"] for e in events if e["event"] == "collected")
    started = Counter(e["nodeid"] for e in events if e["event"] == "start")
    results = [e for e in events if e["event"] == "result"]
    assert set(collected) == set(expected) and set(collected.values()) == {1}, (
        f"-n 2: expected each of the {len(expected)} tests collected once, got {dict(collected)}")
    assert dict(started) == dict.fromkeys(expected, 1), f"-n 2: expected one start per test, got {dict(started)}"
    assert {e["nodeid"]: e["outcome"] for e in results} == expected and len(results) == len(expected), (
        f"-n 2: expected one result per test, as the serial run's {expected}, got {results}")
    assert kinds["finish"] == 1 and events[-1]["event"] == "finish", f"-n 2: expected one finish, last: {kinds}"

    table = done.stdout.split("progress (solution)", 1)
    assert len(table) == 2 and re.search(r"ex01\s+t1\s+2/2", table[1]), (
        f"-n 2: expected the progress table with ex01 t1 2/2 met:\n{done.stdout[-2000:]}")
