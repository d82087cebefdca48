"""`gradebook DIR`: gradebook.csv, summary.md and histogram.png from the learners' records in a class folder
(grade-class writes them at its end; `gradebook` rebuilds them, for example after merging CI jobs' folders)."""

from __future__ import annotations

import argparse
import csv
import io
import time
from pathlib import Path
from typing import Any

from grading.classroom.class_record import LEARNERS, RECORD_NAME, could_not_grade, read_records
from grading.classroom.roster import Entry, read_roster, select
from grading.classroom.summary import summary_markdown, write_histogram
from grading.core.atomic import write_text
from grading.core.errors import GradingError
from grading.core.rubric import Rubric, load

# Exit codes of grade-class and gradebook: some rows have no grade (each says why); no row has one (grading
# itself is broken here, as on a machine where the sandbox cannot run).
EXIT_SOME_NOT_GRADED, EXIT_NONE_GRADED = 2, 3


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


def register(commands: argparse._SubParsersAction) -> None:
    rebuild = commands.add_parser("gradebook", help="rebuild gradebook.csv and summary.md from a class folder",
                                  description="Rebuild gradebook.csv, summary.md and histogram.png from the "
                                              "learners' records in a class folder (for example after merging "
                                              "the folders of several CI jobs).")
    rebuild.add_argument("out", type=Path, help="the class folder")
    rebuild.add_argument("--roster", type=Path, default=None,
                         help="the roster graded: a learner of it without a record gets a \"could not grade\" row")
    rebuild.add_argument("--only", action="append", metavar="LEARNER",
                         help="with --roster: only this learner was graded (repeat)")
    rebuild.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
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
