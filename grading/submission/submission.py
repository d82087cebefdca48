"""`grade-submission PATH`: grade a learner's copy of the repo trusting nothing in it, not even its starters/.

1. A graded tree is built fresh (grading.submission.graded_tree): a learner release's files plus the hidden tests, the
   submission's starters/ (regular .py files only), a copy of the DB template. No solutions/, no .git.
   Files that would run on their own (compiled modules, site hooks, conftest.py, airflow_local_settings.py),
   names no report can carry (not UTF-8, colliding, too long), a file the review cannot parse under its
   limits, or a starters/ that is a symlink refuse the submission.
2. The tree is hashed (and, with `--one-process`, canaries are planted: grading.submission.canaries).
3. Every test process runs in the sandbox (grading.suite.sandbox) as a judge: it never imports the learner's code,
   which runs in a subject process the judge starts in a nested sandbox and reaches only through plain data
   (tests.harness.remote, tests.harness.subject_sandbox; `--one-process` puts it back in the test process).
   The judge reports over an inherited pipe; the record is
   decoded with a schema and a size limit (grading.suite.record_schema) and held to the grader's own test names
   (grading.submission.inventory). "Could not grade" needs the grader's own probe to fail too (grading.submission.probes).
4. A canary with the wrong outcome, a record that breaks its rules or a changed tree makes the verdict
   `tampered` (0 points, evidence in DIR/instructor/). Review flags (grading.submission.review) go to the instructor's
   report.
5. This process writes every file: the learner-safe report.md, results.json, junit.xml (hidden criteria:
   title and pass/fail only) in DIR, the full report and pytest's log in DIR/instructor/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from grading.core.errors import GradingError
from grading.core.git_head import read_commit
from grading.core.rubric import load
from grading.learner.grade import add_grading_options, publish, test_paths
from grading.release.build import solution_code
from grading.scoring import reports
from grading.scoring.results import Grade, Run, grade, scrub, withhold
from grading.submission import canaries, graded_tree, inventory, probes, review, unmasked
from grading.suite import sandbox
from grading.suite.runner import RunOptions, Sandbox, check_python_starts, run_suite

LEARNER_OWNED = graded_tree.LEARNER_OWNED
INSTRUCTOR_FOLDER = "instructor"
EXIT_COULD_NOT_GRADE = 2
TAMPERED_NOTE = ("Verdict: tampered. The graded run did not behave as an honest one does; the grade is "
                 "withheld (0 points) until your instructor has reviewed it.")
CANARY_NAME = "a grader's check"


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


def submission_commit(path: Path) -> str | None:
    """The checked-out commit, read from .git without running git (its config is the learner's), every file
    bounded and reached without a link, nothing outside the submission (grading.core.git_head)."""
    return read_commit(path, confined=True)


def run(args: argparse.Namespace) -> int:
    out = args.out.resolve()
    instructor = out / INSTRUCTOR_FOLDER
    instructor.mkdir(parents=True, exist_ok=True)
    (out / "pytest-output.txt").unlink(missing_ok=True)  # an older grade's log: the log is instructor-only now
    root = args.root.resolve()
    rubric = load(root)
    exercises = list(rubric.exercises)
    learner = str(args.path)
    commit = submission_commit(args.path)

    def could_not_grade(why: str) -> int:
        empty = grade(rubric, exercises, Run(notes=[why]), target="starter", submission=learner)
        empty.verdict, empty.flags, empty.commit = "could_not_grade", ["infrastructure"], commit
        reports.write_all(empty, out)
        print(f"workbook grade-submission: {why}", file=sys.stderr)
        return EXIT_COULD_NOT_GRADE

    bwrap = None
    if not args.no_sandbox:
        try:
            bwrap = sandbox.probe()
        except sandbox.SandboxUnavailable as error:
            return could_not_grade(f"refusing to grade without a sandbox: {error}. Pass --no-sandbox only for "
                                   "code you trust.")
    starters = submission_starters(args.path)
    with tempfile.TemporaryDirectory(prefix="workbook-submission-") as scratch:
        tree_root = Path(args.keep).resolve() if args.keep else Path(scratch) / "tree"
        if args.keep and tree_root.exists():
            shutil.rmtree(tree_root)
        tree = graded_tree.build(root, starters, tree_root)
        flags = [] if tree.refusals else review.scan(tree.root / LEARNER_OWNED)
        tree.refusals += review.refusals(flags)
        if tree.refusals:
            refused = withhold(grade(rubric, exercises, Run(), target="starter", submission=learner), "refused",
                               "not graded: the submission was refused (see the notes)")
            refused.flags = [f"refused: {reason}" for reason in tree.refusals]
            refused.notes = [f"Refused: {reason}." for reason in tree.refusals] + [
                f"not taken from the submission: {item}" for item in tree.skipped]
            refused.commit = commit
            _write_instructor(instructor, refused, evidence=[], flags=[])
            return publish(refused, args)
        # Canaries test the test process's honesty: a judge that never runs learner code needs none, and a
        # judge starved by the subject (a fork bomb) would leave them unrun, which is not tampering.
        planted = canaries.plant(tree.root, exercises) if not args.judge_and_subject else []
        known_tests = inventory.Inventory.of_tree(tree.root, exercises)  # the grader's names, canaries included
        before = graded_tree.digest(tree.root)
        log = instructor / "pytest-output.txt"
        log.write_text("", encoding="utf-8")
        paths = test_paths(tree.root, exercises)
        options = RunOptions(
            root=tree.root, target="starter", paths=paths, per_test_timeout=args.per_test_timeout,
            run_timeout=args.run_timeout, log=log, log_is_safe=False, echo=args.echo and args.reveal_hidden,
            judge_and_subject=args.judge_and_subject,
            pytest_starts=probes.pytest_starts,
            sandbox=Sandbox(bwrap=bwrap, cache=tree.root / graded_tree.CACHE_FOLDER, limits=sandbox.Limits(
                memory_bytes=int(args.max_memory_gib * 1024**3), processes=args.max_processes)) if bwrap else None)
        try:
            if options.sandbox:  # once per submission, before any test process
                check_python_starts(options)
            result = run_suite(options) if paths else Run(notes=["no exercise has a test folder yet"])
            probes.settle_infrastructure(options, result)  # Airflow failing is believed only if it fails the grader too
        except GradingError as error:
            return could_not_grade(str(error))
        evidence = [f"graded tree {line}" for line in graded_tree.changes(before, graded_tree.digest(tree.root))]
        result.violations += inventory.confine(result, known_tests)
        cut = any("was cut" in note for note in result.notes)
        if args.judge_and_subject:
            # The judge writes the record: a broken order there is a judge that died (killed or starved by the
            # subject), which costs the tests it was running, not a forgery.
            broken = [line for line in result.violations if line.startswith("record ")]
            if broken:  # named nowhere a learner reads: a line may name a hidden test
                result.notes.append(f"the judge's record broke off {len(broken)} time(s): a test process died")
            result.violations = [line for line in result.violations if not line.startswith("record ")]
        evidence = canaries.evidence(planted, result, run_was_cut=cut, exercises=exercises) + result.violations + evidence
        canaries.remove(planted, result)
        result.notes = [_hide_canaries(note, planted) for note in result.notes]
        skipped = [f"not taken from the submission: {item}" for item in tree.skipped]
        if bwrap is None:
            skipped.append("graded without a sandbox (--no-sandbox): only for trusted code")
        if args.echo and not args.reveal_hidden:
            skipped.append("--echo shows pytest's output only with --reveal-hidden (it holds the hidden tests)")
        shown = grade(rubric, exercises, result, target="starter", reveal_hidden=args.reveal_hidden,
                      submission=learner)
        full = grade(rubric, exercises, result, target="starter", reveal_hidden=True, submission=learner)
        if not args.reveal_hidden and scrub(shown, secret_detector(root, tree.root)):
            skipped.append("some messages were withheld: they quoted a hidden test or a solution")
        for graded in (shown, full):
            graded.notes += skipped
            graded.commit = commit
            graded.flags = (["unsandboxed"] if bwrap is None else []) + review.short_flags(flags)
            if evidence:
                withhold(graded, "tampered", "not graded: the run was tampered with")
                graded.flags.insert(0, "tampered")
                # The record lied somewhere: nothing it says (test names in notes) reaches the learner.
                graded.notes = [TAMPERED_NOTE, *skipped] if graded is shown else [TAMPERED_NOTE, *graded.notes]
        _write_instructor(instructor, full, evidence=evidence, flags=flags, measured=measured_in_subject(result))
        return publish(shown, args)


def measured_in_subject(run: Run) -> dict[str, set[str]]:
    """Criterion -> what its tests measured inside the learner's process (a judge/subject run only)."""
    measured: dict[str, set[str]] = {}
    for test in run.tests.values():
        for criterion in test.criteria if test.measured else []:
            measured.setdefault(criterion, set()).update(test.measured)
    return measured


SECRET_LINE_LENGTH = 20


def secret_detector(root: Path, tree: Path):
    """Does a text quote a hidden test's source or the solutions' code?"""
    hidden, public = set(), set()
    for path in (tree / "tests").rglob("test_*.py"):
        lines = {line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if len(line.strip()) >= SECRET_LINE_LENGTH}
        (hidden if path.name.startswith("test_hidden") else public).update(lines)
    hidden -= public
    # A line squeezed to its letters and digits, unless a public line squeezes to the same.
    squeezed = {unmasked.squeezed(line) for line in hidden} - {unmasked.squeezed(line) for line in public}
    squeezed = {line for line in squeezed if len(line) >= unmasked.MIN_SQUEEZED}
    code = solution_code(root) if (root / "solutions").is_dir() else None

    def quotes_a_secret(text: str) -> bool:
        forms = unmasked.forms(text)  # unescaped, decoded, reversed: a message may carry a line encoded
        for form in forms:
            if any(line in form for line in hidden):
                return True
            if code is not None and (any(line in form for line in code.lines) or bool(code.leaks_in(form))):
                return True
        squeezed_forms = [unmasked.squeezed(form) for form in forms]
        return any(line in form for form in squeezed_forms for line in squeezed)
    return quotes_a_secret


def _hide_canaries(note: str, planted: list[canaries.Canary]) -> str:
    for canary in planted:
        note = note.replace(canary.nodeid, CANARY_NAME)
    return note


def _write_instructor(folder: Path, full: Grade, *, evidence: list[str], flags: list[review.Flag],
                      measured: dict[str, set[str]] | None = None) -> None:
    """DIR/instructor/: the full report (hidden details, tamper evidence, review flags, what was measured
    inside the learner's process) and its JSON."""
    lines = []
    if evidence:
        lines += ["# Tampering evidence", "", *[f"- {line}" for line in evidence], ""]
    if flags:
        lines += ["# Review flags (read these lines before trusting the grade)", "",
                  *[f"- `{flag.where}`: {flag.what}" for flag in flags], ""]
    if measured:
        lines += ["# Measured inside the learner's process", "",
                  "These criteria's tests read what the learner's own process reports (its log records, a DAG run "
                  "or deployment it hosts, a module patched in it): a submission could forge those readings.", "",
                  *[f"- {criterion}: {', '.join(sorted(kinds))}" for criterion, kinds in sorted(measured.items())], ""]
    body = "\n".join(lines) + ("\n" if lines else "") + reports.markdown(full)
    for name, text in (("report.md", body),
                       ("results.json", json.dumps(full.to_json() | {"evidence": evidence,
                                                                     "review": [f.__dict__ for f in flags]},
                                                   indent=2, ensure_ascii=False) + "\n")):
        tmp = folder / f"{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(folder / name)
