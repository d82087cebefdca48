"""Do the real-Airflow tests hold on a loaded machine? The integration and e2e tests, N times in a row against
the solutions, while a CPU hog keeps every core busy; passes and failures per test.

    .venv/bin/python benchmarks/load_check.py [--runs 10] [--target solution] [-k EXPR] [--hogs-per-core 1]
    make load-check LOAD_CHECK_ARGS="--runs 2"

Each run is one `pytest -m "integration or e2e"` in a fresh process, bounded by `--run-timeout`. The hog is
one busy-looping process per core (times `--hogs-per-core`), started before each run and stopped after it;
each hog also stops by itself after the run's time bound, and all are killed when this script exits however
it exits. The summary (JSON, also written to `--out`) counts per test: passed, failed, infrastructure
(Airflow or the machine failed, see tests/harness/infrastructure.py), error, skipped. Exit status 0 when
nothing failed.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
INFRASTRUCTURE_MARK = "INFRASTRUCTURE:"  # the final line of an infrastructure outcome

# Busy until its deadline, whatever happens to its parent.
HOG = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"

_hogs: list[subprocess.Popen] = []  # and the pytest run in progress: every group is killed on exit


def start_hogs(count: int, seconds: float) -> None:
    for _ in range(count):
        _hogs.append(subprocess.Popen([sys.executable, "-c", HOG.format(seconds=seconds)],
                                      stdin=subprocess.DEVNULL, start_new_session=True))


def stop_hogs() -> None:
    while _hogs:
        hog = _hogs.pop()
        try:
            os.killpg(hog.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        hog.wait(timeout=10)


def _on_signal(signum: int, _frame: object) -> None:
    stop_hogs()
    raise SystemExit(128 + signum)


def outcomes(junit: Path) -> dict[str, str]:
    """test id -> passed | failed | infrastructure | error | skipped, from pytest's JUnit XML."""
    results: dict[str, str] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        test_id = f"{case.get('classname', '')}::{case.get('name', '')}"
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                text = f"{child.get('message', '')}\n{child.text or ''}"
                outcome = "infrastructure" if INFRASTRUCTURE_MARK in text else (
                    "failed" if child.tag == "failure" else "error")
            elif child.tag == "skipped":
                outcome = "skipped"
        if results.get(test_id, "passed") == "passed":  # a teardown error after a pass counts
            results[test_id] = outcome
    return results


def run_once(index: int, args: argparse.Namespace, work: Path) -> tuple[dict[str, str], float, int]:
    junit = work / f"run-{index}.xml"
    log = work / f"run-{index}.log"
    command = [sys.executable, "-m", "pytest", f"--target={args.target}", "-m", "integration or e2e",
               "-p", "no:randomly", "-q", f"--junitxml={junit}"]
    if args.k:
        command += ["-k", args.k]
    start_hogs((os.cpu_count() or 1) * args.hogs_per_core, args.run_timeout)
    started = time.monotonic()
    try:
        with open(log, "wb") as out:
            process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
            _hogs.append(process)  # an interrupted check leaves no test run (nor its Airflow) behind
            try:
                returncode = process.wait(timeout=args.run_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                returncode = -1
    finally:
        stop_hogs()
    elapsed = time.monotonic() - started
    results = outcomes(junit) if junit.exists() else {}
    if returncode == -1:
        results["<run>"] = f"timed out after {args.run_timeout:g} s"
    return results, elapsed, returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--target", default="solution", choices=["solution", "starter"])
    parser.add_argument("-k", default="", help="pytest -k expression (default: every integration and e2e test)")
    parser.add_argument("--hogs-per-core", type=int, default=1)
    parser.add_argument("--run-timeout", type=float, default=1800.0, help="seconds one run may take")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "load-check.json")
    args = parser.parse_args()

    atexit.register(stop_hogs)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    per_test: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    runs = []
    with tempfile.TemporaryDirectory(prefix="load-check-") as tmp:
        work = Path(tmp)
        for index in range(1, args.runs + 1):
            load_before = os.getloadavg()[0]
            results, elapsed, returncode = run_once(index, args, work)
            for test_id, outcome in results.items():
                per_test[test_id][outcome] += 1
            bad = sorted(t for t, o in results.items() if o != "passed")
            runs.append({"run": index, "seconds": round(elapsed, 1), "pytest_exit": returncode,
                         "load_average_at_start": round(load_before, 2), "not_passed": bad})
            print(f"run {index}/{args.runs}: {len(results) - len(bad)}/{len(results)} passed in {elapsed:.0f} s"
                  + (f"; not passed: {', '.join(bad)}" if bad else ""), flush=True)
            if bad:  # keep the log of a run that did not pass
                keep = args.out.parent / f"load-check-run-{index}.log"
                keep.parent.mkdir(parents=True, exist_ok=True)
                keep.write_bytes((work / f"run-{index}.log").read_bytes())
    failures = sum(count for counts in per_test.values() for outcome, count in counts.items() if outcome != "passed")
    summary = {
        "runs": args.runs, "target": args.target, "cores": os.cpu_count(),
        "hogs": (os.cpu_count() or 1) * args.hogs_per_core, "tests": len(per_test), "failures": failures,
        "per_test": {test: dict(counts) for test, counts in sorted(per_test.items())}, "per_run": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".tmp")
    tmp_out.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(tmp_out, args.out)
    print(json.dumps(summary, indent=2))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
