"""`grade-submission PATH`: grade a learner's copy of the repo trusting nothing in it, not even its starters/.

Grading one submission is the declared list of steps in grading.submission.steps (STEPS), in this order:
1. find_sandbox: no bubblewrap, no grade (unless --no-sandbox, for trusted code).
2. build_tree: a graded tree built fresh (grading.submission.graded_tree): a learner release's files plus the
   hidden tests, the submission's starters/ (regular .py files only), a copy of the DB template; no solutions/,
   no .git. Files that would run on their own (compiled modules, site hooks, conftest.py,
   airflow_local_settings.py), names no report can carry (not UTF-8, colliding, too long), a file the review
   (grading.submission.review) cannot parse under its limits, or a starters/ that is a symlink refuse it.
3. prepare_checks: the tree is hashed, the grader's own test names taken (grading.submission.inventory) and,
   with `--one-process`, canaries planted (grading.submission.canaries).
4. run_tests: every test process runs in the sandbox (grading.suite.sandbox) as a judge: it never imports the
   learner's code, which runs in a subject process the judge starts in a nested sandbox and reaches only
   through plain data (tests.harness.remote, tests.harness.subject_sandbox; `--one-process` puts it back in
   the test process). The judge reports over an inherited pipe; the record is decoded with a schema and a size
   limit (grading.suite.record_schema). "Could not grade" needs the grader's own probe to fail too
   (grading.submission.probes).
5. gather_evidence: a canary with the wrong outcome, a record that breaks its rules, a name the grader does not
   have or a changed tree is evidence: the verdict is `tampered` (0 points, evidence in DIR/instructor/).
6. write_grades: this process writes every file: the learner-safe report.md, results.json, junit.xml (hidden
   criteria: title and pass/fail only, messages quoting a secret withheld) in DIR, the full report, review
   flags and pytest's log in DIR/instructor/ (grading.submission.instructor_report).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from grading.core.errors import GradingError
from grading.core.git_head import checked_out_commit
from grading.core.rubric import load
from grading.learner.grade import add_grading_options
from grading.submission import graded_tree
from grading.submission.instructor_report import INSTRUCTOR_FOLDER
from grading.submission.steps import STEPS, Grading
from grading.suite import sandbox

LEARNER_OWNED = graded_tree.LEARNER_OWNED


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("grade-submission", help="grade a learner's repo (only its starters/ count)",
                                 description="Grade a learner's copy in a sandbox: only its starters/ are taken, "
                                             "into a fresh graded tree with the hidden tests.")
    parser.add_argument("path", type=Path, help="the learner's copy of the repo (or its starters/ folder)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the graded tree in this folder (debugging)")
    parser.add_argument("--no-sandbox", action="store_true",
                        help="run the tests without bubblewrap (only for code you trust)")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--judge-and-subject", dest="judge_and_subject", action="store_true", default=True,
                       help="the default: the tests run in a judge process that never imports the learner's code; "
                            "that code runs in a subject process of its own sandbox (tests.harness.remote)")
    split.add_argument("--one-process", dest="judge_and_subject", action="store_false",
                       help="the learner's code in the test process itself (canaries and the record checks "
                            "are the only defence: for comparison and debugging)")
    parser.add_argument("--max-processes", type=int, default=sandbox.PROCESSES,
                        help="processes and threads the sandboxed tests may have at once (default: %(default)s)")
    parser.add_argument("--max-memory-gib", type=float, default=sandbox.MEMORY_BYTES / 1024**3,
                        help="memory (data segment) per sandboxed process, GiB (default: %(default)g)")
    add_grading_options(parser, default_out="reports/submission")
    parser.set_defaults(handler=run)


def submission_starters(path: Path) -> Path:
    """The submission's starters/ folder, not resolved: a starters/ that is a symlink must be seen as one."""
    path = path.absolute()
    if path.name == LEARNER_OWNED and (path.is_dir() or path.is_symlink()):
        return path
    candidate = path / LEARNER_OWNED
    if candidate.is_dir() or candidate.is_symlink():
        return candidate
    raise GradingError(f"{path} has no {LEARNER_OWNED}/ folder: pass the learner's repo")


def run(args: argparse.Namespace) -> int:
    out = args.out.resolve()
    (out / INSTRUCTOR_FOLDER).mkdir(parents=True, exist_ok=True)
    (out / "pytest-output.txt").unlink(missing_ok=True)  # an older grade's log: the log is instructor-only now
    root = args.root.resolve()
    rubric = load(root)
    # Read from .git without running git (its config is the learner's); nothing outside the submission.
    commit = checked_out_commit(args.path, confined=True)
    starters = submission_starters(args.path)
    with tempfile.TemporaryDirectory(prefix="workbook-submission-") as scratch:
        grading = Grading(args=args, root=root, rubric=rubric, starters=starters, scratch=Path(scratch), out=out,
                          learner=str(args.path), commit=commit)
        for step in STEPS:
            status = step(grading)
            if status is not None:
                return status
    raise GradingError("grade-submission: the last step wrote no grade")  # STEPS ends with write_grades
