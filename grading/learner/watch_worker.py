"""The watch's warm test worker: imports Airflow, pytest and their plugins once, then forks a child per run.

Importing Airflow costs seconds of CPU, too much to pay on every save. The child imports only the tests and
your starters, so each run sees the files as saved. The worker never imports learner code itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from grading.core.processes import kill_group
from grading.suite.options import graded_env

RUN_TIMEOUT = 300.0
STOP_SECONDS = 10.0  # an idle worker removes its Airflow home on the way out
PR_SET_PDEATHSIG = 1  # linux/prctl.h
PER_TEST_TIMEOUT = 60.0
# Imported once by the worker: what every test run needs and no learner code (starters/ is never here).
WARM_MODULES = (
    "airflow.sdk", "airflow.sdk.exceptions", "airflow.sdk.bases.sensor", "airflow.triggers.base",
    "airflow.exceptions", "airflow.models", "pendulum", "requests", "aiohttp", "structlog", "structlog.testing",
    "pytest", "_pytest.pytester", "fixtures", "fixtures.pytest_plugin", "grading.judge.plugin",
    "grading.learner.selection",
)


def worker_main(root: Path, target: str) -> NoReturn:
    """Import once, then per request line fork a child that runs pytest; answer with its exit code and CPU.

    Ctrl-C (or the front's SIGTERM) ends the worker and the run in progress with it, its process group
    included: a learner's busy loop must not outlive the watch."""
    signal.signal(signal.SIGINT, _stop_worker)
    signal.signal(signal.SIGTERM, _stop_worker)
    sys.path.insert(0, str(root))
    os.chdir(root)
    from tests.harness.api import Target, configure_airflow

    home = configure_airflow(Target(target))  # before Airflow is imported, as the suite's conftest does
    stopped = None
    try:
        _warm_up()
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            request = json.loads(line)
            print(json.dumps(_run_forked(root, target, request)), flush=True)
    except SystemExit as stop:  # Ctrl-C or the front's SIGTERM; the run in progress has been ended
        stopped = stop.code if isinstance(stop.code, int) else 1
    finally:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    sys.stdout.flush()
    os._exit(stopped or 0)  # skips Airflow's exit hooks (seconds): the prompt waits for this process


def _warm_up() -> None:
    import importlib
    from importlib.metadata import entry_points

    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue  # a module this release does not have: the child imports what it needs
    for plugin in entry_points(group="pytest11"):
        try:
            plugin.load()
        except Exception:  # noqa: BLE001 - a plugin that does not load here fails in the child, with its message
            continue


def _stop_worker(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds _run_forked, which ends the run in progress


def _die_with_parent() -> None:
    """Linux: the child is killed when the worker dies, even by SIGKILL (its own children are in its group,
    which the worker or the front ends)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _run_forked(root: Path, target: str, request: dict[str, Any]) -> dict[str, Any]:
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            os.setpgid(0, 0)
            _die_with_parent()
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(log, 1)
            os.dup2(log, 2)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            import pytest

            code = int(pytest.main(pytest_args(root, target, request)))
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.setpgid(pid, pid)  # also here: a Ctrl-C right after the fork must find the child's group
    deadline = started + float(request.get("timeout", RUN_TIMEOUT))
    try:
        while True:
            done, status, usage = os.wait4(pid, os.WNOHANG)
            if done:
                break
            if time.monotonic() > deadline:
                kill_group(pid)
                done, status, usage = os.wait4(pid, 0)
                return {"exit": None, "cut": True, "wall_s": time.monotonic() - started,
                        "cpu_s": usage.ru_utime + usage.ru_stime}
            time.sleep(0.02)
    except BaseException:
        kill_group(pid)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise
    return {"exit": os.waitstatus_to_exitcode(status), "cut": False, "wall_s": time.monotonic() - started,
            "cpu_s": usage.ru_utime + usage.ru_stime}


def pytest_args(root: Path, target: str, request: dict[str, Any]) -> list[str]:
    args = [*request["paths"], f"--target={target}", "-p", "grading.judge.plugin",
            f"--grading-record={request['record']}", "-p", "grading.learner.selection",
            f"--grading-tasks={','.join(request['tasks'])}",
            f"--timeout={PER_TEST_TIMEOUT:g}", "--timeout-method=signal", "--grading-stop-on-hang", f"--rootdir={root}",
            "-c", str(root / "pyproject.toml"), "-p", "no:cacheprovider", "-q", "--tb=short"]
    if request.get("fast", True):
        args.append("--grading-fast")
    return args


class Worker:
    """The front's handle on the warm worker process."""

    def __init__(self, root: Path, target: str) -> None:
        self.busy = False
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grading.learner.watch_worker", "--worker", str(root), target],
            cwd=root, env=graded_env(root), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            ready = self._answer()
        except BaseException:  # Ctrl-C while Airflow is imported
            self.process.terminate()
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
            raise
        if not ready.get("ready"):
            raise RuntimeError("the watch's test worker did not start")

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.busy = True
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = self._answer()
        self.busy = False
        return answer

    def _answer(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the watch's test worker stopped (exit code {self.process.poll()})")
        return json.loads(line)

    def close(self) -> None:
        """An idle worker ends when its input does; one still running tests (the front was interrupted) is
        told to stop, which ends that run's process group too."""
        if self.busy and self.process.poll() is None:
            self.process.terminate()
        if self.process.stdin:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    worker_main(Path(sys.argv[2]), sys.argv[3])
