"""What the grading sandbox costs: a full `grade-submission` of the reference solutions (copied into a
learner's starters/) in the sandbox and with --no-sandbox, one after the other, and one sandboxed start.

    .venv/bin/python benchmarks/sandbox_overhead.py            # both full grades (about 2 x 5 min)
    .venv/bin/python benchmarks/sandbox_overhead.py --startup  # only the cost of starting one sandbox
    .venv/bin/python benchmarks/sandbox_overhead.py --judge-and-subject  # the split against one process

Prints JSON: wall and CPU seconds (the grader's children: pytest, Airflow's processes) of each grade, the
score each earned, and the overhead in percent (wall time; CPU time only for the unsandboxed grade).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def reference_submission(into: Path) -> Path:
    """A learner's copy whose starters/ are the reference solutions (imports renamed)."""
    starters = into / "starters"
    shutil.copytree(ROOT / "solutions", starters, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copyfile(ROOT / "starters" / "_todo.py", starters / "_todo.py")
    for path in starters.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r"\b(from|import) solutions\.", r"\1 starters.", text), encoding="utf-8")
    return into


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_grade(submission: Path, out: Path, *extra: str) -> dict:
    cpu, started = children_cpu(), time.monotonic()
    done = subprocess.run([sys.executable, "-m", "grading", "--root", str(ROOT), "grade-submission", str(submission),
                           "--out", str(out), "--format", "json", *extra], capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {"wall_s": round(wall, 1), "cpu_s": round(children_cpu() - cpu, 1), "exit": done.returncode,
            "verdict": results["verdict"], "points": f"{results['total']['points']}/{results['total']['max_points']}"}


def startup() -> dict:
    from grading.suite import sandbox
    from grading.suite.options import sandbox_env

    bwrap = sandbox.probe()
    with tempfile.TemporaryDirectory() as scratch:
        tree = Path(scratch) / "tree"
        (tree / ".cache").mkdir(parents=True)
        tree.chmod(0o755)
        inner = [sys.executable, "-c", "import airflow"]
        wrapped = sandbox.command(bwrap, inner, tree=tree, cache=tree / ".cache", env=sandbox_env(tree),
                                  python_prefixes=sandbox.python_prefixes())
        figures = {}
        for name, command in (("bare_s", inner), ("sandboxed_s", wrapped)):
            runs = []
            for _ in range(2):
                started = time.monotonic()
                subprocess.run(command, check=True, capture_output=True,
                               preexec_fn=lambda: sandbox.apply_limits(sandbox.Limits()))
                runs.append(time.monotonic() - started)
            figures[name] = round(min(runs), 3)
    figures["sandbox_start_s"] = round(figures["sandboxed_s"] - figures["bare_s"], 3)
    return {"python_import_airflow": figures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--startup", action="store_true", help="only time starting one sandbox")
    parser.add_argument("--judge-and-subject", action="store_true",
                        help="one sandboxed grade in one test process, one with --judge-and-subject (the split)")
    args = parser.parse_args()
    figures = startup()
    if args.judge_and_subject:
        with tempfile.TemporaryDirectory(prefix="workbook-bench-") as scratch:
            submission = reference_submission(Path(scratch) / "learner")
            split = timed_grade(submission, Path(scratch) / "split", "--judge-and-subject")
            print(f"judge and subject: {split}", file=sys.stderr, flush=True)
            one = timed_grade(submission, Path(scratch) / "one-process", "--one-process")
            print(f"one process: {one}", file=sys.stderr, flush=True)
        split.pop("cpu_s")
        one.pop("cpu_s")
        figures |= {"judge_and_subject": split, "one_process": one,
                    "split_overhead_wall_percent": round(100 * (split["wall_s"] / one["wall_s"] - 1), 1)}
    elif not args.startup:
        with tempfile.TemporaryDirectory(prefix="workbook-bench-") as scratch:
            submission = reference_submission(Path(scratch) / "learner")
            sandboxed = timed_grade(submission, Path(scratch) / "sandboxed")
            print(f"sandboxed: {sandboxed}", file=sys.stderr, flush=True)
            bare = timed_grade(submission, Path(scratch) / "bare", "--no-sandbox")
            print(f"no sandbox: {bare}", file=sys.stderr, flush=True)
        # bwrap's own PID 1 reaps what runs inside, so a sandboxed grade's CPU time never reaches
        # RUSAGE_CHILDREN: only the wall times compare.
        sandboxed.pop("cpu_s")
        figures |= {"sandboxed": sandboxed, "no_sandbox": bare,
                    "overhead_wall_percent": round(100 * (sandboxed["wall_s"] / bare["wall_s"] - 1), 1)}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
