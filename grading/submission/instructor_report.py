"""DIR/instructor/: what only the instructor reads of a graded submission: the full report (hidden details,
tamper evidence, review flags, what was measured inside the learner's process), its JSON and pytest's log."""

from __future__ import annotations

import json
from pathlib import Path

from grading.core.atomic import write_text
from grading.scoring import reports
from grading.scoring.grade import Grade
from grading.scoring.run import Run
from grading.submission.review import Flag

INSTRUCTOR_FOLDER = "instructor"


def measured_in_subject(run: Run) -> dict[str, set[str]]:
    """Criterion -> what its tests measured inside the learner's process (a judge/subject run only)."""
    measured: dict[str, set[str]] = {}
    for test in run.tests.values():
        for criterion in test.criteria if test.measured else []:
            measured.setdefault(criterion, set()).update(test.measured)
    return measured


def write_instructor(folder: Path, full: Grade, *, evidence: list[str], flags: list[Flag],
                     measured: dict[str, set[str]] | None = None) -> None:
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
    write_text(folder / "report.md", "\n".join(lines) + ("\n" if lines else "") + reports.markdown(full))
    write_text(folder / "results.json",
               json.dumps(full.to_json() | {"evidence": evidence, "review": [f.__dict__ for f in flags]},
                          indent=2, ensure_ascii=False) + "\n")
