"""How fast `workbook watch` answers a save, and what one re-run costs, next to a bare `import airflow.sdk`.

    .venv/bin/python benchmarks/watch_loop.py [--exercise ex04] [--saves 5]

It copies the workbook to a temp folder (your starters stay untouched), starts `workbook watch` there, saves
the exercise's starter module N times and reads the watch's own per-run record (`--stats`): when the re-run
started after the save, when its result was on screen, and the CPU time of the forked run (its rusage).
The baseline is the CPU time of `python -c "import airflow.sdk"` in a fresh process, the cost a watch
without a warm worker would pay on every save before running a single test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = shutil.ignore_patterns(".venv", ".venv-lab", ".git", ".cache", "__pycache__", "*.pyc", "reports", "build")


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} cores ({model}), load average {load}, Python {platform.python_version()}"


def bare_import_cpu(runs: int) -> list[float]:
    costs = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", "import airflow.sdk"], check=True, cwd=tempfile.gettempdir())
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        costs.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return costs


def wait_for_lines(path: Path, count: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            if len(lines) >= count:
                return lines
        time.sleep(0.01)
    raise TimeoutError(f"the watch recorded fewer than {count} runs in {timeout:g} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exercise", default="ex04")
    parser.add_argument("--saves", type=int, default=5)
    parser.add_argument("--baseline-runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for one run")
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from grading.core.rubric import load

    exercise = load(ROOT).exercise(args.exercise)
    print(f"machine: {machine()}")
    baseline = bare_import_cpu(args.baseline_runs)
    print(f"bare `python -c 'import airflow.sdk'`: CPU {statistics.median(baseline):.2f} s (median of {len(baseline)})")

    with tempfile.TemporaryDirectory(prefix="workbook-watch-bench-") as scratch:
        copy = Path(scratch) / "workbook"
        shutil.copytree(ROOT, copy, ignore=SKIPPED)
        stats = Path(scratch) / "stats.jsonl"
        starter = copy / "starters" / f"{exercise.module}.py"
        started = time.monotonic()
        watch = subprocess.Popen([sys.executable, "-m", "grading", "--root", str(copy), "watch", exercise.id,
                                  "--stats", str(stats)], cwd=copy, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            first = wait_for_lines(stats, 1, args.timeout)
            print(f"watch ready (worker warm, every fast test of {exercise.id} run once): "
                  f"{time.monotonic() - started:.1f} s; first run {first[0]['tests']} tests, "
                  f"CPU {first[0]['cpu_s']:.2f} s")
            time.sleep(1.0)  # the watcher is armed once the first screen is out
            text = starter.read_text(encoding="utf-8")
            rows = []
            for number in range(1, args.saves + 1):
                saved_at = time.time()
                tmp = starter.with_suffix(".tmp")
                tmp.write_text(text + f"\n# save {number}\n", encoding="utf-8")
                tmp.replace(starter)  # how editors save: one rename, one change event
                run = wait_for_lines(stats, 1 + number, args.timeout)[-1]
                rows.append({"start_after_save_s": run["at"] - run["wall_s"] - saved_at,
                             "result_after_save_s": run["at"] - saved_at, "cpu_s": run["cpu_s"],
                             "tests": run["tests"], "tasks": run["tasks"]})
                time.sleep(0.5)
        finally:
            os.killpg(watch.pid, 15)
            watch.wait(timeout=30)

    print(f"\n| save | re-run started after | result shown after | CPU of the re-run | tests ({rows[0]['tasks'][0]}) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for number, row in enumerate(rows, start=1):
        print(f"| {number} | {row['start_after_save_s']:.2f} s | {row['result_after_save_s']:.2f} s | "
              f"{row['cpu_s']:.2f} s | {row['tests']} |")
    cpu = statistics.median(r["cpu_s"] for r in rows)
    ratio = cpu / statistics.median(baseline)
    print(f"\nmedian: re-run started {statistics.median(r['start_after_save_s'] for r in rows):.2f} s after the save, "
          f"result after {statistics.median(r['result_after_save_s'] for r in rows):.2f} s; CPU {cpu:.2f} s = "
          f"{ratio:.2f}x a bare import of airflow.sdk")
    return 0


if __name__ == "__main__":
    sys.exit(main())
