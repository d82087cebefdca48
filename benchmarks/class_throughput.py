"""Class-grading throughput: how many submissions an hour `workbook grade-class` grades, and how it scales
with --jobs.

    .venv/bin/python benchmarks/class_throughput.py [--submissions 2] [--jobs 1 2] [--kind solution|starter]
    .venv/bin/python benchmarks/class_throughput.py --kind fixture --submissions 10 --jobs 1 2

`--kind fixture` grades copies of a fixture submission (tests/workbook/grading_fixtures/, `half_done`)
against the tiny fixture workbook: seconds per submission instead of minutes, so it measures what
grade-class and grade-submission themselves cost per submission (processes, copies, pytest start-up).

Builds N learner copies of this workbook (the learner release, with the reference solutions copied into
starters/ for `--kind solution`, so every test runs to the end; the shipped starters for `--kind starter`,
where most tests stop at the first NotImplementedError), then grades the folder once per --jobs value with
the real suite, each time into a fresh class folder (nothing resumed). Reported per --jobs value: the wall
time, submissions per hour, seconds per submission as grade-class saw them, the scores (to show the runs
graded the same), and the machine's load average before and after (the reference machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))


def make_fixture_class(folder: Path, count: int) -> Path:
    from tests.workbook.grading_fixtures.builder import make_submission, make_workbook

    workbook = make_workbook(folder.parent / "fixture-workbook")
    for number in range(1, count + 1):
        make_submission("half_done", workbook, folder / f"learner{number:02d}")
    return workbook


def make_class(folder: Path, count: int, kind: str) -> None:
    from grading.release.build import build

    template = folder / ".template"
    release = build(REPO_ROOT, template)
    if release.leaks:
        raise SystemExit(f"the release leaks solution code: {release.leaks[:3]}")
    if kind == "solution":
        shutil.copytree(REPO_ROOT / "solutions", template / "starters", dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for number in range(1, count + 1):
        shutil.copytree(template, folder / f"learner{number:02d}", symlinks=True)
    shutil.rmtree(template)


def grade(root: Path, folder: Path, out: Path, jobs: int) -> dict:
    load_before = os.getloadavg()
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "grading", "--root", str(root), "grade-class", str(folder),
                           "--out", str(out), "--jobs", str(jobs)], capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    records = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("learners/*/record.json"))]
    return {
        "jobs": jobs,
        "submissions": len(records),
        "exit_code": done.returncode,
        "wall_s": round(wall, 1),
        "submissions_per_hour": round(3600 * len(records) / wall, 1) if wall else None,
        "seconds_per_submission_each": [r["seconds"] for r in records],
        "scores": [f"{r['points']}/{r['max_points']}" if r["points"] is not None else r["verdict"]
                   for r in records],
        "load_average_1m_before_after": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=2)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--kind", choices=("solution", "starter", "fixture"), default="solution")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="workbook-class-bench-") as scratch:
        folder = Path(scratch) / "class"
        folder.mkdir()
        if args.kind == "fixture":
            root = make_fixture_class(folder, args.submissions)
        else:
            root = REPO_ROOT
            make_class(folder, args.submissions, args.kind)
        runs = [grade(root, folder, Path(scratch) / f"out-jobs{jobs}", jobs) for jobs in args.jobs]
    print(json.dumps({"kind": args.kind, "cores_available": len(os.sched_getaffinity(0)), "runs": runs},
                     indent=2))


if __name__ == "__main__":
    main()
