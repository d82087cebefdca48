"""Grading a class: one `python -m grading grade-submission` process per learner, N at a time, each stopped
with its whole process tree when it outlives its time or the run is interrupted."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grading.classroom.checkout import checkout, starters_digest
from grading.classroom.class_record import (
    LEARNERS,
    RECORD_NAME,
    could_not_grade,
    install,
    last_line,
    read_record,
    record_from,
    still_valid,
)
from grading.classroom.progress import Progress, describe
from grading.classroom.roster import Entry
from grading.core.atomic import write_json
from grading.core.errors import GradingError
from grading.core.processes import stop_tree

STAGING = ".staging"
COMMIT = re.compile(r"[0-9a-f]{40}")
# A grade-submission that outlives its own --run-timeout by this much is stuck: it is killed.
GRACE_SECONDS = 300.0
STOP_SECONDS = 15.0  # for an interrupted grade-submission to stop its own tests
CREDENTIAL_NAME = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|PRIVATE|^GIT_CONFIG_|^AWS_|^GH_", re.I)
GRADING_HOME = Path(__file__).resolve().parents[2]


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
                and still_valid(earlier, entry, entry.commit)):
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
                    if earlier and not self.options.regrade and still_valid(earlier, entry, key):
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
