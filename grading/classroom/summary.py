"""summary.md of a class (verdicts, score distribution, most missed criteria, per task, what to review) and its
histogram.png."""

from __future__ import annotations

import io
import statistics
from pathlib import Path
from typing import Any

from grading.core.atomic import write_bytes
from grading.core.rubric import Rubric
from grading.core.verdicts import VERDICT_FLAG, VERDICTS

HISTOGRAM_BINS = 10
MOST_MISSED = 10


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
