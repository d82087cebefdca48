"""Real Airflow processes for end-to-end tests: api-server, scheduler, dag-processor and triggerer started one
by one on loopback, as a deployment runs them (LocalExecutor, the embedded SQLite DB, free ports).

    @pytest.fixture(scope="module")
    def airflow_extra_env(): return {"WORKBOOK_HEALTH_URL": ...}   # optional: what the DAG files read

    def test_it(airflow_processes):
        run_id = airflow_processes.trigger_dag("my_dag")
        assert airflow_processes.wait_for_run("my_dag", run_id) == "success"

A test module gets the fixture with `from tests.harness.airflow_processes import airflow_extra_env,
airflow_processes` in its conftest (override `airflow_extra_env` there). Everything started is stopped
(the whole process group) when the module's tests end, also when one fails; each process's output is kept
in `<home>/process-logs/` and the tail is shown in readiness errors and failed tests.

Under load: the REST client retries on 5xx, connection errors and read timeouts with bounded backoff until a
deadline that scales with the machine (`tests.harness.infrastructure.scaled`), as do every `wait_for*`
deadline; SQLite connections wait for locks (`SQLITE_CONNECT_ARGS`) instead of failing. When Airflow itself
still fails (the API after its retries, a process that is not ready or died), the error is an
`InfrastructureError`: the test ends as an infrastructure outcome, not as the learner's failure.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness import remote
from tests.harness.airflow_env import airflow_env, ensure_metadata_db
from tests.harness.infrastructure import InfrastructureError, scaled
from tests.harness.remote import in_subject
from tests.harness.target import REPO_ROOT, Target

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = {"success", "failed"}
BIN = Path(sys.executable).parent  # the venv's bin/: Airflow spawns `airflow` subcommands from PATH
# Safe to repeat: a retried PATCH sets the same fields; POST dagRuns is made so by a client-chosen run id.
IDEMPOTENT_METHODS = {"GET", "HEAD", "PUT", "PATCH", "DELETE"}
REQUEST_TIMEOUT = 20.0  # one request, on an idle machine (scaled)
RETRY_DEADLINE = 60.0  # all attempts of one call, on an idle machine (scaled)
RETRY_BACKOFF = (0.25, 0.5, 1.0, 2.0, 4.0)  # then 4 s between attempts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class AirflowProcesses:
    """One Airflow deployment made of separate processes, its REST API, and its logs."""

    def __init__(self, target: Target, home: Path, extra_env: dict[str, str] | None = None,
                 port: int | None = None) -> None:
        self.target = target
        self.home = home
        self.port = port or free_port()  # a fixed port for the playground's UI; tests take a free one
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_dir = home / "process-logs"
        self.env = {
            **os.environ,
            **airflow_env(home, target),
            "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
            "PYTHONPATH": str(REPO_ROOT),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",  # LocalExecutor forks this many workers up front
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            # Every process signs and checks the execution API's tokens with the same secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            # Not the defaults (8793/8794): other deployments may run on this machine at the same time.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            # A worker's execution-API call that times out is retried, and `PATCH .../run` is not idempotent:
            # the first call, answered late by a loaded API server, already started the task, the retry gets
            # HTTP 400 and the task fails (default timeout 5 s). Wait for the answer instead.
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "120",
            # Four processes write one SQLite file: wait for the lock rather than fail.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "tests.harness.infrastructure.SQLITE_CONNECT_ARGS",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS_ASYNC":
                "tests.harness.infrastructure.SQLITE_CONNECT_ARGS_ASYNC",
            **(extra_env or {}),
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.stopped: set[str] = set()  # killed on purpose by the test: not a failure of Airflow
        self._client: httpx.Client | None = None

    # ---- life cycle -------------------------------------------------------------------------------
    def start(self, timeout: float = 120.0, extra_triggerers: int = 0) -> AirflowProcesses:
        """Start every component (and `extra_triggerers` more triggerers: `triggerer-2`, ...) and wait
        until the API reports them healthy."""
        ensure_metadata_db(self.home)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for component in COMPONENTS:
            self.launch(component)
        for number in range(2, 2 + extra_triggerers):
            self.launch(f"triggerer-{number}", "triggerer")
        self.wait_until_healthy(timeout)
        return self

    def launch(self, name: str, component: str | None = None) -> subprocess.Popen:
        """Start `airflow <component>` as the process `name` (its log: `<name>.log`)."""
        component = component or name
        command = [str(BIN / "airflow"), component]
        env = self.env
        if component == "api-server":
            command += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        if name != component and component == "triggerer":
            # Each triggerer serves its trigger logs on a port of its own.
            env = {**env, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())}
        remote.note_measured("an Airflow deployment")
        self.processes[name] = spawn(command, env, self.home, self.log_dir / f"{name}.log")
        return self.processes[name]

    def kill(self, name: str) -> None:
        """SIGKILL the process group of `name` (the process and every child it forked), as a crash does."""
        self.stopped.add(name)
        process = self.processes[name]
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=30)

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM every process group, SIGKILL what is left after `grace` seconds."""
        for process in self.processes.values():
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
            # Children (executor workers, task and trigger runners) share the group: none outlives it.
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)
        if self._client is not None:
            self._client.close()
            self._client = None

    def wait_until_healthy(self, timeout: float) -> dict[str, Any]:
        """Until the API answers and reports a healthy metadatabase, scheduler, triggerer and dag-processor."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                health = httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=5).json()
            except (httpx.HTTPError, ValueError):
                health = {}
            statuses = {name: (part or {}).get("status") for name, part in health.items()}
            if statuses and all(status == "healthy" for status in statuses.values()):
                return health
            time.sleep(0.5)
        raise InfrastructureError(
            f"Airflow processes not healthy within {timeout:.0f} s: {health}\n{self.log_tails()}"
        )

    def _check_alive(self) -> None:
        for name, process in self.processes.items():
            if name not in self.stopped and process.poll() is not None:
                raise InfrastructureError(f"`airflow {name}` exited with {process.returncode}\n{self.log_tail(name)}")

    # ---- logs ----------------------------------------------------------------------------------------
    def log_text(self, component: str) -> str:
        return (self.log_dir / f"{component}.log").read_text(errors="replace")

    def log_tail(self, component: str, lines: int = 25) -> str:
        text = "\n".join(self.log_text(component).splitlines()[-lines:])
        return f"--- airflow {component} (last {lines} lines) ---\n{text}"

    def log_tails(self, lines: int = 15) -> str:
        return "\n".join(self.log_tail(c, lines) for c in self.processes)

    def wait_for_log(self, component: str, pattern: str | re.Pattern[str], timeout: float = 60.0) -> re.Match[str]:
        """Until `component`'s output matches `pattern` (a regex); returns the match."""
        regex = re.compile(pattern)
        return self.wait_for(f"`airflow {component}` logging {regex.pattern!r}",
                             lambda: regex.search(self.log_text(component)), timeout)

    def trigger_log_text(self, dag_id: str) -> str:
        """Every triggerer's log files of `dag_id` (`*.log.trigger.<job id>.log`), each headed by its path."""
        return "\n".join(f"--- {path.relative_to(self.home)}\n{path.read_text(errors='replace')}"
                         for path in self.task_log_files(dag_id) if ".trigger." in path.name)

    def task_log_files(self, dag_id: str) -> list[Path]:
        """The task and trigger log files Airflow wrote for `dag_id` (the triggerer's are `*.trigger.*`)."""
        return sorted((self.home / "logs").glob(f"dag_id={dag_id}/**/*.log*"))

    # ---- REST -------------------------------------------------------------------------------------
    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            token = self._request(httpx.request, "GET", f"{self.base_url}/auth/token").json()["access_token"]
            self._client = httpx.Client(base_url=f"{self.base_url}/api/v2",
                                        headers={"Authorization": f"Bearer {token}"})
        return self._client

    def _request(self, send: Callable[..., httpx.Response], method: str, url: str, *,
                 retry: bool = True, **kwargs: Any) -> httpx.Response:
        """One REST call, retried (when it is safe to repeat) on 5xx, connection errors and timeouts with
        bounded backoff until a deadline scaled to the machine; Airflow still failing is infrastructure."""
        remote.note_measured("an Airflow deployment")  # its API server runs in the subject's sandbox
        deadline = time.monotonic() + scaled(RETRY_DEADLINE)
        attempts, problem = 0, ""
        while True:
            attempts += 1
            try:
                response = send(method, url, timeout=scaled(REQUEST_TIMEOUT), **kwargs)
                if response.status_code < 500:
                    return response
                problem = f"HTTP {response.status_code} {response.text[:300]}"
            except (httpx.TransportError, httpx.DecodingError) as exc:  # connect/read timeouts, resets, ...
                problem = f"{type(exc).__name__}: {exc}"
            if not retry or time.monotonic() >= deadline:
                break
            self._check_alive()
            time.sleep(min(RETRY_BACKOFF[min(attempts - 1, len(RETRY_BACKOFF) - 1)],
                           max(deadline - time.monotonic(), 0)))
        raise InfrastructureError(
            f"the Airflow API failed: {method} {url} -> {problem} ({attempts} attempt(s))\n"
            f"{self.log_tail('api-server')}"
        )

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        """`method /api/v2{path}`; a 4xx answer fails with it, a 5xx after the retries is infrastructure."""
        response = self.api_response(method, path, **kwargs)
        if response.is_error:
            raise AssertionError(f"{method} /api/v2{path}: HTTP {response.status_code} {response.text[:500]}")
        return response.json() if response.content else None

    def api_response(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._request(self.client.request, method, path, retry=method in IDEMPOTENT_METHODS, **kwargs)

    def wait_for_dag(self, dag_id: str, timeout: float = 60.0) -> dict[str, Any]:
        """Until the dag-processor has parsed `dag_id` (an import error fails at once, with the error)."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.api_response("GET", f"/dags/{dag_id}")
            if response.status_code == 200:
                return response.json()
            errors = self.api("GET", "/importErrors").get("import_errors", [])
            mine = [e for e in errors if f"{dag_id}.py" in e.get("filename", "")]
            if mine:
                raise AssertionError(f"DAG file of {dag_id!r} does not import:\n{mine[0].get('stack_trace')}")
            self._check_alive()
            time.sleep(0.5)
        raise AssertionError(f"DAG {dag_id!r} not parsed within {timeout:.0f} s\n{self.log_tail('dag-processor')}")

    def trigger_dag(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Unpause `dag_id` (waiting until it is parsed) and start a run; returns its run_id."""
        self.wait_for_dag(dag_id)
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        # The run id is chosen here, so a POST whose answer was lost can be repeated: 409 means it was made.
        run_id = f"manual__workbook_{secrets.token_hex(6)}"
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf or {}}
        deadline = time.monotonic() + scaled(RETRY_DEADLINE)
        while True:
            try:
                response = self._request(self.client.request, "POST", f"/dags/{dag_id}/dagRuns", json=body,
                                         retry=False)
                break
            except InfrastructureError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1)
        if response.status_code == 409 and self.api_response("GET", f"/dags/{dag_id}/dagRuns/{run_id}").is_success:
            return run_id
        if response.is_error:
            raise AssertionError(f"POST /api/v2/dags/{dag_id}/dagRuns: HTTP {response.status_code} "
                                 f"{response.text[:500]}")
        return response.json()["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}")

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.api("GET", path, params={"deserialize": True})["value"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        content = self.api("GET", path, params={"full_content": True}).get("content", [])
        return "\n".join(part.get("event", str(part)) if isinstance(part, dict) else str(part) for part in content)

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float, interval: float = 0.5) -> Any:
        """Poll `check()` until it returns something truthy, for `timeout` s on an idle machine (scaled to
        this one); fail with `what` and the logs' tails."""
        timeout = scaled(timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := check():
                return result
            self._check_alive()
            time.sleep(interval)
        raise AssertionError(f"{what}: not within {timeout:.0f} s\n{self.log_tails()}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 90.0) -> str:
        """Until the run is success or failed; returns the state."""
        return self.wait_for(
            f"DAG run {dag_id}/{run_id} finished",
            lambda: (state if (state := self.run_state(dag_id, run_id)) in TERMINAL_RUN_STATES else None),
            timeout,
        )

    def wait_for_task_state(self, dag_id: str, run_id: str, task_id: str, states: set[str],
                            timeout: float = 60.0) -> dict[str, Any]:
        """Until the task instance is in one of `states` (or the run has finished); returns it."""
        def reached() -> dict[str, Any] | None:
            ti = self.task_instance(dag_id, run_id, task_id)
            if ti["state"] in states:
                return ti
            if self.run_state(dag_id, run_id) in TERMINAL_RUN_STATES:
                raise AssertionError(
                    f"{dag_id}/{run_id} ended before {task_id} reached {sorted(states)}: task {ti['state']!r}\n"
                    + self.task_log(dag_id, run_id, task_id, max(ti["try_number"], 1))[-3000:]
                )
            return None

        return self.wait_for(f"task {task_id} in {sorted(states)}", reached, timeout)


@in_subject(always=True)
def spawn(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    """Start an Airflow process, its output to `log`. Its processes parse and run the learner's DAGs: in a graded
    run they are started by the subject, in its sandbox, and the judge holds references to them."""
    with open(log, "wb") as out:
        return subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)  # its own group, killed as one


@in_subject
def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)  # start_new_session=True: the group id is the leader's pid
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def airflow_extra_env() -> dict[str, str]:
    """Extra environment for every Airflow process (override in a conftest: simulator addresses)."""
    return {}


@pytest.fixture(scope="module")
def airflow_processes(
    pytestconfig: pytest.Config, airflow_extra_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[AirflowProcesses]:
    """A running deployment shared by the module's e2e tests; stopped afterwards whatever happened."""
    yield from deployment(pytestconfig, airflow_extra_env, tmp_path_factory)


def deployment(pytestconfig: pytest.Config, extra_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory,
               extra_triggerers: int = 0) -> Iterator[AirflowProcesses]:
    """The body of an `airflow_processes` fixture (a conftest may start more triggerers with it)."""
    home = tmp_path_factory.mktemp("airflow-e2e")
    processes = AirflowProcesses(pytestconfig.workbook_target, home, extra_env)
    try:
        yield processes.start(extra_triggerers=extra_triggerers)
    finally:
        processes.stop()
