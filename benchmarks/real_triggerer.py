"""N HttpPollingTrigger deferrals in a real `airflow triggerer` process: what trigger_fanout.py measures in
its own event loop, measured in Airflow's triggerer (its supervisor, its trigger-runner subprocess, its DB
round-trips, its "async thread was blocked" warnings).

    .venv/bin/python benchmarks/real_triggerer.py [--triggers 1000] [--poll-interval 2] [--target solution]
    .venv/bin/python benchmarks/real_triggerer.py --triggers 100 --no-fanout     # quick look
    .venv/bin/python benchmarks/real_triggerer.py --baseline --no-fanout         # Airflow's own cost

`--baseline` runs the same N deferrals with `baseline_trigger.SleepUntilTrigger` (sleep until a moment, then
fire) instead of ours: what the triggerer spends on a trigger that does nothing (its memory, its blocked
loops, the time it takes to write N events to the DB), to set beside what it spends on ours.

What it does, in a throw-away AIRFLOW_HOME (SQLite, copied from the test suite's migrated template):

1. `airflow triggerer` starts with nothing to run, the health server in a child process pinned to
   maintenance; the triggerer's RSS (with its children) is read;
2. a DAG of one `HttpPollingOperator` task is synced to the DB and N runs of it created, through Airflow's
   own models (no scheduler, no worker: the cheapest way to N deferred task instances); each task instance
   is deferred as `TaskInstance.defer_task` does it (a `Trigger` row from the operator's trigger, state
   `deferred`, `next_method`), and the triggerer picks them up;
3. once every trigger has polled at least twice (the server counts the requests) the RSS is read again, the
   server is flipped healthy, and the DB is watched until every task instance has its event (state
   `scheduled`, as `Trigger.submit_event` leaves it);
4. trigger_fanout.py runs with the same N and interval, for its figures beside these.

Everything is bounded by `--deadline`; every process group started is killed at the end and the home
removed. Figures are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
BIN = Path(sys.executable).parent
DAG_ID = "bench_real_triggerer"
BLOCKED = re.compile(r"async thread was blocked for ([0-9.]+) seconds")

# The simulator in its own process: "healthy" / "maintenance" force the state, "count" prints the requests.
SERVER = """
import sys
from fixtures.clock import SimClock
from fixtures.health_server import HealthServer
server = HealthServer(clock=SimClock(time_scale=0)).start()
server.force("maintenance")
print(server.health_url, flush=True)
for line in sys.stdin:
    command = line.strip()
    if command == "count":
        print(len(server.requests), flush=True)
    else:
        server.force(command)
        print("forced", command, flush=True)
server.stop()
"""

DAG_FILE = """
import os
from datetime import UTC, datetime
from airflow.sdk import DAG
from {package}.custom_trigger import HttpPollingOperator

with DAG(dag_id={dag_id!r}, schedule=None, start_date=datetime(2025, 1, 1, tzinfo=UTC), catchup=False,
         max_active_runs={triggers}):
    HttpPollingOperator(task_id="wait", endpoint=os.environ["WORKBOOK_HEALTH_URL"], expected_value="healthy",
                        poll_interval={poll_interval}, timeout=600)
"""


class Child:
    """A process in its own group, talked to over stdin/stdout lines."""

    def __init__(self, command: list[str], env: dict[str, str], log: Path | None = None) -> None:
        self.log = log
        out = open(log, "wb") if log else subprocess.PIPE  # noqa: SIM115  (closed in stop())
        self.process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdin=subprocess.PIPE, stdout=out,
                                        stderr=subprocess.STDOUT if log else None, text=log is None,
                                        start_new_session=True)
        self._out = out if log else None

    def ask(self, line: str) -> str:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def stop(self) -> None:
        for signum, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
            try:
                os.killpg(self.process.pid, signum)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever the group forked
        except ProcessLookupError:
            pass
        if self._out is not None:
            self._out.close()


def group_rss_kb(leader: int) -> int:
    """Resident memory of every process in `leader`'s process group (the triggerer and its children)."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == leader:  # pgrp
                rss = (status.parent / "status").read_text().split("VmRSS:")[1].split()[0]
                total += int(rss)
        except (OSError, IndexError, ValueError):
            continue
    return total


