"""The playground's parts that need no Airflow: a taken port refused by name, the `WORKBOOK_*` variables every
DAG reads, and steering the simulators through the control server from a second process.

The whole playground in a real browser is `make playground-check` (tests/workbook/playground_browser_check.py).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fixtures.playground import SteerError, World
from grading.learner.playground import DEFAULT_PORTS, EXERCISE_SIMULATORS
from grading.learner.playground_control import STEER_TOKEN_HEADER, write_control
from tests.harness.target import REPO_ROOT

# Variables a DAG reads with a default that fits the playground as it is (optional credentials, the SLA, the
# corpus shipped beside the simulator, the sensor's own poll interval, the schedule's timezone).
OPTIONAL_VARIABLES = {"WORKBOOK_HEALTH_CONN_ID", "WORKBOOK_WARN_AFTER_HOURS", "WORKBOOK_ERROR_AFTER_HOURS",
                      "WORKBOOK_VECTOR_CORPUS", "WORKBOOK_VECTOR_POLL_INTERVAL", "WORKBOOK_TIMEZONE"}


def workbook(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "grading", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_a_taken_port_is_refused_by_name_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = workbook("airflow", "ex11_3", "--port", str(port), "--state-dir", str(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"port {port} (the Airflow UI) is taken" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "world").exists(), "nothing may start when a port is taken"


def test_steering_without_a_playground_says_how_to_start_one(tmp_path: Path) -> None:
    done = workbook("steer", "--state-dir", str(tmp_path), "health", "healthy")
    assert done.returncode == 2
    assert "no playground runs" in done.stderr and "make airflow" in done.stderr


@pytest.mark.parametrize("target", ["starters", "solutions"])
def test_every_variable_the_dags_read_points_at_a_simulator(tmp_path: Path, target: str) -> None:
    if not (REPO_ROOT / target / "dags").is_dir():
        pytest.skip(f"this copy of the workbook has no {target}/")
    read = set()
    for dag_file in (REPO_ROOT / target / "dags").glob("*.py"):
        read |= set(re.findall(r"WORKBOOK_[A-Z_]+", dag_file.read_text()))
    env = World(tmp_path, list(EXERCISE_SIMULATORS), dict.fromkeys(DEFAULT_PORTS, 0)).start()
    try:
        missing = read - OPTIONAL_VARIABLES - set(env.env())
    finally:
        env.stop()
    assert not missing, f"{target}/dags read {sorted(missing)}, which the playground does not set"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """Exercises 4 and 11.3's simulators on free ports, with the control file a playground writes."""
    running = World(tmp_path / "world", ["ex04", "ex11_3"], dict.fromkeys(DEFAULT_PORTS, 0)).start()
    write_control(tmp_path, {"pid": os.getpid(), "ui_url": "http://127.0.0.1:1", "control_url": running.control.url,
                             "token": running.control_token})
    yield running
    running.stop()


def steer(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    return workbook("steer", "--state-dir", str(world.root.parent), *args)


def test_a_second_terminal_flips_the_health_server(world: World) -> None:
    assert httpx.get(world.health.health_url, timeout=10).status_code == 503  # waits for the learner
    done = steer(world, "health", "healthy")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "health server: healthy"
    answer = httpx.get(world.health.health_url, timeout=10)
    assert answer.status_code == 200 and answer.json()["status"] == "healthy"


def test_steering_ships_an_order_and_drops_files(world: World) -> None:
    orders = lambda: {o["id"]: o["status"] for o in json.loads(world.orders.path.read_text())}  # noqa: E731
    assert orders()[1] == "pending"
    assert steer(world, "order", "1", "shipped").returncode == 0
    assert orders()[1] == "shipped"
    assert steer(world, "drop-file", "3").returncode == 0
    assert len(list(world.landing_dir.glob("*.csv"))) == 3
    assert steer(world, "partner-export", "drop").returncode == 0
    assert world.partner_export.exists()


def test_a_wrong_steering_command_gets_one_line_with_its_usage(world: World) -> None:
    done = steer(world, "health", "sunny")
    assert done.returncode == 1
    assert done.stderr.strip() == "workbook steer: usage: workbook steer health healthy|maintenance|cycle"
    done = steer(world, "vector", "finish")  # the vector store belongs to Exercise 11.4, not started here
    assert done.returncode == 1 and "did not start" in done.stderr


def test_the_control_server_needs_its_token(world: World) -> None:
    answer = httpx.post(f"{world.control.url}/steer", json={"action": "health", "args": ["healthy"]},
                        headers={STEER_TOKEN_HEADER: "guessed"}, timeout=10)
    assert answer.status_code == 403
    assert world.health.state() == "maintenance"


def test_a_receiver_that_cannot_start_yet_is_named_and_the_rest_runs(tmp_path: Path) -> None:
    def todo(**settings: str) -> None:
        raise NotImplementedError("Exercise 11.5 · Task 2: implement WebhookReceiver.make_app")

    running = World(tmp_path, ["ex11_5"], dict.fromkeys(DEFAULT_PORTS, 0)).start()
    try:
        running.start_receiver(todo)
        assert running.receiver_problem == "NotImplementedError: Exercise 11.5 · Task 2: implement WebhookReceiver.make_app"
        assert any("not started" in line and "make_app" in line for line in running.describe())
        with pytest.raises(SteerError, match="not running"):
            running.steer("webhook", [])
        assert running.steer("drop-file", []).startswith("dropped sales-0001.csv")
    finally:
        running.stop()
