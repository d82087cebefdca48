"""`workbook mistakes`: the catalogue of plausible wrong solutions, each caught by the criterion it breaks.

A mutation changes one token; a learner gets an idea wrong. Each file of `tests/workbook/mistakes/<exercise>/`
is one such idea: a whole class, method or DAG written the way a learner who misread one sentence of the
chapter would write it, with that sentence quoted. It is graded like a submission: a copy of the workbook
whose starters/ are the reference solutions with the mistake applied, run against the tests of the one
criterion it names. The mistake is caught when that criterion earns nothing; a catch by another criterion's
tests does not count (the learner would be told the wrong thing).

The entries and their file format: grading.instrument.catalogue; the saved verdicts and the report made of
them: grading.instrument.mistakes_report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grading.core.atomic import write_text
from grading.core.rubric import Exercise, Rubric, load
from grading.instrument.catalogue import Mistake, MistakeError, catalogue
from grading.instrument.isolation import copy_workbook, e2e_criteria
from grading.instrument.mistakes_report import REPORT, RESULTS, load_results, report_text
from grading.instrument.splice import solution_dag
from grading.scoring.grade import grade
from grading.suite.options import RunOptions, graded_env
from grading.suite.runner import run_suite

MAX_MESSAGE = 300
# A failure that says the mistake's own code is broken (a name it forgot to import), not that its idea is wrong.
CRASH = re.compile(r"\b(NameError|ImportError|ModuleNotFoundError|SyntaxError|IndentationError)\b")


def _exercise(rubric: Rubric, exercise_id: str) -> Exercise:
    for exercise in rubric.exercises:
        if exercise.id == exercise_id:
            return exercise
    raise MistakeError(f"no exercise {exercise_id!r} in the rubric")


def build_tree(root: Path, exercise: Exercise, mistake: Mistake, into: Path) -> None:
    """A copy of the workbook whose starters/ are the reference solutions of `exercise` with `mistake` in."""
    copy_workbook(root, into)
    module = f"{exercise.module}.py"
    reference = (root / "solutions" / module).read_text(encoding="utf-8")
    for old, new in mistake.replacements:  # a reading of the reference: the same code, one choice made otherwise
        if old not in reference:
            raise MistakeError(f"{mistake.path}: the reference solutions/{module} has no {old!r} to replace")
        reference = reference.replace(old, new)
    starter = into / "starters" / module
    starter.write_text(reference + ("\n\n" + mistake.code if mistake.target == "module" else ""), encoding="utf-8")
    for dag in sorted((root / "solutions" / "dags").glob("*.py")):
        (into / "starters" / "dags" / dag.name).write_text(solution_dag(dag.read_text(encoding="utf-8")),
                                                          encoding="utf-8")
    if mistake.target != "module":
        (into / "starters" / mistake.target).write_text(solution_dag(mistake.code), encoding="utf-8")


def import_problem(tree: Path, exercise: Exercise, mistake: Mistake) -> str | None:
    """Why the mistaken module (or DAG file) does not even import: a broken mistake proves nothing."""
    what = (f"import starters.{exercise.module}" if mistake.target == "module" else
            f"import runpy; runpy.run_path('starters/{mistake.target}')")
    done = subprocess.run([sys.executable, "-c", what], cwd=tree, env=graded_env(tree), capture_output=True,
                          text=True, timeout=300, check=False)
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).strip().splitlines()
    return lines[-1] if lines else f"exit {done.returncode}"


@dataclass
class Verdict:
    mistake: str
    criterion: str
    violates: str
    digest: str = ""  # of what the verdict depends on (see digest()): a stale verdict shows
    caught: bool = False
    status: str = "missed"  # a mistake: caught | missed | gap (missed, declared) | broken; an alternative: passes | fails | broken
    failing_tests: dict[str, str] = field(default_factory=dict)  # node id -> first line of why
    failing_criteria: list[str] = field(default_factory=list)  # an alternative's criteria that earn nothing
    tests_run: int = 0
    seconds: float = 0.0


def digest(root: Path, mistake: Mistake) -> str:
    """A hash of what a verdict depends on: the entry, its exercise's reference module and DAG files, the
    exercise's test helpers (conftest and the like) and every test file that proves a criterion it is judged
    by. A verdict whose digest differs was made of other files: run it again."""
    exercise = _exercise(load(root), mistake.exercise)
    judged = ({mistake.criterion} if mistake.kind == "mistake" else
              {c.id for t in exercise.tasks if t.id == mistake.criterion for c in t.criteria})
    dags = sorted({d for task in exercise.tasks for d in task.dags})
    tests = [p for p in sorted((root / exercise.test_folder).rglob("*.py"))
             if not p.name.startswith("test_") or any(f'"{c}"' in p.read_text(encoding="utf-8") for c in judged)]
    files = [root / "solutions" / f"{exercise.module}.py", *(root / "solutions" / "dags" / d for d in dags), *tests]
    hashed = hashlib.sha256(mistake.code.encode("utf-8"))
    for path in files:
        hashed.update(path.relative_to(root).as_posix().encode("utf-8") + b"\0" + path.read_bytes() + b"\0")
    return hashed.hexdigest()


def check(root: Path, rubric: Rubric, mistake: Mistake, *, per_test_timeout: float) -> Verdict:
    verdict = Verdict(mistake=mistake.path, criterion=mistake.criterion, violates=mistake.violates,
                      digest=digest(root, mistake))
    exercise = _exercise(rubric, mistake.exercise)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"workbook-mistake-{mistake.name}-") as scratch:
        tree = Path(scratch) / "repo"
        # A module that does not import fails every test with the import's error: a broken verdict below.
        try:
            build_tree(root, exercise, mistake, tree)
            problem = None
        except MistakeError as error:
            problem = str(error)
        if problem:
            verdict.status, verdict.failing_tests = "broken", {"(import)": problem[:MAX_MESSAGE]}
            verdict.seconds = time.monotonic() - started
            return verdict
        selection = (f"--grading-criteria={mistake.criterion}" if mistake.kind == "mistake" else
                     f"--grading-tasks={mistake.criterion}")
        run = run_suite(RunOptions(root=tree, target="starter", paths=[exercise.test_folder],
                                   per_test_timeout=per_test_timeout, run_timeout=1800.0,
                                   extra_args=("-p", "grading.learner.selection", selection)))
        graded = grade(load(tree), [exercise], run, target="starter", reveal_hidden=True)
    verdict.seconds = time.monotonic() - started
    judged = ({mistake.criterion} if mistake.kind == "mistake" else
              {c.id for t in exercise.tasks if t.id == mistake.criterion for c in t.criteria})
    own = [t for t in run.tests.values() if judged & set(t.criteria)]
    verdict.tests_run = sum(t.outcome != "not_run" for t in own)
    verdict.failing_tests = {t.nodeid: _first_line(t.message) for t in own if t.outcome not in ("passed", "not_run")}
    results = [c for task in graded.exercises[0].tasks for c in task.criteria if c.id in judged]
    crashed = [m for m in verdict.failing_tests.values() if CRASH.search(m)]
    if mistake.kind == "alternative":
        verdict.failing_criteria = [c.id for c in results if not c.passed]
        verdict.caught = not verdict.failing_criteria and verdict.tests_run > 0
        verdict.status = "passes" if verdict.caught else "fails"
    elif crashed and len(crashed) == len(verdict.failing_tests):
        verdict.status = "broken"  # every catch is a NameError or the like: the mistake's code, not its idea
    else:
        verdict.caught = not results[0].passed and verdict.tests_run > 0
        verdict.status = "caught" if verdict.caught else ("gap" if mistake.gap else "missed")
    return verdict


def _first_line(message: str) -> str:
    lines = [line for line in message.strip().splitlines() if line.strip()]
    return (lines[0] if lines else "")[:MAX_MESSAGE]


def run_catalogue(root: Path, mistakes: list[Mistake], *, jobs: int, per_test_timeout: float,
                  report=print) -> list[Verdict]:
    """Every mistake checked, `jobs` at a time; those whose criterion has e2e tests one at a time."""
    rubric = load(root)
    e2e = e2e_criteria(root, {m.exercise for m in mistakes}) if mistakes else set()

    def one(mistake: Mistake) -> Verdict:
        verdict = check(root, rubric, mistake, per_test_timeout=per_test_timeout)
        report(f"  {verdict.status:<7} {mistake.path} ({verdict.criterion}, {len(verdict.failing_tests)}/"
               f"{verdict.tests_run} tests failed, {verdict.seconds:.0f} s)")
        return verdict

    slow = [m for m in mistakes if m.criterion in e2e]
    fast = [m for m in mistakes if m.criterion not in e2e]
    with ThreadPoolExecutor(max_workers=1) as slow_lane, \
            ThreadPoolExecutor(max_workers=max(1, jobs - (1 if slow else 0))) as fast_lanes:
        futures = {m.path: slow_lane.submit(one, m) for m in slow}
        futures |= {m.path: fast_lanes.submit(one, m) for m in fast}
        return [futures[m.path].result() for m in mistakes]


# ---- results -----------------------------------------------------------------------------------------------
def save(root: Path, verdicts: list[Verdict]) -> None:
    """Each exercise's verdicts in benchmarks/mistakes/<exercise>.json, merged with what is there already."""
    by_exercise: dict[str, list[Verdict]] = {}
    for verdict in verdicts:
        by_exercise.setdefault(verdict.criterion.split(".", 1)[0], []).append(verdict)
    for exercise, fresh in by_exercise.items():
        path = root / RESULTS / f"{exercise}.json"
        kept = {v["mistake"]: v for v in load_results(path)}
        kept |= {v.mistake: asdict(v) for v in fresh}
        write_text(path, json.dumps(sorted(kept.values(), key=lambda v: v["mistake"]), indent=1) + "\n")


