"""`workbook airflow [EXERCISE]` (`make airflow`): a real Airflow 3.3 deployment to watch your waits in;
`workbook steer ACTION ...` (grading.learner.steer) moves the simulators it waits on, from a second terminal.

The deployment is the e2e tests' (tests/harness/airflow_processes.py: api-server with the UI, scheduler,
dag-processor and triggerer, LocalExecutor, the embedded SQLite DB) with your `starters/dags/` (or
`solutions/dags/` with WORKBOOK_TARGET=solution). Its AIRFLOW_HOME is `.cache/playground/airflow-home-<target>/`:
the second start reuses the first one's database, runs included. Ctrl-C stops every process it started.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import Any

from grading.learner.playground_control import CONTROL_FILE, pid_alive, read_control, state_dir, write_control

# What each exercise's DAGs wait on (the DAG files' `WORKBOOK_*` variables point at these).
EXERCISE_SIMULATORS = {
    "ex04": ("orders", "health", "ml-data", "partner-export"),
    "ex11_3": ("health", "landing"),
    "ex11_4": ("vector-store",),
    "ex11_5": ("landing", "inbox", "webhook"),
}
# The ports a learner sees (the chapters' simulator defaults); `--free-ports` takes any free ones instead.
DEFAULT_PORTS = {"ui": 8080, "health": 8081, "ml-data": 8082, "vector-store": 8086, "webhook": 3030}
PORT_OWNERS = {"ui": "the Airflow UI", "health": "the health server", "ml-data": "the ML catalog API",
               "vector-store": "the vector store", "webhook": "the webhook receiver"}
# Every DAG divides its intervals by this (Exercise 4): a 30 s poke interval becomes 3 s, a 4 h timeout 24 min.
TIME_SCALE = 10
POLL_INTERVAL = 5  # seconds between a trigger's polls: long enough to see the task deferred
VECTOR_INDEX_RATE = 0.2  # documents per second: the 16-document corpus takes 80 s to index
VECTOR_COLLECTION = "workbook_docs"
WEBHOOK_SECRET = "my-shared-secret"  # the chapter's seed secret
BRONZE_ASSET_URI = "s3://landing/bronze/sales"
EXIT_COULD_NOT_RUN = 2
LOGIN = ("admin", "admin")  # a loopback-only playground: a login to type, not a secret
# Seconds the Airflow processes get to stop before they are killed: the api-server, scheduler and dag-processor
# stop in 1-4 s; a triggerer sometimes waits on its trigger runner far longer, and nothing of it is lost.
STOP_GRACE = 5.0
READY_TIMEOUT = 150.0  # seconds on an idle machine (the harness scales it to this one's load)

# Two or three things to try per exercise, each with what the UI shows.
THINGS_TO_TRY = {
    "ex11_3": [
        "Trigger ex11_3_http_polling (the Trigger button on its page): wait_for_api turns deferred (purple) and the triggerer "
        f"polls the health server every {POLL_INTERVAL} s (the task's log shows each poll).",
        "{steer} health healthy   -> within seconds the trigger fires, the task resumes on a worker, "
        "report runs and the run is successful.",
        "Trigger ex11_3_file_pattern, then {steer} drop-file 3   -> deferred until the third CSV lands.",
    ],
    "ex04": [
        "Trigger ex04_order_status: wait_for_shipment goes up_for_reschedule and back every "
        f"{30 / TIME_SCALE:g} s, giving its worker slot back in between.",
        "{steer} order 1 shipped   -> the next poke succeeds and process_order runs "
        "(`order 1 cancelled` instead fails it at once).",
        "Trigger ex04_api_health: it pokes (keeps its slot) until {steer} health healthy.",
    ],
    "ex11_4": [
        "Trigger ex11_4_vector_pipeline: ingest runs, then wait_for_index is deferred while the store indexes "
        "(80 s for the corpus).",
        "{steer} vector finish   -> the index completes at once (or `vector stall`, `vector fail`: watch the "
        "sensor's timeout or failure).",
    ],
    "ex11_5": [
        "{steer} drop-file   -> the landing-zone watcher (a triggerer job, no task) fires an asset event "
        "and ex11_5_landing_zone runs once per file (Assets view).",
        "{steer} webhook   -> your receiver posts an asset event and ex11_5_sales_refresh runs; "
        "{steer} webhook --replay sends it again: accepted, no second run.",
        "{steer} inbox-file   -> ex11_5_inbox claims, processes and audits the file.",
    ],
}


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "airflow", help="real Airflow with your DAGs and every simulator they wait on (Ctrl-C stops)",
        description="Start api-server (the UI), scheduler, dag-processor and triggerer on loopback with your "
                    "DAGs (WORKBOOK_TARGET=solution: the reference ones) and the simulators they wait on.")
    parser.add_argument("exercise", nargs="?", choices=sorted(EXERCISE_SIMULATORS),
                        help="start only this exercise's simulators (default: all)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORTS["ui"], help="the UI's port (default 8080)")
    parser.add_argument("--free-ports", action="store_true",
                        help="any free ports instead of the chapters' fixed ones (they are printed)")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="where the Airflow home and the simulators' files live (default .cache/playground)")
    parser.set_defaults(handler=run)


def _import_from_workbook(root: Path) -> None:
    """The harness (tests/), the simulators (fixtures/) and the DAGs' modules live in the workbook folder, not
    in the installed package: `.venv/bin/workbook` started elsewhere must still find them there."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))


