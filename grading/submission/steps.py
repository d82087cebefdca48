"""The steps of grading one submission, in order (grading.submission.submission runs them).

Each step reads what the steps before it left in `Grading` and adds its own; a step that decides the
submission cannot be graded (no sandbox, a refused tree, a machine that fails the grader's own probes) ends the
grading there with its exit status, after writing what a learner and an instructor read.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grading.core.errors import GradingError
from grading.core.rubric import Exercise, Rubric
from grading.core.verdicts import COULD_NOT_GRADE, REFUSED, TAMPERED
from grading.learner.grade import publish, test_paths
from grading.scoring import reports
from grading.scoring.grade import grade, withhold
from grading.scoring.redaction import scrub
from grading.scoring.run import Run
from grading.submission import canaries, graded_tree, inventory, probes, review
from grading.submission.instructor_report import measured_in_subject, write_instructor
from grading.submission.quoted_secrets import secret_detector
from grading.suite import sandbox
from grading.suite.options import RunOptions, Sandbox
from grading.suite.runner import check_python_starts, run_suite

EXIT_COULD_NOT_GRADE = 2
TAMPERED_NOTE = ("Verdict: tampered. The graded run did not behave as an honest one does; the grade is "
                 "withheld (0 points) until your instructor has reviewed it.")
CANARY_NAME = "a grader's check"


@dataclass
class Grading:
    """One submission on its way to a grade."""

    args: argparse.Namespace
    root: Path  # the instructor repo
    rubric: Rubric
    starters: Path  # the submission's starters/, as found
    scratch: Path  # removed after grading
    out: Path
    learner: str
    commit: str | None
    bwrap: str | None = None
    tree: graded_tree.GradedTree | None = None
    flags: list[review.Flag] = field(default_factory=list)
    planted: list[canaries.Canary] = field(default_factory=list)
    known_tests: inventory.Inventory | None = None
    digest_before: dict[str, str] | None = None
    options: RunOptions | None = None
    result: Run | None = None
    evidence: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def exercises(self) -> list[Exercise]:
        return list(self.rubric.exercises)

    @property
    def instructor(self) -> Path:
        return self.out / "instructor"

    def could_not_grade(self, why: str) -> int:
        empty = grade(self.rubric, self.exercises, Run(notes=[why]), target="starter", submission=self.learner)
        empty.verdict, empty.flags, empty.commit = COULD_NOT_GRADE, ["infrastructure"], self.commit
        reports.write_all(empty, self.out)
        print(f"workbook grade-submission: {why}", file=sys.stderr)
        return EXIT_COULD_NOT_GRADE


Step = Callable[[Grading], int | None]  # None: go on; a number: grading ends with this exit status


def find_sandbox(g: Grading) -> int | None:
    if g.args.no_sandbox:
        return None
    try:
        g.bwrap = sandbox.probe()
    except sandbox.SandboxUnavailable as error:
        return g.could_not_grade(f"refusing to grade without a sandbox: {error}. Pass --no-sandbox only for "
                                 "code you trust.")
    return None


def build_tree(g: Grading) -> int | None:
    """A fresh graded tree with the submission's starters/, reviewed; what cannot be graded safely is refused."""
    tree_root = Path(g.args.keep).resolve() if g.args.keep else g.scratch / "tree"
    if g.args.keep and tree_root.exists():
        shutil.rmtree(tree_root)
    g.tree = graded_tree.build(g.root, g.starters, tree_root)
    g.flags = [] if g.tree.refusals else review.scan(g.tree.root / graded_tree.LEARNER_OWNED)
    g.tree.refusals += review.refusals(g.flags)
    g.skipped = [f"not taken from the submission: {item}" for item in g.tree.skipped]
    if not g.tree.refusals:
        return None
    refused = withhold(grade(g.rubric, g.exercises, Run(), target="starter", submission=g.learner), REFUSED,
                       "not graded: the submission was refused (see the notes)")
    refused.flags = [f"refused: {reason}" for reason in g.tree.refusals]
    refused.notes = [f"Refused: {reason}." for reason in g.tree.refusals] + g.skipped
    refused.commit = g.commit
    write_instructor(g.instructor, refused, evidence=[], flags=[])
    return publish(refused, g.args)


def prepare_checks(g: Grading) -> int | None:
    """What the run is held to: the grader's own test names, the tree's digest and, in one process, canaries."""
    # Canaries test the test process's honesty: a judge that never runs learner code needs none, and a
    # judge starved by the subject (a fork bomb) would leave them unrun, which is not tampering.
    g.planted = canaries.plant(g.tree.root, g.exercises) if not g.args.judge_and_subject else []
    g.known_tests = inventory.Inventory.of_tree(g.tree.root, g.exercises)  # canaries included
    g.digest_before = graded_tree.digest(g.tree.root)
    return None


