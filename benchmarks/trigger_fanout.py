"""How cheap is waiting in the triggerer? N HttpPollingTriggers in one event loop vs N poke-mode sensors.

    .venv/bin/python benchmarks/trigger_fanout.py [--triggers 1000] [--poll-interval 2] [--target solution]

The flapping health server runs in a child process (as the real API would be elsewhere), pinned to
maintenance. All N triggers start in this process's one event loop and poll it; once every trigger has
polled at least twice, the server is flipped healthy. Reported:

- time from the flip until the last trigger fired, in seconds and in poll intervals;
- the longest event-loop stall (a 10 ms ticker's worst lateness), over the whole run and after start-up;
- CPU seconds per trigger per poll, and resident memory per trigger (RSS growth / N);
- for comparison, the same wait as N poke-mode sensors: N worker slots held for the whole wait, and
  N times the memory of one task process (measured: a fresh interpreter that imports Airflow and the
  operator and pokes once, as `deferrable=False` does).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# 1000 triggers x a "not ready" line per poll would measure the terminal, not the triggers (before Airflow
# is imported: it reads its configuration then).
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
sys.path.insert(0, str(REPO_ROOT))

# The simulator in its own process; it reads "healthy" / "maintenance" lines from stdin.
SERVER = """
import sys
from fixtures.clock import SimClock
from fixtures.health_server import HealthServer
server = HealthServer(clock=SimClock(time_scale=0)).start()
server.force("maintenance")
print(server.health_url, flush=True)
for line in sys.stdin:
    server.force(line.strip())
    print("forced", line.strip(), flush=True)
server.stop()
"""

# One poke-mode task process: Airflow, the operator, one synchronous check.
WORKER = """
import asyncio, resource, sys
from {package}.custom_trigger import HttpPollingOperator
op = HttpPollingOperator(task_id="wait", endpoint=sys.argv[1], expected_value="healthy", deferrable=False)
asyncio.run(op._trigger().check_once())
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def stall_monitor(samples: list[tuple[float, float]], stop: asyncio.Event, tick: float = 0.01) -> None:
    """Record (when, lateness) of a `tick`-second sleep: how long the loop could not run anything else."""
    while not stop.is_set():
        before = time.monotonic()
        await asyncio.sleep(tick)
        now = time.monotonic()
        samples.append((now, now - before - tick))


async def fanout(module, url: str, n: int, poll_interval: float, server: subprocess.Popen) -> dict:
    triggers = [
        module.HttpPollingTrigger(url, response_check="status", expected_value="healthy",
                                  poll_interval=poll_interval, timeout=600)
        for _ in range(n)
    ]
    fired: list[float] = []

    async def wait(trigger) -> None:
        async for event in trigger.run():
            assert event.payload["status"] == "success", event.payload
            fired.append(time.monotonic())

    gc_pauses: list[float] = []
    gc_started = [0.0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_started[0] = time.monotonic()
        elif info["generation"] == 2:
            gc_pauses.append(time.monotonic() - gc_started[0])

    gc.callbacks.append(on_gc)
    samples: list[tuple[float, float]] = []
    stop = asyncio.Event()
    monitor = asyncio.create_task(stall_monitor(samples, stop))
    rss_before = rss_bytes()
    started = time.monotonic()
    cpu_started = time.process_time()
    tasks = [asyncio.create_task(wait(t)) for t in triggers]
    # Let every trigger make its first polls, then measure the steady state for two intervals.
    await asyncio.sleep(poll_interval * 1.5)
    steady_from = time.monotonic()
    cpu_steady = time.process_time()
    await asyncio.sleep(poll_interval * 2)
    steady_cpu = time.process_time() - cpu_steady
    steady_seconds = time.monotonic() - steady_from
    rss_waiting = rss_bytes()
    # From the moment we ask (a conservative start for "fired after the flip"); the answer is awaited in a
    # thread, so the benchmark itself does not stall the loop it measures.
    flipped = time.monotonic()
    await asyncio.to_thread(_force, server, "healthy")
    await asyncio.gather(*tasks)
    done = time.monotonic()
    stop.set()
    await monitor
    gc.callbacks.remove(on_gc)
    startup = [late for when, late in samples if when < steady_from]
    after = [late for when, late in samples if when >= steady_from]
    polls = n * steady_seconds / poll_interval
    return {
        "triggers": n,
        "poll_interval_s": poll_interval,
        "all_fired_after_flip_s": round(max(fired) - flipped, 3),
        "all_fired_after_flip_intervals": round((max(fired) - flipped) / poll_interval, 2),
        "longest_stall_ms": round(max(startup + after) * 1000, 1),
        "longest_stall_after_startup_ms": round(max(after) * 1000, 1),
        "full_gc_runs": len(gc_pauses),
        "longest_full_gc_pause_ms": round(max(gc_pauses, default=0) * 1000, 1),
        "cpu_ms_per_trigger_per_poll": round(steady_cpu * 1000 / polls, 3),
        "cpu_percent_of_one_core_while_waiting": round(100 * steady_cpu / steady_seconds, 1),
        "rss_kb_per_trigger": round((rss_waiting - rss_before) / n / 1024, 1),
        "wall_s": round(done - started, 2),
        "cpu_s_total": round(time.process_time() - cpu_started, 2),
    }


def _force(server: subprocess.Popen, state: str) -> None:
    server.stdin.write(f"{state}\n")
    server.stdin.flush()
    server.stdout.readline()


def worker_rss_mb(package: str, url: str) -> float:
    out = subprocess.run([sys.executable, "-c", WORKER.format(package=package), url], capture_output=True,
                         text=True, check=True, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    return int(out.stdout.strip().splitlines()[-1]) / 1024  # ru_maxrss is in KB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--triggers", type=int, default=1000, help="N (the triggerer's default capacity is 1000)")
    parser.add_argument("--poll-interval", type=float, default=2.0)
    parser.add_argument("--target", choices=["solution", "starter"], default="solution")
    parser.add_argument("--no-gc-freeze", action="store_true",
                        help="leave Airflow's import-time objects to the collector (full collections then walk "
                        "them all: 100-250 ms pauses here, whatever the triggers do)")
    args = parser.parse_args(argv)
    package = {"solution": "solutions", "starter": "starters"}[args.target]
    module = importlib.import_module(f"{package}.custom_trigger")
    if not args.no_gc_freeze:
        # Long-running Airflow processes freeze their start-up heap the same way (dag_processing/manager.py).
        gc.collect()
        gc.freeze()
    # 1000 sockets to the server plus the server's own: both processes need the file descriptors.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 4 * args.triggers + 256), hard), hard))
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    try:
        url = server.stdout.readline().strip()
        report = asyncio.run(fanout(module, url, args.triggers, args.poll_interval, server))
        worker_mb = worker_rss_mb(package, url)
    finally:
        server.stdin.close()
        server.wait(timeout=30)
    report["poke_mode_worker_slots_held"] = args.triggers
    report["poke_mode_mb_per_worker"] = round(worker_mb, 1)
    report["poke_mode_total_mb"] = round(worker_mb * args.triggers)
    report["deferred_total_mb"] = round(report["rss_kb_per_trigger"] * args.triggers / 1024, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
