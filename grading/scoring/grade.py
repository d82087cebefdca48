"""From a run to a grade: a criterion earns its points when every one of its tests passed. The grade is what
every report is made of (grading.scoring.reports) and results.json (schema `workbook-grade/1`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from grading.core.rubric import Criterion, Exercise, Rubric
from grading.scoring.redaction import (
    HIDDEN_FILE_MESSAGE,
    HIDDEN_HINT,
    HIDDEN_MESSAGE,
    HIDDEN_NOT_RUN,
    HIDDEN_TEST,
    hidden_tests,
    redact,
)
from grading.scoring.run import Run, TestOutcome

RESULTS_SCHEMA = "workbook-grade/1"


@dataclass
class CriterionResult:
    id: str
    title: str
    visibility: str
    status: str  # passed | failed | not_run | not_collected | infrastructure (could not grade)
    points: int
    max_points: int
    message: str
    hint: str
    tests: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass
class TaskResult:
    id: str
    title: str
    points: int
    max_points: int
    criteria: list[CriterionResult]


@dataclass
class ExerciseResult:
    id: str
    title: str
    points: int
    max_points: int
    tasks: list[TaskResult]
    collection_errors: dict[str, str]

    @property
    def criteria(self) -> list[CriterionResult]:
        return [c for t in self.tasks for c in t.criteria]


@dataclass
class Grade:
    target: str
    exercises: list[ExerciseResult]
    notes: list[str]
    run: dict[str, Any]
    submission: str | None = None
    commit: str | None = None  # the graded tree's git commit, when it is a git repository
    generated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    verdict: str = "graded"
    flags: list[str] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(e.points for e in self.exercises)

    @property
    def max_points(self) -> int:
        return sum(e.max_points for e in self.exercises)

    @property
    def percent(self) -> float:
        return round(100.0 * self.points / self.max_points, 1) if self.max_points else 0.0

    @property
    def criteria(self) -> list[CriterionResult]:
        return [c for e in self.exercises for c in e.criteria]

    def to_json(self) -> dict[str, Any]:
        """results.json, schema `workbook-grade/1` (documented in grading/README.md)."""
        return {
            "schema": RESULTS_SCHEMA,
            "generated_at": self.generated_at,
            "target": self.target,
            "submission": self.submission,
            "commit": self.commit,
            "verdict": self.verdict,
            "flags": self.flags,
            "total": {"points": self.points, "max_points": self.max_points, "percent": self.percent,
                      "criteria_passed": sum(c.passed for c in self.criteria),
                      "criteria": len(self.criteria)},
            "notes": self.notes,
            "run": self.run,
            "exercises": [asdict(e) | {"percent": _percent(e.points, e.max_points)} for e in self.exercises],
        }


def _percent(points: int, max_points: int) -> float:
    return round(100.0 * points / max_points, 1) if max_points else 0.0


def withhold(grade_: Grade, verdict: str, reason: str) -> Grade:
    """The same grade with every criterion at 0 points (a tampered or refused submission earns nothing)."""
    for exercise in grade_.exercises:
        for task in exercise.tasks:
            for c in task.criteria:
                c.status, c.points, c.message, c.tests = "failed", 0, reason, []
            task.points = 0
        exercise.points = 0
        exercise.collection_errors = {}
    grade_.verdict = verdict
    return grade_


def grade(rubric: Rubric, exercises: list[Exercise], run: Run, *, target: str, reveal_hidden: bool = False,
          submission: str | None = None, commit: str | None = None) -> Grade:
    """The grade of a run. Unless `reveal_hidden`, nothing of a hidden test but its criterion's title and
    pass/fail gets in: no test id, file name, traceback, assertion text or output (every report format is
    made from this)."""
    notes = list(run.notes)
    errors = dict(run.collection_errors)
    if not reveal_hidden:
        hidden_ids, hidden_paths = hidden_tests(rubric, run)
        notes = [redact(n, hidden_ids, hidden_paths) for n in notes]
        public_errors = {p: redact(m, hidden_ids, hidden_paths) for p, m in errors.items() if p not in hidden_paths}
        for number, path in enumerate(sorted(p for p in errors if p in hidden_paths), start=1):
            folder = path.rsplit("/", 1)[0] if "/" in path else path
            public_errors[f"{folder}/({HIDDEN_TEST} file {number})"] = HIDDEN_FILE_MESSAGE
        errors = public_errors
    by_criterion: dict[str, list[TestOutcome]] = {}
    for test in run.tests.values():
        for criterion_id in test.criteria:
            by_criterion.setdefault(criterion_id, []).append(test)

    results = []
    for exercise in exercises:
        folder = exercise.test_folder.rstrip("/") + "/"
        broken = {path: msg for path, msg in errors.items()
                  if path.startswith(folder) or path.rstrip("/") + "/" == folder}
        tasks = []
        for task in exercise.tasks:
            criteria = [_criterion_result(c, by_criterion.get(c.id, []), broken, reveal_hidden)
                        for c in task.criteria]
            tasks.append(TaskResult(id=task.id, title=task.title, points=sum(c.points for c in criteria),
                                    max_points=task.points, criteria=criteria))
        results.append(ExerciseResult(
            id=exercise.id, title=exercise.title, points=sum(t.points for t in tasks),
            max_points=exercise.criteria_points, tasks=tasks, collection_errors=broken))
    counts: dict[str, int] = {}
    for test in run.tests.values():
        counts[test.outcome] = counts.get(test.outcome, 0) + 1
    summary = {"tests": len(run.tests), "outcomes": counts, "collection_errors": len(run.collection_errors),
               "pytest_exit_codes": run.exit_codes, "duration_s": round(run.duration, 1)}
    return Grade(target=target, exercises=results, notes=notes, run=summary, submission=submission,
                 commit=commit)


def _criterion_result(criterion: Criterion, tests: list[TestOutcome], broken: dict[str, str],
                      reveal_hidden: bool) -> CriterionResult:
    status, message = "passed", ""
    if not tests:
        status = "not_collected"
        if broken:
            message = f"no test ran: {_broken_summary(broken)}"
        else:
            message = "no test for this criterion was collected"
    else:
        failing = [t for t in tests if t.outcome != "passed"]
        ran_and_failed = [t for t in failing if t.outcome not in ("not_run", "infrastructure")]
        infrastructure = [t for t in failing if t.outcome == "infrastructure"]
        if ran_and_failed:
            first = ran_and_failed[0]
            status = "failed"
            message = _test_message(first)
        elif infrastructure:
            # Airflow or the machine failed, twice (the runner re-ran the test): no verdict on the code.
            status = "infrastructure"
            lines = (infrastructure[0].message or "").strip().splitlines()
            message = f"could not grade (infrastructure): {lines[0] if lines else infrastructure[0].nodeid}"
        elif failing:
            status, message = "not_run", failing[0].message
        elif broken:
            # Some of its tests may live in a file that did not import: it cannot be shown to pass.
            status, message = "failed", _broken_summary(broken)
    secret = not reveal_hidden and (criterion.hidden or any(t.hidden for t in tests))
    if secret and status != "passed":
        message = HIDDEN_MESSAGE if status == "failed" else HIDDEN_NOT_RUN
    points = criterion.points if status == "passed" else 0
    return CriterionResult(
        id=criterion.id, title=criterion.title, visibility=criterion.visibility, status=status, points=points,
        max_points=criterion.points, message=message,
        hint=criterion.hint if reveal_hidden or not criterion.hidden else HIDDEN_HINT,
        tests=[{"nodeid": None if secret and (criterion.hidden or t.hidden) else t.nodeid, "outcome": t.outcome,
                "duration_s": t.duration} for t in tests],
    )


def _broken_summary(broken: dict[str, str]) -> str:
    """`tests/ex04/test_a.py could not be imported: ModuleNotFoundError: ...` (the first, and how many more)."""
    paths = sorted(broken, key=lambda p: (HIDDEN_TEST in p, p))  # a public file's reason can be shown
    more = f" (and {len(paths) - 1} more test file{'s' if len(paths) > 2 else ''})" if len(paths) > 1 else ""
    return f"{paths[0]}{more} could not be imported: {broken[paths[0]]}"


def _test_message(test: TestOutcome) -> str:
    if test.timed_out:
        return f"timed out: {test.nodeid} did not finish in time ({test.message})"
    if test.outcome == "crashed":
        return f"{test.nodeid}: {test.message}"
    if test.outcome == "skipped":
        return f"skipped, which earns nothing: {test.message}"
    return test.message or f"{test.nodeid} {test.outcome}"
