"""`grade-class ROSTER_OR_DIR --out DIR`: grade a whole class, one sandboxed `grade-submission` per learner,
and write the gradebook (`gradebook.csv`, `summary.md`, `histogram.png`); `gradebook DIR` rebuilds them.

Each submission is graded in its own `python -m grading grade-submission` process, N at a time, so one
submission that crashes, hangs or is refused costs only its own row. Every learner gets a folder
`DIR/learners/LEARNER/` (grade-submission's files, and `record.json`, which marks it done): the folder
is built aside and moved into place in one rename, so an interrupted run leaves either the old folder or
the new one, and a second run grades only what is missing (or changed).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from grading.core.atomic import write_bytes, write_json, write_text
from grading.core.errors import GradingError, RosterError
from grading.core.git_head import read_commit
from grading.core.processes import stop_tree
from grading.core.rubric import Rubric, load
from grading.core.verdicts import VERDICT_FLAG, VERDICTS
from grading.learner.grade import DEFAULT_PER_TEST_TIMEOUT

RECORD_SCHEMA = "workbook-class-record/1"
RECORD_NAME = "record.json"
LEARNERS = "learners"
STAGING = ".staging"
# Exit codes of grade-class and gradebook: some rows have no grade (each says why); no row has one (grading
# itself is broken here, as on a machine where the sandbox cannot run).
EXIT_SOME_NOT_GRADED, EXIT_NONE_GRADED = 2, 3
LEARNER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
COMMIT = re.compile(r"[0-9a-f]{40}")
URL = re.compile(r"^(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")
# A grade-submission that outlives its own --run-timeout by this much is stuck: it is killed.
GRACE_SECONDS = 300.0
STOP_SECONDS = 15.0  # for an interrupted grade-submission to stop its own tests
HISTOGRAM_BINS = 10
MOST_MISSED = 10
CREDENTIAL_NAME = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE|^GIT_CONFIG_|^AWS_|^GH_", re.I)
GRADING_HOME = Path(__file__).resolve().parents[2]
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_LFS_SKIP_SMUDGE": "1", "GIT_CONFIG_NOSYSTEM": "1"}


@dataclass(frozen=True)
class Entry:
    """One learner of the class: where the submission is, and the commit to grade (None: as it is)."""
    learner: str
    repo: str
    commit: str | None = None
    line: int = 0

    @property
    def is_url(self) -> bool:
        return bool(URL.match(self.repo))


# --- the roster ------------------------------------------------------------------------------------------

def read_roster(source: Path) -> list[Entry]:
    """A folder (each sub-folder is a learner's repo, named after it) or a CSV roster (learner,repo,commit)."""
    if source.is_dir():
        entries = [Entry(learner=p.name, repo=str(p.resolve()))
                   for p in sorted(source.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        for entry in entries:
            _check_name(entry.learner, f"{source}/{entry.learner}")
        if not entries:
            raise RosterError(f"{source} has no sub-folder: expected one learner's repo per sub-folder")
        return entries
    if not source.is_file():
        raise RosterError(f"{source}: no such roster file or folder")
    return parse_roster(source.read_text(encoding="utf-8-sig"), base=source.resolve().parent, name=str(source))


def parse_roster(text: str, *, base: Path, name: str = "roster") -> list[Entry]:
    rows = [row for row in csv.reader(io.StringIO(text))]
    content = [(number, row) for number, row in enumerate(rows, start=1)
               if row and any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")]
    if not content:
        raise RosterError(f"{name}: empty roster (expected a header learner,repo,commit and one row per learner)")
    header_line, header = content[0]
    columns = [cell.strip().lower() for cell in header]
    if columns[:2] != ["learner", "repo"] or (columns[2:] and columns[2] != "commit"):
        raise RosterError(f"{name}:{header_line}: the header must be learner,repo[,commit], got {','.join(header)}")
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for number, row in content[1:]:
        cells = [cell.strip() for cell in row] + [""] * 3
        learner, repo, commit = cells[0], cells[1], cells[2] if len(columns) > 2 else ""
        where = f"{name}:{number}"
        _check_name(learner, where)
        if learner in seen:
            raise RosterError(f"{where}: learner {learner!r} is listed twice (first on line {seen[learner]})")
        seen[learner] = number
        if not repo:
            raise RosterError(f"{where}: learner {learner!r} has no repo")
        if commit and not re.fullmatch(r"[0-9a-fA-F]{7,40}", commit):
            raise RosterError(f"{where}: {commit!r} is not a commit SHA")
        if not URL.match(repo):
            repo = str((base / repo).resolve())
        entries.append(Entry(learner=learner, repo=repo, commit=commit.lower() or None, line=number))
    if not entries:
        raise RosterError(f"{name}: the roster lists no learner")
    return entries


def _check_name(learner: str, where: str) -> None:
    if not LEARNER_NAME.fullmatch(learner):
        raise RosterError(f"{where}: {learner!r} cannot name a learner (letters, digits, '.', '_', '-'; "
                          "it names the learner's report folder)")


def select(entries: list[Entry], *, only: list[str] | None, batch: str | None) -> list[Entry]:
    """The learners asked for (`--only`), or batch I of N (`--batch I/N`, 1-based, contiguous slices)."""
    if only:
        missing = sorted(set(only) - {e.learner for e in entries})
        if missing:
            raise RosterError(f"--only: not in the roster: {', '.join(missing)}")
        entries = [e for e in entries if e.learner in set(only)]
    if batch:
        index, count = batch_numbers(batch)
        size = -(-len(entries) // count)
        entries = entries[(index - 1) * size: index * size]
    return entries


def batch_numbers(batch: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", batch)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise RosterError(f"--batch {batch!r}: expected I/N with 1 <= I <= N, for example 3/8")
    return int(match[1]), int(match[2])


def batches_for(count: int, *, per_job: int, max_jobs: int = 256) -> list[str]:
    """The `--batch` values of a CI matrix: at most `per_job` learners a job, at most `max_jobs` jobs."""
    jobs = min(max_jobs, max(1, -(-count // max(1, per_job))))
    return [f"{i}/{jobs}" for i in range(1, jobs + 1)]


# --- one submission --------------------------------------------------------------------------------------

@dataclass
class Options:
    root: Path
    out: Path
    per_test_timeout: float
    run_timeout: float
    regrade: bool = False


class Runner:
    """Grades submissions in subprocesses, and can stop them all (Ctrl-C)."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.stopping = threading.Event()
        self._processes: set[subprocess.Popen] = set()
        self._lock = threading.Lock()

    def stop(self) -> None:
        self.stopping.set()
        with self._lock:
            processes = list(self._processes)
        for process in processes:
            stop_tree(process, grace=STOP_SECONDS)

    def grade(self, entry: Entry) -> tuple[dict[str, Any], bool]:
        """The learner's record, and whether it was graded now (False: an earlier record was still valid)."""
        folder = self.options.out / LEARNERS / entry.learner
        earlier = read_record(folder)
        if (earlier and not self.options.regrade and entry.commit and COMMIT.fullmatch(entry.commit)
                and _still_valid(earlier, entry, entry.commit)):
            return earlier, False  # known without fetching anything
        staging = Path(tempfile.mkdtemp(prefix=f"{entry.learner}-", dir=self.options.out / STAGING))
        try:
            started = time.time()
            out, log = staging / "learner", staging / "grade-class.log"
            with tempfile.TemporaryDirectory(prefix="workbook-class-") as scratch:
                try:
                    path, commit, cloned = checkout(entry, Path(scratch) / "repo")
                except GradingError as error:
                    record = could_not_grade(entry, None, str(error), started)
                else:
                    # A clone is known by its commit; a folder by what grade-submission takes from it.
                    key = commit if cloned else f"starters:{starters_digest(path)}"
                    if earlier and not self.options.regrade and _still_valid(earlier, entry, key):
                        return earlier, False
                    record = self._run(entry, path, commit, key, out, log, started)
            if self.stopping.is_set():
                raise KeyboardInterrupt
            out.mkdir(parents=True, exist_ok=True)
            if log.exists():
                (out / "instructor").mkdir(exist_ok=True)
                os.replace(log, out / "instructor" / "grade-class.log")
            write_json(out / RECORD_NAME, record)
            install(out, folder)
            return record, True
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _run(self, entry: Entry, path: Path, commit: str | None, key: str, out: Path, log_path: Path,
             started: float) -> dict[str, Any]:
        command = [sys.executable, "-m", "grading", "--root", str(self.options.root), "grade-submission",
                   str(path), "--out", str(out), "--timeout", f"{self.options.per_test_timeout:g}",
                   "--run-timeout", f"{self.options.run_timeout:g}"]
        with log_path.open("wb") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       start_new_session=True, cwd=self.options.root, env=grader_env())
            with self._lock:
                self._processes.add(process)
            try:
                code = process.wait(timeout=self.options.run_timeout + GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                code = None
            finally:
                stop_tree(process, grace=STOP_SECONDS)  # whatever it left behind in its process group
                with self._lock:
                    self._processes.discard(process)
        if self.stopping.is_set():
            raise KeyboardInterrupt
        if code is None:
            return could_not_grade(entry, commit, "grade-submission did not finish in time (killed)", started, key)
        return record_from(entry, out, code, commit, key, started, last_line(log_path))


def grader_env() -> dict[str, str]:
    """The environment of a grade-submission: this very grading package (the instructor's) on the path,
    whatever the workbook's folder, and none of the instructor's credentials (it clears the graded tests'
    environment too; this is for whatever it runs outside its sandbox)."""
    env = {name: value for name, value in os.environ.items() if not CREDENTIAL_NAME.search(name)}
    env["PYTHONPATH"] = os.pathsep.join([str(GRADING_HOME), *filter(None, [env.get("PYTHONPATH")])])
    return env


def _still_valid(record: dict[str, Any], entry: Entry, key: str) -> bool:
    return (record.get("key") == key and record.get("repo") == entry.repo
            and record.get("verdict") in VERDICTS and record.get("verdict") != "could_not_grade")


def checkout(entry: Entry, into: Path) -> tuple[Path, str | None, bool]:
    """The tree to grade, its commit, and whether it is a clone: the folder itself, or a clone at the commit."""
    if not entry.is_url and not entry.commit:
        path = Path(entry.repo)
        if not path.is_dir():
            raise GradingError(f"{entry.repo}: no such folder")
        return path, head_commit(path), False
    env = os.environ | GIT_ENV
    # No hooks, no submodules, no LFS filters: nothing of the learner's runs while it is fetched.
    git = ["git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false"]
    clone = subprocess.run([*git, "clone", "--quiet", "--no-checkout", "--no-hardlinks", entry.repo, str(into)],
                           capture_output=True, text=True, env=env, check=False, timeout=600)
    if clone.returncode != 0:
        raise GradingError(f"git clone {entry.repo} failed: {_first_line(clone.stderr)}")
    revision = entry.commit or "HEAD"
    switch = subprocess.run([*git, "-C", str(into), "checkout", "--quiet", "--detach", revision],
                            capture_output=True, text=True, env=env, check=False, timeout=600)
    if switch.returncode != 0:
        raise GradingError(f"{entry.repo} has no commit {revision}: {_first_line(switch.stderr)}")
    return into, head_commit(into), True


def head_commit(path: Path) -> str | None:
    """The checked-out commit, read from .git's files: git itself would read the learner's .git/config
    (grading.core.git_head: bounded reads, no link followed, nothing outside the learner's folder)."""
    return read_commit(path, confined=True)


def starters_digest(path: Path) -> str:
    """What grade-submission takes from a folder that is not at a known commit: its starters/ tree."""
    digest = hashlib.sha256()
    starters = path / "starters"
    if starters.is_symlink():
        digest.update(b"symlink:" + os.readlink(starters).encode())
    elif starters.is_dir():
        for item in sorted(starters.rglob("*")):
            if "__pycache__" in item.parts:
                continue
            # os.fsencode: a name that is not UTF-8 is still hashed by its bytes (grade-submission refuses it).
            digest.update(os.fsencode(item.relative_to(starters)) + b"\0")
            if item.is_symlink():
                digest.update(b"symlink:" + os.fsencode(os.readlink(item)))
            elif item.is_file():
                digest.update(_file_digest(item))
    return digest.hexdigest()


def _file_digest(path: Path) -> bytes:
    """sha256 of a regular file read in chunks (a huge file costs time, never memory), without following a
    link or waiting on a FIFO swapped in."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return b"unreadable"
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b"not a file"
        return hashlib.file_digest(file, "sha256").digest()


def record_from(entry: Entry, out: Path, code: int, commit: str | None, key: str, started: float,
                reason: str) -> dict[str, Any]:
    """The learner's record from grade-submission's exit code and results.json (schema workbook-grade/1)."""
    results_path = out / "results.json"
    results = None
    if results_path.is_file():
        try:
            results = json.loads(results_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            results = None
    if code not in (0, 1) or not isinstance(results, dict):
        if code not in (0, 1):
            why = f"grade-submission exited with {_describe_exit(code)}" + (f": {reason}" if reason else "")
        else:
            why = "grade-submission wrote no readable results.json"
        record = could_not_grade(entry, commit, why, started, key)
        if isinstance(results, dict):
            record["flags"] = _unique([*record["flags"], *map(str, results.get("flags") or [])])
        return record
    verdict = results.get("verdict", "graded")
    if verdict not in VERDICTS:
        return could_not_grade(entry, commit, f"results.json has an unknown verdict {verdict!r}", started, key)
    exercises = {}
    missed = []
    for exercise in results.get("exercises", []):
        tasks = {}
        for task in exercise.get("tasks", []):
            tasks[task["id"]] = {"points": int(task["points"]), "max_points": int(task["max_points"])}
            missed += [c["id"] for c in task.get("criteria", []) if c.get("status") != "passed"]
        exercises[exercise["id"]] = {"points": int(exercise["points"]),
                                     "max_points": int(exercise["max_points"]), "tasks": tasks}
    total = results.get("total", {})
    flags = [str(f) for f in results.get("flags") or []]
    if verdict != "graded":
        flags = [VERDICT_FLAG[verdict], *flags]
    return base_record(entry, commit or results.get("commit"), key, started) | {
        "verdict": verdict, "exit_code": code, "flags": _unique(flags), "notes": list(results.get("notes", [])),
        "points": int(total.get("points", 0)), "max_points": int(total.get("max_points", 0)),
        "percent": float(total.get("percent", 0.0)), "exercises": exercises, "missed": missed,
    }


def could_not_grade(entry: Entry, commit: str | None, reason: str, started: float,
                    key: str | None = None) -> dict[str, Any]:
    return base_record(entry, commit, key, started) | {
        "verdict": "could_not_grade", "exit_code": None, "flags": [f"could not grade: {reason}"], "notes": [],
        "points": None, "max_points": None, "percent": None, "exercises": {}, "missed": []}


def base_record(entry: Entry, commit: str | None, key: str | None, started: float) -> dict[str, Any]:
    return {"schema": RECORD_SCHEMA, "learner": entry.learner, "repo": entry.repo, "commit": commit, "key": key,
            "started_at": datetime.fromtimestamp(started, UTC).isoformat(timespec="milliseconds"),
            "graded_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "seconds": round(time.time() - started, 1)}


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        return f"signal {signal.Signals(-code).name}" if -code in signal.valid_signals() else f"signal {-code}"
    return f"code {code}"


def last_line(log: Path) -> str:
    """The last non-empty line grade-submission printed (its error, when it could not grade)."""
    try:
        lines = [line.strip() for line in log.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line]
    return lines[-1][:300] if len(lines) > 1 else ""


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no message")[:300]


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def read_record(folder: Path) -> dict[str, Any] | None:
    try:
        record = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("schema") == RECORD_SCHEMA else None


def install(staging: Path, folder: Path) -> None:
    """Move a finished learner folder into place; the earlier one (if any) is removed only afterwards."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if folder.exists():
        old = staging.with_name(staging.name + ".old")
        os.replace(folder, old)
    os.replace(staging, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# --- the gradebook ---------------------------------------------------------------------------------------

def read_records(out: Path) -> list[dict[str, Any]]:
    folder = out / LEARNERS
    records = [read_record(p) for p in sorted(folder.iterdir()) if p.is_dir()] if folder.is_dir() else []
    return sorted((r for r in records if r), key=lambda r: r["learner"])


def gradebook_columns(rubric: Rubric) -> list[str]:
    columns = ["learner", "commit", "verdict"]
    for exercise in rubric.exercises:
        columns += [exercise.id, *(task.id for task in exercise.tasks)]
    return [*columns, "points", "max_points", "percent", "flags"]


def gradebook_row(record: dict[str, Any], rubric: Rubric) -> dict[str, str]:
    """One CSV row. Tampered and refused submissions score 0; a submission that could not be graded has no score."""
    verdict = record["verdict"]
    row = {"learner": record["learner"], "commit": record.get("commit") or "", "verdict": verdict}
    scored = verdict == "graded"
    for exercise in rubric.exercises:
        earned = record.get("exercises", {}).get(exercise.id, {})
        row[exercise.id] = _cell(verdict, earned.get("points", 0) if scored else 0)
        for task in exercise.tasks:
            row[task.id] = _cell(verdict, earned.get("tasks", {}).get(task.id, {}).get("points", 0) if scored else 0)
    row["points"] = _cell(verdict, record["points"] if scored else 0)
    row["max_points"] = str(record["max_points"] if record.get("max_points") is not None else rubric.points)
    row["percent"] = _cell(verdict, f"{record['percent']:g}" if scored else 0)
    row["flags"] = "; ".join(record.get("flags", []))
    return row


def _cell(verdict: str, value: Any) -> str:
    return "" if verdict == "could_not_grade" else str(value)


def write_gradebook(out: Path, rubric: Rubric, *, expected: list[Entry] | None = None) -> list[dict[str, str]]:
    """gradebook.csv, summary.md and histogram.png from every learner's record in `out`; a learner of
    `expected` without a record (a CI job that failed before writing it) is a row that could not be graded."""
    records = read_records(out)
    recorded = {r["learner"] for r in records}
    missing = [could_not_grade(e, e.commit, "no record of this learner's grading (did its grading job fail? see "
                                            "the run's log)", time.time())
               for e in expected or [] if e.learner not in recorded]
    records = sorted([*records, *missing], key=lambda r: r["learner"])
    columns = gradebook_columns(rubric)
    rows = [gradebook_row(r, rubric) for r in records]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(out / "gradebook.csv", buffer.getvalue())
    graded = [r for r in records if r["verdict"] == "graded"]
    picture = write_histogram(out / "histogram.png", [r["percent"] for r in graded]) if graded else None
    write_text(out / "summary.md", summary_markdown(records, rubric, picture))
    return rows


def write_histogram(path: Path, percents: list[float]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 3.2), dpi=100)
    edges = [i * 100 / HISTOGRAM_BINS for i in range(HISTOGRAM_BINS + 1)]
    axes.hist(percents, bins=edges, color="#4c72b0", edgecolor="white")
    axes.set_xlim(0, 100)
    axes.set_xlabel("score (%)")
    axes.set_ylabel("learners")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_title(f"Scores of {len(percents)} graded submissions")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    pyplot.close(figure)
    write_bytes(path, buffer.getvalue())
    return path


def score_bins(percents: list[float]) -> list[tuple[str, int]]:
    width = 100 // HISTOGRAM_BINS
    counts = [0] * HISTOGRAM_BINS
    for percent in percents:
        counts[min(HISTOGRAM_BINS - 1, int(percent // width))] += 1
    return [(f"{i * width}–{(i + 1) * width - 1 if i < HISTOGRAM_BINS - 1 else 100} %", n)
            for i, n in enumerate(counts)]


def summary_markdown(records: list[dict[str, Any]], rubric: Rubric, picture: Path | None) -> str:
    by_verdict = {v: [r for r in records if r["verdict"] == v] for v in VERDICTS}
    graded = by_verdict["graded"]
    lines = ["# Class summary", "",
             f"{len(records)} submissions: " + ", ".join(f"{len(by_verdict[v])} {VERDICT_FLAG.get(v, v)}"
                                                         for v in VERDICTS) + ". "
             "The rows are in `gradebook.csv`; each learner's reports are in `learners/LEARNER/` "
             "(`instructor/` there is for you only).", ""]
    lines += ["## Score distribution", ""]
    if graded:
        percents = [r["percent"] for r in graded]
        lines += [f"Graded submissions: mean {statistics.mean(percents):.1f} %, median "
                  f"{statistics.median(percents):.1f} %, lowest {min(percents):g} %, highest {max(percents):g} % "
                  f"(of {rubric.points} points). Tampered and refused submissions score 0 and are left out here.",
                  ""]
        if picture is not None:
            lines += [f"![score histogram]({picture.name})", ""]
        lines += ["| score | learners |", "| --- | ---: |", *(f"| {label} | {n} |" for label, n in
                                                               score_bins(percents)), ""]
    else:
        lines += ["No submission was graded.", ""]
    lines += ["## Most often missed criteria", ""]
    missed: dict[str, int] = {}
    for record in graded:
        for criterion_id in record.get("missed", []):
            missed[criterion_id] = missed.get(criterion_id, 0) + 1
    criteria = rubric.criteria
    ranked = sorted(missed.items(), key=lambda item: (-item[1], item[0]))[:MOST_MISSED]
    if ranked:
        lines += ["| criterion | title | visibility | points | missed by |", "| --- | --- | --- | ---: | ---: |"]
        for criterion_id, count in ranked:
            criterion = criteria.get(criterion_id)
            title = criterion.title if criterion else "(not in the rubric)"
            lines.append(f"| `{criterion_id}` | {_md(title)} | {criterion.visibility if criterion else ''} | "
                         f"{criterion.points if criterion else ''} | {count} of {len(graded)} |")
    else:
        lines.append("No criterion was missed by a graded submission." if graded else "Nothing graded yet.")
    lines += ["", "## Per task", ""]
    if graded:
        lines += ["| task | title | points | mean | full marks |", "| --- | --- | ---: | ---: | ---: |"]
        for exercise in rubric.exercises:
            for task in exercise.tasks:
                earned = [r.get("exercises", {}).get(exercise.id, {}).get("tasks", {}).get(task.id, {})
                          .get("points", 0) for r in graded]
                full = sum(points >= task.points for points in earned)
                lines.append(f"| `{task.id}` | {_md(task.title)} | {task.points} | "
                             f"{statistics.mean(earned):.2f} | {full} of {len(graded)} |")
    else:
        lines.append("Nothing graded yet.")
    review = sorted((r for r in records if r["verdict"] != "graded" or r.get("flags")),
                    key=lambda r: (-VERDICTS.index(r["verdict"]), r["learner"]))
    lines += ["", "## To review", ""]
    if review:
        lines += ["Every submission without a grade, and every graded one with a flag: read "
                  "`learners/LEARNER/instructor/report.md` before trusting or handing back its grade.", "",
                  "| learner | verdict | score | flags |", "| --- | --- | ---: | --- |"]
        lines += [f"| {r['learner']} | {VERDICT_FLAG.get(r['verdict'], r['verdict'])} | {_score(r)} | "
                  f"{_md('; '.join(r.get('flags', [])))} |" for r in review]
    else:
        lines.append("Every submission reached a grade, and none has a flag.")
    return "\n".join(lines) + "\n"


def _score(record: dict[str, Any]) -> str:
    if record["verdict"] == "could_not_grade":
        return "none"
    return f"{record['points'] if record['verdict'] == 'graded' else 0}/{record['max_points']}"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


# --- progress and the command ----------------------------------------------------------------------------

class Progress:
    """One line per finished submission; on a terminal also a counter line that rewrites itself."""

    def __init__(self, total: int, stream: Any = None) -> None:
        self.total, self.done = total, 0
        self.stream = stream or sys.stdout
        self.live = self.stream.isatty()
        self._counter()

    def advance(self, line: str) -> None:
        self.done += 1
        if self.live:
            self.stream.write("\r\033[K")
        self.stream.write(f"[{self.done}/{self.total}] {line}\n")
        self._counter()

    def _counter(self) -> None:
        if self.live and self.done < self.total:
            self.stream.write(f"grading: {self.done}/{self.total} done")
        self.stream.flush()

    def close(self) -> None:
        if self.live and self.done < self.total:
            self.stream.write("\n")
            self.stream.flush()


def describe(record: dict[str, Any], graded_now: bool) -> str:
    verdict = record["verdict"]
    if verdict == "could_not_grade":
        result = "; ".join(record.get("flags", [])) or "could not grade"
    else:
        result = f"{record['points']}/{record['max_points']} ({record['percent']:g} %)"
        if verdict != "graded":
            result = f"{VERDICT_FLAG[verdict]}: scored 0/{record['max_points']}, to review"
    suffix = f" at {record['commit'][:12]}" if record.get("commit") else ""
    return f"{record['learner']}{suffix}: {result}" + ("" if graded_now else " (already graded, skipped)")


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def grade_class(entries: list[Entry], options: Options, *, jobs: int) -> tuple[list[dict[str, Any]], int]:
    """Grade every entry (N at a time); returns the records and how many were graded now (not skipped)."""
    (options.out / STAGING).mkdir(parents=True, exist_ok=True)
    runner = Runner(options)
    progress = Progress(len(entries))
    records: list[dict[str, Any]] = []
    fresh = 0
    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade")
    pending: set[Future] = {pool.submit(runner.grade, entry) for entry in entries}
    try:
        while pending:
            finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
            for future in finished:
                record, graded_now = future.result()
                records.append(record)
                fresh += graded_now
                progress.advance(describe(record, graded_now))
    except BaseException:
        runner.stop()
        for future in pending:
            future.cancel()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
        shutil.rmtree(options.out / STAGING, ignore_errors=True)
    return sorted(records, key=lambda r: r["learner"]), fresh


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "grade-class", help="grade a class (a folder of learner repos or a roster) into a gradebook",
        description="Grade every submission with grade-submission (N at a time, each in its own process), "
                    "skip those already graded at the same commit, and write gradebook.csv, summary.md and "
                    "one report folder per learner.")
    parser.add_argument("source", type=Path, help="a folder with one learner repo per sub-folder, or a roster "
                                                  "CSV with the columns learner,repo,commit (see grading/classroom/ci/README.md)")
    parser.add_argument("--out", type=Path, help="the class folder (gradebook.csv, summary.md, learners/)")
    parser.add_argument("--jobs", type=int, default=default_jobs(),
                        help="submissions graded at once (default: the cores available, %(default)s)")
    parser.add_argument("--only", action="append", metavar="LEARNER", help="grade only this learner (repeat)")
    parser.add_argument("--batch", metavar="I/N", help="grade only batch I of N of the roster (a CI matrix job)")
    parser.add_argument("--regrade", action="store_true",
                        help="grade again even when a learner's record is at the same commit")
    parser.add_argument("--timeout", type=float, default=None, dest="per_test_timeout",
                        help="seconds one test may take (default: grade-submission's)")
    parser.add_argument("--run-timeout", type=float, default=3600.0,
                        help="seconds one submission's grading may take (default: %(default)g)")
    ci = parser.add_argument_group("CI matrix jobs (grading/classroom/ci/grade-class.yml)")
    ci.add_argument("--list-batches", type=int, metavar="PER_JOB",
                    help="print the matrix: {\"batch\": [1, ..., N], \"count\": N} for PER_JOB learners a job "
                         "(at most 256 jobs), and grade nothing")
    ci.add_argument("--fetch-only", type=Path, metavar="DIR",
                    help="clone the selected learners' repos at their commits into DIR/LEARNER and write "
                         "DIR/roster.csv for a later grade-class; grade nothing")
    parser.set_defaults(handler=run)

    rebuild = commands.add_parser("gradebook", help="rebuild gradebook.csv and summary.md from a class folder",
                                  description="Rebuild gradebook.csv, summary.md and histogram.png from the "
                                              "learners' records in a class folder (for example after merging "
                                              "the folders of several CI jobs).")
    rebuild.add_argument("out", type=Path, help="the class folder")
    rebuild.add_argument("--roster", type=Path, default=None,
                         help="the roster graded: a learner of it without a record gets a \"could not grade\" row")
    rebuild.add_argument("--only", action="append", metavar="LEARNER",
                         help="with --roster: only this learner was graded (repeat)")
    rebuild.set_defaults(handler=run_gradebook)


def run(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise GradingError(f"--jobs {args.jobs}: grade at least one submission at a time")
    entries = select(read_roster(args.source), only=args.only, batch=args.batch)
    if args.list_batches is not None:
        batches = batches_for(len(entries), per_job=args.list_batches)
        print(json.dumps({"batch": list(range(1, len(batches) + 1)), "count": len(batches)}))
        return 0
    if args.fetch_only is not None:
        return fetch_only(entries, args.fetch_only.resolve())
    if args.out is None:
        raise GradingError("grade-class: --out DIR is required (the class folder)")
    rubric = load(args.root)
    out = args.out.resolve()
    options = Options(root=args.root, out=out, regrade=args.regrade, run_timeout=args.run_timeout,
                      per_test_timeout=args.per_test_timeout or DEFAULT_PER_TEST_TIMEOUT)
    started = time.monotonic()
    previous = signal.signal(signal.SIGTERM, _interrupt)  # a cancelled CI job stops like Ctrl-C
    try:
        records, fresh = grade_class(entries, options, jobs=args.jobs)
    finally:
        signal.signal(signal.SIGTERM, previous)
    write_gradebook(out, rubric)
    failed = sum(r["verdict"] == "could_not_grade" for r in records)
    print(f"{len(records)} submissions ({fresh} graded now, {len(records) - fresh} already graded) in "
          f"{time.monotonic() - started:.0f} s, --jobs {args.jobs}; could not grade: {failed}. "
          f"Written: {out / 'gradebook.csv'}, {out / 'summary.md'}")
    if records and failed == len(records):
        print(f"workbook grade-class: none of the {len(records)} submissions could be graded (the first: "
              f"{'; '.join(records[0]['flags'])})", file=sys.stderr)
        return EXIT_NONE_GRADED
    return EXIT_SOME_NOT_GRADED if failed else 0


def fetch_only(entries: list[Entry], into: Path) -> int:
    """Clone each learner's repo at its commit (running none of its code) and write the roster of the clones."""
    into.mkdir(parents=True, exist_ok=True)
    rows = ["learner,repo,commit"]
    for entry in entries:
        target = into / entry.learner
        shutil.rmtree(target, ignore_errors=True)
        try:
            if not entry.is_url and not entry.commit:
                shutil.copytree(entry.repo, target, symlinks=True)
                commit = head_commit(target)
            else:
                _, commit, _ = checkout(entry, target)
        except (GradingError, OSError) as error:
            # Left out of the folder: grade-class will report the learner as "could not grade".
            print(f"{entry.learner}: not fetched: {error}", file=sys.stderr)
            commit = entry.commit
        else:
            print(f"{entry.learner}: fetched {commit or 'its folder (no commit)'}")
        rows.append(f"{entry.learner},{entry.learner},{commit or ''}")
    write_text(into / "roster.csv", "\n".join(rows) + "\n")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_gradebook(args: argparse.Namespace) -> int:
    """Exit 0 when every row has a verdict, 2 when some have none, 3 when none has one (each row says why)."""
    out = args.out.resolve()
    if args.only and not args.roster:
        raise GradingError("gradebook: --only says which learners of --roster were graded: pass --roster too")
    expected = select(read_roster(args.roster), only=args.only, batch=None) if args.roster else []
    if not read_records(out) and not expected:
        raise GradingError(f"{out} has no learner record ({LEARNERS}/LEARNER/{RECORD_NAME}): nothing to write")
    rows = write_gradebook(out, load(args.root), expected=expected)
    failed = [row["learner"] for row in rows if row["verdict"] == "could_not_grade"]
    print(f"{len(rows)} learners: written {out / 'gradebook.csv'}, {out / 'summary.md'}; could not grade: "
          f"{len(failed)}" + (f" ({', '.join(failed[:10])}{' ...' if len(failed) > 10 else ''})" if failed else ""))
    if failed and len(failed) == len(rows):
        return EXIT_NONE_GRADED
    return EXIT_SOME_NOT_GRADED if failed else 0