def create_deferred_task_instances(args: argparse.Namespace, health_url: str) -> None:
    """N deferred task instances, one per run of a one-task DAG, through Airflow's models (with this home
    configured). Not N tasks of one DAG: the triggerer sends each trigger's whole serialized DAG along and
    rebuilds it, which for an N-task DAG is N x N work that no real deployment has."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag, sync_bag_to_db
    from airflow.models.dagbag import DBDagBag
    from airflow.models.trigger import Trigger
    from airflow.sdk import timezone
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    module = __import__(f"{args.package}.custom_trigger", fromlist=["HttpPollingTrigger"])
    from baseline_trigger import SleepUntilTrigger
    with create_session() as session:
        manager = DagBundlesManager()
        manager.sync_bundles_to_db(session=session)
        session.commit()
        for bundle in manager.get_all_dag_bundles():
            if not bundle.is_initialized:
                bundle.initialize()
            sync_bag_to_db(BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=bundle.name),
                           bundle.name, bundle.version, session=session)
        session.commit()
        dag = DBDagBag().get_latest_version_of_dag(DAG_ID, session=session)
        now = timezone.utcnow()
        runs = [dag.create_dagrun(run_id=f"bench_{index:04d}", run_after=now, run_type=DagRunType.MANUAL,
                                  triggered_by=DagRunTriggeredByType.TEST, state=DagRunState.RUNNING,
                                  start_date=now, session=session) for index in range(args.triggers)]
        session.flush()
        for ti in (ti for run in runs for ti in run.get_task_instances(session=session)):
            if args.baseline:
                trigger = SleepUntilTrigger(args.fire_at)
            else:
                trigger = module.HttpPollingTrigger(health_url, expected_value="healthy",
                                                    poll_interval=args.poll_interval, timeout=600)
            row = Trigger.from_object(trigger)
            session.add(row)
            session.flush()
            ti.state = TaskInstanceState.DEFERRED
            ti.trigger_id = row.id
            ti.next_method = "execute_complete"
            ti.next_kwargs = {}
            ti.start_date = now
        session.commit()


def triggerer_running(db: Path) -> bool:
    """Its job row says running (whatever the log level lets it print)."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as connection:
        return connection.execute("SELECT COUNT(*) FROM job WHERE job_type = 'TriggererJob' AND state = 'running'"
                                  ).fetchone()[0] > 0


