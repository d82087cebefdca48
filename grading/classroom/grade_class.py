"""`grade-class ROSTER_OR_DIR --out DIR`: grade a whole class, one sandboxed `grade-submission` per learner,
and write the gradebook (`gradebook.csv`, `summary.md`, `histogram.png`; `gradebook DIR` rebuilds them:
grading/classroom/gradebook.py).

Each submission is graded in its own `python -m grading grade-submission` process, N at a time, so one
submission that crashes, hangs or is refused costs only its own row. Every learner gets a folder
`DIR/learners/LEARNER/` (grade-submission's files, and `record.json`, which marks it done): the folder
is built aside and moved into place in one rename, so an interrupted run leaves either the old folder or
the new one, and a second run grades only what is missing (or changed).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from grading.classroom.checkout import fetch_only
from grading.classroom.class_runner import Options, default_jobs, grade_class
from grading.classroom.gradebook import EXIT_NONE_GRADED, EXIT_SOME_NOT_GRADED, write_gradebook
from grading.classroom.roster import batches_for, read_roster, select
from grading.core.errors import GradingError
from grading.core.rubric import load
from grading.learner.grade import DEFAULT_PER_TEST_TIMEOUT


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


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