def run_tests(g: Grading) -> int | None:
    """The graded suite in the sandbox; "could not grade" only when the grader's own probes fail too."""
    args = g.args
    log = g.instructor / "pytest-output.txt"
    log.write_text("", encoding="utf-8")
    paths = test_paths(g.tree.root, g.exercises)
    limits = sandbox.Limits(memory_bytes=int(args.max_memory_gib * 1024**3), processes=args.max_processes)
    g.options = RunOptions(
        root=g.tree.root, target="starter", paths=paths, per_test_timeout=args.per_test_timeout,
        run_timeout=args.run_timeout, log=log, log_is_safe=False, echo=args.echo and args.reveal_hidden,
        judge_and_subject=args.judge_and_subject, pytest_starts=probes.pytest_starts,
        sandbox=Sandbox(bwrap=g.bwrap, cache=g.tree.root / graded_tree.CACHE_FOLDER, limits=limits)
        if g.bwrap else None)
    try:
        if g.options.sandbox:  # once per submission, before any test process
            check_python_starts(g.options)
        g.result = run_suite(g.options) if paths else Run(notes=["no exercise has a test folder yet"])
        probes.settle_infrastructure(g.options, g.result)  # Airflow failing is believed only if it fails the grader too
    except GradingError as error:
        return g.could_not_grade(str(error))
    return None


def gather_evidence(g: Grading) -> int | None:
    """Anything that says the run was interfered with: a changed tree, names the grader does not have, a record
    that breaks its rules (one process), a canary with the wrong outcome."""
    result = g.result
    changed = [f"graded tree {line}" for line in graded_tree.changes(g.digest_before, graded_tree.digest(g.tree.root))]
    result.violations += inventory.confine(result, g.known_tests)
    cut = any("was cut" in note for note in result.notes)
    if g.args.judge_and_subject:
        # The judge writes the record: a broken order there is a judge that died (killed or starved by the
        # subject), which costs the tests it was running, not a forgery.
        broken = [line for line in result.violations if line.startswith("record ")]
        if broken:  # named nowhere a learner reads: a line may name a hidden test
            result.notes.append(f"the judge's record broke off {len(broken)} time(s): a test process died")
        result.violations = [line for line in result.violations if not line.startswith("record ")]
    g.evidence = (canaries.evidence(g.planted, result, run_was_cut=cut, exercises=g.exercises)
                  + result.violations + changed)
    canaries.remove(g.planted, result)
    result.notes = [_hide_canaries(note, g.planted) for note in result.notes]
    return None


def write_grades(g: Grading) -> int | None:
    """The learner's grade (hidden details and quoted secrets withheld) and the instructor's full one."""
    args, result = g.args, g.result
    skipped = list(g.skipped)
    if g.bwrap is None:
        skipped.append("graded without a sandbox (--no-sandbox): only for trusted code")
    if args.echo and not args.reveal_hidden:
        skipped.append("--echo shows pytest's output only with --reveal-hidden (it holds the hidden tests)")
    shown = grade(g.rubric, g.exercises, result, target="starter", reveal_hidden=args.reveal_hidden,
                  submission=g.learner)
    full = grade(g.rubric, g.exercises, result, target="starter", reveal_hidden=True, submission=g.learner)
    if not args.reveal_hidden and scrub(shown, secret_detector(g.root, g.tree.root)):
        skipped.append("some messages were withheld: they quoted a hidden test or a solution")
    for graded in (shown, full):
        graded.notes += skipped
        graded.commit = g.commit
        graded.flags = (["unsandboxed"] if g.bwrap is None else []) + review.short_flags(g.flags)
        if g.evidence:
            withhold(graded, TAMPERED, "not graded: the run was tampered with")
            graded.flags.insert(0, TAMPERED)
            # The record lied somewhere: nothing it says (test names in notes) reaches the learner.
            graded.notes = [TAMPERED_NOTE, *skipped] if graded is shown else [TAMPERED_NOTE, *graded.notes]
    write_instructor(g.instructor, full, evidence=g.evidence, flags=g.flags, measured=measured_in_subject(result))
    return publish(shown, args)


# Grading a submission is exactly these steps, in this order.
STEPS: tuple[Step, ...] = (find_sandbox, build_tree, prepare_checks, run_tests, gather_evidence, write_grades)


def _hide_canaries(note: str, planted: list[canaries.Canary]) -> str:
    for canary in planted:
        note = note.replace(canary.nodeid, CANARY_NAME)
    return note