def count_events(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as connection:
        return connection.execute("SELECT COUNT(*) FROM task_instance WHERE dag_id = ? AND state = 'scheduled'",
                                  (DAG_ID,)).fetchone()[0]


def wait(what: str, check, deadline: float, interval: float = 0.05):
    while time.monotonic() < deadline:
        if (result := check()) is not None and result is not False:
            return result
        time.sleep(interval)
    raise TimeoutError(f"{what}: not before the benchmark's deadline")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--poll-interval", type=float, default=2.0)
    parser.add_argument("--target", choices=["solution", "starter"], default="solution")
    parser.add_argument("--deadline", type=float, default=900.0, help="seconds the whole benchmark may take")
    parser.add_argument("--no-fanout", action="store_true", help="skip trigger_fanout.py")
    parser.add_argument("--log-level", default="INFO",
                        help="the triggerer's logging level (INFO: every poll logs a line, as in a default deployment)")
    parser.add_argument("--baseline", action="store_true",
                        help="Airflow's own cost: N triggers that only sleep until one moment, then fire")
    parser.add_argument("--baseline-delay", type=float, default=60.0,
                        help="with --baseline: seconds from creating the deferrals to the moment they fire")
    parser.add_argument("--keep-home", action="store_true", help="keep the AIRFLOW_HOME (logs) for a look")
    args = parser.parse_args()
    args.package = "solutions" if args.target == "solution" else "starters"
    if args.baseline and args.log_level.upper() not in {"DEBUG", "INFO"}:
        parser.error("--baseline needs --log-level INFO or DEBUG: its triggers are seen starting by their logs")
    # SIGTERM (a `timeout`, a CI cancel) ends the run through the `finally` below, which stops the children.
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    deadline = time.monotonic() + args.deadline

    home = Path(tempfile.mkdtemp(prefix="bench-real-triggerer-"))
    dags = home / "dags"
    dags.mkdir()
    from tests.harness.airflow_env import airflow_env, ensure_metadata_db
    from tests.harness.airflow_processes import free_port
    from tests.harness.target import resolve

    env = {**os.environ, **airflow_env(home, resolve(args.target)),
           "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
           "AIRFLOW__TRIGGERER__CAPACITY": str(max(args.triggers, 1000)),
           "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
           "AIRFLOW__LOGGING__LOGGING_LEVEL": args.log_level,
           # Its "async thread was blocked" warnings are logged at INFO: counted at every --log-level.
           "AIRFLOW__LOGGING__NAMESPACE_LEVELS": "airflow.jobs.triggerer_job_runner=INFO",
           "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
           "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
           "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONNECT_ARGS": "tests.harness.infrastructure.SQLITE_CONNECT_ARGS",
           "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])}
    # The baseline trigger's module, for the triggerer to import by its classpath.
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(REPO_ROOT / "benchmarks")])
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    children: list[Child] = []
    try:
        server = Child([sys.executable, "-c", SERVER], env)
        children.append(server)
        health_url = server.process.stdout.readline().strip()
        env["WORKBOOK_HEALTH_URL"] = health_url
        (dags / f"{DAG_ID}.py").write_text(DAG_FILE.format(package=args.package, dag_id=DAG_ID,
                                                           triggers=args.triggers, poll_interval=args.poll_interval))
        os.environ.update(env)  # Airflow reads its configuration when it is first imported, below
        db = ensure_metadata_db(home)
        log_file = home / "triggerer.log"
        # The triggerer first, with nothing to run: its own memory, before any trigger.
        triggerer = Child([str(BIN / "airflow"), "triggerer"], env, log=log_file)
        children.append(triggerer)
        wait("the triggerer started", lambda: triggerer_running(db), deadline, 0.5)
        time.sleep(5)  # its trigger-runner subprocess up, a few empty loops done
        idle_rss_kb = group_rss_kb(triggerer.process.pid)
        setup_started = time.monotonic()
        args.fire_at = time.time() + args.baseline_delay
        create_deferred_task_instances(args, health_url)
        setup_s = time.monotonic() - setup_started
        started = time.monotonic()
        # Every trigger running (each writes its own log file when it starts), then polling: two more
        # requests each (the first poll has a random phase).
        trigger_logs = home / "logs" / f"dag_id={DAG_ID}"
        if args.log_level.upper() in {"DEBUG", "INFO"}:  # above INFO no trigger writes a line, so no file
            wait("every trigger started",
                 lambda: sum(1 for _ in trigger_logs.glob("**/*.log.trigger.*")) >= args.triggers, deadline, 0.5)
        if not args.baseline:
            all_started = int(server.ask("count"))
            wait("every trigger polling twice",
                 lambda: int(server.ask("count")) >= all_started + 2 * args.triggers, deadline, 0.5)
        running_after_s = time.monotonic() - started
        log_at_startup_end = log_file.read_text(errors="replace")
        time.sleep(2 * args.poll_interval)  # steady state
        rss_kb = group_rss_kb(triggerer.process.pid)
        log_before_flip = log_file.read_text(errors="replace")
        if args.baseline:  # the "flip" is the moment every trigger was told to fire at
            if time.time() > args.fire_at:
                raise TimeoutError(f"the triggers were not all running {args.baseline_delay:g} s after they "
                                   "were deferred: raise --baseline-delay")
            time.sleep(args.fire_at - time.time())
            flip = time.monotonic()
        else:
            flip = time.monotonic()
            server.ask("healthy")
        arrivals: list[tuple[float, int]] = []

        def all_delivered() -> bool:
            count = count_events(db)
            if not arrivals or arrivals[-1][1] != count:
                arrivals.append((time.monotonic() - flip, count))
            return count >= args.triggers

        wait("every event in the DB", all_delivered, deadline)
        delivered_s = arrivals[-1][0]
        time.sleep(1)  # the supervisor's last log lines
        log = log_file.read_text(errors="replace")
        blocked = [float(s) for s in BLOCKED.findall(log)]
        at_startup = len(BLOCKED.findall(log_at_startup_end))
        before_flip = len(BLOCKED.findall(log_before_flip))
        delivered = [t for t, count in arrivals if count > 0]
        figures = {
            "trigger": ("baseline_trigger.SleepUntilTrigger" if args.baseline
                        else f"{args.package}.custom_trigger.HttpPollingTrigger"),
            "triggers": args.triggers,
            "poll_interval_s": args.poll_interval,
            "log_level": args.log_level,
            "setup_s": round(setup_s, 1),
            "triggerer_start_to_all_polling_s": round(running_after_s, 1),
            "first_event_in_db_after_flip_s": round(delivered[0], 3) if delivered else None,
            "half_delivered_after_flip_s": round(next(t for t, c in arrivals if c >= args.triggers / 2), 3),
            "all_delivered_after_flip_s": round(delivered_s, 3),
            "all_delivered_after_flip_intervals": round(delivered_s / args.poll_interval, 2),
            "blocked_loop_warnings": len(blocked),
            "blocked_loop_warnings_while_starting_triggers": at_startup,
            "blocked_loop_warnings_while_polling": before_flip - at_startup,
            "blocked_loop_warnings_after_flip": len(blocked) - before_flip,
            "longest_blocked_s": max(blocked, default=0.0),
            "idle_triggerer_rss_mb": round(idle_rss_kb / 1024, 1),
            "triggerer_rss_mb": round(rss_kb / 1024, 1),
            "rss_kb_per_trigger": round((rss_kb - idle_rss_kb) / args.triggers, 1),
        }
        triggerer.stop()
        children.remove(triggerer)
        if not args.no_fanout:
            fanout = subprocess.run(
                [sys.executable, str(REPO_ROOT / "benchmarks" / "trigger_fanout.py"), "--triggers",
                 str(args.triggers), "--poll-interval", str(args.poll_interval), "--target", args.target],
                capture_output=True, text=True, timeout=max(deadline - time.monotonic(), 1), check=False,
            )
            figures["trigger_fanout"] = _last_json(fanout.stdout) or {"error": fanout.stderr[-500:]}
        figures["machine"] = machine()
        print(json.dumps(figures, indent=2))
        return 0
    except TimeoutError as exc:  # the figures so far: how far the triggerer got before the deadline
        started_triggers = sum(1 for _ in (home / "logs").glob("**/*.log.trigger.*"))
        print(json.dumps({"error": str(exc), "triggers": args.triggers, "triggers_started": started_triggers,
                          "seconds": round(args.deadline - (deadline - time.monotonic()), 1),
                          "machine": machine()}, indent=2))
        return 1
    finally:
        for child in children:
            child.stop()
        if args.keep_home:
            print(f"home kept: {home}", file=sys.stderr)
        else:
            shutil.rmtree(home, ignore_errors=True)


def _last_json(text: str) -> dict | None:
    start = text.find("{")
    try:
        return json.loads(text[start:]) if start >= 0 else None
    except json.JSONDecodeError:
        return None


def machine() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end"


if __name__ == "__main__":
    sys.exit(main())