def fresh_results(root: Path) -> set[str]:
    """The entries whose saved verdict was made of the files as they are now (its digest still matches)."""
    fresh, saved = set(), {}
    for entry in catalogue(root):
        if entry.exercise not in saved:
            saved[entry.exercise] = {v["mistake"]: v for v in load_results(root / RESULTS / f"{entry.exercise}.json")}
        if saved[entry.exercise].get(entry.path, {}).get("digest") == digest(root, entry):
            fresh.add(entry.path)
    return fresh


# ---- the command -------------------------------------------------------------------------------------------
def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("mistakes", help="run the catalogue of plausible wrong solutions (instructors)",
                                 description="Check that each mistake in tests/workbook/mistakes/ is caught by the "
                                             "tests of the criterion it breaks.")
    parser.add_argument("exercises", nargs="*", help="exercise ids (default: all)")
    parser.add_argument("--only", nargs="+", default=None, metavar="FILE",
                        help="these mistake files only (paths or names)")
    parser.add_argument("--one-per-criterion", action="store_true",
                        help="the first mistake (by name) of each criterion and every alternative: what CI re-runs")
    parser.add_argument("--import-only", action="store_true",
                        help="only check that each mistake's code imports (no tests run)")
    parser.add_argument("--stale", action="store_true",
                        help="only the entries whose saved result no longer matches the files it depends on")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=120.0, dest="per_test_timeout")
    parser.add_argument("--no-save", action="store_true", help="print the verdicts, write no results")
    parser.add_argument("--report-only", action="store_true", help="regenerate benchmarks/mistakes.md only")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    root: Path = args.root
    if args.report_only:
        (root / REPORT).write_text(report_text(root), encoding="utf-8")
        return 0
    try:
        mistakes = catalogue(root, args.exercises or None)
    except MistakeError as error:
        print(f"workbook mistakes: {error}", file=sys.stderr)
        return 2
    if args.only:
        wanted = {re.sub(r"\.(mistake|alternative)$", "", Path(o).name) for o in args.only}
        mistakes = [m for m in mistakes if m.name in wanted]
    if args.stale:
        fresh = fresh_results(root)
        mistakes = [m for m in mistakes if m.path not in fresh]
    if args.one_per_criterion:
        first: dict[str, Mistake] = {}
        for entry in sorted(mistakes, key=lambda m: m.path):
            if entry.kind == "mistake":
                first.setdefault(entry.criterion, entry)
        mistakes = [m for m in mistakes if m.kind == "alternative" or first.get(m.criterion) is m]
    if not mistakes:
        print("workbook mistakes: no mistake chosen", file=sys.stderr)
        return 2
    if args.import_only:
        rubric = load(root)
        broken = 0
        for mistake in mistakes:
            exercise = _exercise(rubric, mistake.exercise)
            with tempfile.TemporaryDirectory(prefix="workbook-mistake-") as scratch:
                tree = Path(scratch) / "repo"
                build_tree(root, exercise, mistake, tree)
                problem = import_problem(tree, exercise, mistake)
            broken += bool(problem)
            print(f"  {'broken' if problem else 'imports'} {mistake.path}{': ' + problem if problem else ''}")
        return 1 if broken else 0
    print(f"{len(mistakes)} mistakes, {args.jobs} at a time")
    started = time.monotonic()
    verdicts = run_catalogue(root, mistakes, jobs=args.jobs, per_test_timeout=args.per_test_timeout,
                             report=lambda line: print(line, flush=True))
    if not args.no_save:
        save(root, verdicts)
        (root / REPORT).write_text(report_text(root), encoding="utf-8")
    not_caught = [v for v in verdicts if not v.caught and v.status != "gap"]
    print(f"{len(verdicts) - len(not_caught)}/{len(verdicts)} as expected (mistakes caught by their own criterion, "
          f"alternatives earning their whole task) in {time.monotonic() - started:.0f} s")
    for verdict in not_caught:
        print(f"  {verdict.status}: {verdict.mistake} ({verdict.criterion})")
        for nodeid, why in verdict.failing_tests.items():
            print(f"      {nodeid}: {why}")
    return 1 if not_caught else 0