def run(args: argparse.Namespace) -> int:
    _import_from_workbook(args.root)
    from fixtures.playground import taken_ports
    from tests.harness.api import UnknownTarget, resolve_target

    try:
        target = resolve_target(None)
    except UnknownTarget as error:
        print(f"workbook airflow: WORKBOOK_TARGET: {error}", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    folder = state_dir(args)
    running = read_control(folder)
    if running and pid_alive(running.get("pid", 0)):
        print(f"workbook airflow: a playground already runs here (pid {running['pid']}, UI {running['ui_url']}); "
              "Ctrl-C it first", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    exercises = [args.exercise] if args.exercise else list(EXERCISE_SIMULATORS)
    ports = dict.fromkeys(DEFAULT_PORTS, 0) if args.free_ports else {**DEFAULT_PORTS, "ui": args.port}
    taken = taken_ports({name: port for name, port in ports.items()
                         if name == "ui" or any(name in EXERCISE_SIMULATORS[e] for e in exercises)})
    if taken:
        print(f"workbook airflow: {'; '.join(taken)}. Stop what listens there (another `make airflow`?), "
              "or start with --free-ports (or --port N for the UI).", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    with _stop_on_signals():
        return Playground(target, folder, exercises, ports).run()


class Playground:
    def __init__(self, target: Any, folder: Path, exercises: list[str], ports: dict[str, int]) -> None:
        from fixtures.playground import World

        self.target, self.folder, self.exercises, self.ports = target, folder, exercises, ports
        self.home = folder / f"airflow-home-{target.name}"
        self.world = World(folder / "world", exercises, ports)
        self.processes: Any = None

    def run(self) -> int:
        from tests.harness.api import AirflowProcesses, InfrastructureError

        started = time.monotonic()
        # Airflow's logging setup (imported with the DAGs' modules) would print every simulator's start.
        logging.getLogger("fixtures").setLevel(logging.WARNING)
        try:
            print(f"Starting Airflow with {self.target.package}/dags/ and the simulators of "
                  f"{', '.join(self.exercises)} (about a minute; Ctrl-C stops)...", flush=True)
            try:
                self.world.start()
            except RuntimeError as error:  # a simulator's port taken since the check above
                print(f"workbook airflow: {error}", file=sys.stderr)
                return EXIT_COULD_NOT_RUN
            self.home.mkdir(parents=True, exist_ok=True)
            self.processes = AirflowProcesses(self.target, self.home, self.airflow_env(), port=self.ports["ui"])
            self.processes.start(timeout=READY_TIMEOUT)
            if "ex11_5" in self.exercises:
                self.world.start_receiver(self.make_receiver)
            write_control(self.folder, {"pid": os.getpid(), "ui_url": self.processes.base_url,
                                        "control_url": self.world.control.url, "token": self.world.control_token,
                                        "ready_seconds": round(time.monotonic() - started, 1)})
            print(self.banner(time.monotonic() - started), flush=True)
            while True:
                self.processes._check_alive()
                time.sleep(1)
        except KeyboardInterrupt:
            print("\nStopping Airflow and the simulators...", flush=True)
            return 0
        except InfrastructureError as error:
            print(f"workbook airflow: Airflow did not come up or stopped: {error}", file=sys.stderr)
            return 1
        finally:
            self.stop()

    def airflow_env(self) -> dict[str, str]:
        passwords = self.home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({LOGIN[0]: LOGIN[1]}))
        return {
            **self.world.env(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{LOGIN[0]}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            # The same key at every start: what the first start encrypted in the reused DB stays readable.
            "AIRFLOW__CORE__FERNET_KEY": _kept_secret(self.home / "fernet.key"),
            # Unpaused: an asset watcher runs only for an unpaused DAG, and a trigger from the UI runs at once.
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        }

    def make_receiver(self, **settings: Any) -> Any:
        """Your `WebhookReceiver` (Exercise 11.5, Task 2), delivering to this Airflow with an API token."""
        receiver_class = self.target.module("event_driven").WebhookReceiver
        return receiver_class(airflow_url=self.processes.base_url, airflow_token=self.token(), **settings)

    def token(self) -> str:
        import httpx

        response = httpx.post(f"{self.processes.base_url}/auth/token",
                              json={"username": LOGIN[0], "password": LOGIN[1]}, timeout=30)
        response.raise_for_status()
        return response.json()["access_token"]

    def banner(self, seconds: float) -> str:
        steer = ".venv/bin/workbook steer"
        if self.folder != (Path.cwd() / ".cache" / "playground").resolve():
            steer += f" --state-dir {self.folder}"
        tries = [line.format(steer=steer) for exercise in self.exercises for line in THINGS_TO_TRY[exercise]]
        if len(self.exercises) > 1:  # one of each exercise's first things, not a page of them
            tries = [THINGS_TO_TRY[e][i].format(steer=steer) for e, i in (("ex11_3", 0), ("ex11_3", 1),
                                                                          ("ex04", 0), ("ex04", 1), ("ex11_5", 0))]
        rows = [
            "",
            f"Airflow 3.3 is up after {seconds:.0f} s, with {self.target.package}/dags/.",
            f"  UI         {self.processes.base_url}   login {LOGIN[0]} / {LOGIN[1]}",
            f"  logs       {self._relative(self.processes.log_dir)}/ (the processes), "
            f"{self._relative(self.home / 'logs')}/ (tasks, triggers)",
            f"  time       every Exercise 4 interval divided by {TIME_SCALE}; triggers poll every {POLL_INTERVAL} s",
            "  simulators",
            *(f"    {line}" for line in self.world.describe()),
            "",
            f"Try it (from a second terminal, in this folder; `{steer} --help` lists every action):",
            *(f"  {number}. {line}" for number, line in enumerate(tries, 1)),
            "",
            "Ctrl-C stops everything.",
        ]
        return "\n".join(rows)

    def _relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def stop(self) -> None:
        (self.folder / CONTROL_FILE).unlink(missing_ok=True)
        if self.processes is not None:
            self.processes.stop(grace=STOP_GRACE)
        self.world.stop()
        print("Stopped: no process of the playground is left.", flush=True)


class _stop_on_signals:
    """SIGTERM and SIGHUP (a closed terminal) stop the playground as Ctrl-C does."""

    def __enter__(self) -> None:
        self._previous = {sig: signal.signal(sig, self._interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    @staticmethod
    def _interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt


def _kept_secret(path: Path) -> str:
    if not path.exists():
        import base64

        path.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
        path.chmod(0o600)
    return path.read_text().strip()
