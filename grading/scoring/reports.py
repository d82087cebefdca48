"""The grade, written for people (terminal table, report.md for a CI job summary) and for machines
(results.json, junit.xml with one test case per criterion)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from grading.core.atomic import write_text
from grading.scoring.grade import Grade, TaskResult
from grading.scoring.redaction import HIDDEN_MESSAGE, HIDDEN_NOT_RUN

MARKS = {"passed": "✅", "failed": "❌", "not_run": "⏸", "not_collected": "⚠", "infrastructure": "🛠"}
TODO_PREFIX = "NotImplementedError: Exercise"
# Absolute paths of the graded copy or of temp folders: a learner's report names files from the repo root.
REPO_FOLDERS = re.compile(r"(?:/[^\s'\"():]+)*?/((?:starters|tests|fixtures|exercises|grading)/[^\s'\"():]*)")
TEMP_PATH = re.compile(r"(?:/tmp|/var/tmp|/private/var/folders|/var/folders)/[^\s'\"():]+")
STATUS_WORDS = {"passed": "passed", "failed": "failed", "not_run": "not run", "not_collected": "no test ran",
                "infrastructure": "could not grade (infrastructure)"}


def table(grade: Grade) -> str:
    """The terminal view: one line per task, then the criteria that earned nothing, with why."""
    lines = [f"{'exercise':<10} {'task':<5} {'title':<40} {'criteria':>8} {'points':>8}"]
    for exercise in grade.exercises:
        for task in exercise.tasks:
            met = sum(c.passed for c in task.criteria)
            lines.append(f"{exercise.id:<10} {task.id.rsplit('.', 1)[1]:<5} {_cut(task.title, 40):<40} "
                         f"{f'{met}/{len(task.criteria)}':>8} {f'{task.points}/{task.max_points}':>8}")
        lines.append(f"{exercise.id:<10} {'all':<5} {_cut(exercise.title, 40):<40} "
                     f"{f'{sum(c.passed for c in exercise.criteria)}/{len(exercise.criteria)}':>8} "
                     f"{f'{exercise.points}/{exercise.max_points}':>8}")
    lines.append(f"total: {grade.points}/{grade.max_points} points ({grade.percent:g} %), target {grade.target}")
    missed = [c for c in grade.criteria if not c.passed]
    if missed:
        lines += ["", "criteria not met:"]
        for exercise in grade.exercises:
            shared = shared_failure(exercise.criteria)
            if shared is not None:
                lines.append(f"  {exercise.id} (every criterion not met, {_count(exercise.criteria)}): "
                             f"{_clean(shared)}")
                continue
            for task in exercise.tasks:
                summary = task_summary(task)
                not_met = [c for c in task.criteria if not c.passed]
                if summary is not None:
                    lines.append(f"  {task.id} ({summary[1]}, {_count(not_met)}): {_clean(summary[2])}")
                    continue
                lines += [f"  {c.id} ({STATUS_WORDS.get(c.status, c.status)}): {_clean(c.message)}"
                          for c in not_met]
    lines += [f"note: {note}" for note in grade.notes]
    return "\n".join(lines)


def markdown(grade: Grade) -> str:
    """report.md, readable in a minute (and ready for $GITHUB_STEP_SUMMARY): a table per exercise with a row
    per task, an unstarted task in one line, each criterion not met in one line with its hint."""
    out = [f"# Workbook grade: {grade.points} / {grade.max_points} points ({grade.percent:g} %)", ""]
    meta = [f"target `{grade.target}`", f"graded {grade.generated_at}"]
    if grade.commit:
        meta.insert(0, f"commit `{grade.commit[:12]}`")
    if grade.submission:
        meta.insert(0, f"submission {_code(_clean(grade.submission))}")
    out += [" · ".join(meta), ""]
    out += [f"> **Note:** {_md(_clean(note))}" for note in grade.notes]
    if grade.notes:
        out.append("")
    out += ["| exercise | criteria met | points |", "| --- | ---: | ---: |"]
    for exercise in grade.exercises:
        out.append(f"| {exercise.id} · {_md(exercise.title)} | {sum(c.passed for c in exercise.criteria)}/"
                   f"{len(exercise.criteria)} | {exercise.points}/{exercise.max_points} |")
    for exercise in grade.exercises:
        out += ["", f"## {exercise.id} · {_md(exercise.title)}: {exercise.points}/{exercise.max_points}", ""]
        for path, reason in exercise.collection_errors.items():
            out += [f"> **Could not import** {_code(_clean(path))}: {_md(_clean(reason))}", ""]
        shared = shared_failure(exercise.criteria)
        if shared is not None:
            out += [f"> **Every criterion not met here:** {_md(_clean(shared))}", ""]
        out += ["| task | criteria met | points | |", "| --- | ---: | ---: | --- |"]
        for task in exercise.tasks:
            out.append(f"| {task.id.rsplit('.', 1)[1]} · {_md(task.title)} | {sum(c.passed for c in task.criteria)}/"
                       f"{len(task.criteria)} | {task.points}/{task.max_points} | {_task_state(task)} |")
        lines = []
        for task in exercise.tasks if shared is None else ():
            missed = [c for c in task.criteria if not c.passed]
            if not missed:
                continue
            summary = task_summary(task)
            if summary is not None:
                lines.append(f"- {MARKS['not_run']} **{task.id}** {_md(task.title)}: {summary[1]} "
                             f"({_count(missed)}): {_md(_clean(summary[2]))}")
                continue
            lines += [f"- {MARKS.get(c.status, '⚠')} **{c.id}** {_md(c.title)}{' *(hidden)*' if c.visibility == 'hidden' else ''}"
                      f": {_md(_clean(c.message))} · *Hint:* {_md(c.hint)}" for c in missed]
        if lines:
            out += ["", *lines]
    return "\n".join(out) + "\n"


def _count(missed: list) -> str:
    return f"{len(missed)} {'criterion' if len(missed) == 1 else 'criteria'}"


def shared_failure(criteria: list) -> str | None:
    """The one reason every criterion not met shares (a starter that does not import), when there are several."""
    missed = [c for c in criteria if not c.passed]
    messages = _shown_messages(missed)
    if len(missed) > 1 and len(messages) == 1 and not any(c.passed for c in criteria):
        return messages.pop()
    return None


def _shown_messages(missed: list) -> set[str]:
    """The reasons given, a hidden criterion's placeholder left out (it hides its reason, not a different one)."""
    return {c.message for c in missed if c.message not in (HIDDEN_MESSAGE, HIDDEN_NOT_RUN)}


def task_summary(task: TaskResult) -> tuple[str, str, str] | None:
    """A task told in one line instead of a line per criterion: (kind, what, why), or None.

    Not started: nothing met and every failure is the starter's todo. Unfinished: nothing met and a failure
    is still a todo (the rest fail because of it, or on the starter's placeholders). A task that fails for
    reasons of its own keeps a line per criterion, each with its hint."""
    todo = unstarted(task)
    if todo is not None:
        return "not_started", "not started", todo
    if not any(c.passed for c in task.criteria):
        todos = [_todo_of(c.message) for c in task.criteria if c.status == "failed"]
        todo = next((t for t in todos if t), None)
        if todo is not None:
            return "unfinished", "no criterion met yet; its code still raises a todo", todo
    return None


# A todo quoted inside a test's message: `got NotImplementedError('Exercise 4 · Task 2: implement ...')`.
QUOTED_TODO = re.compile(r"NotImplementedError(?::\s*|\(['\"])(Exercise [^'\"]*)")


def _todo_of(message: str) -> str | None:
    match = QUOTED_TODO.search(message)
    return f"NotImplementedError: {match.group(1).rstrip('…').strip()}" if match else None


def unstarted(task: TaskResult) -> str | None:
    """The starter's todo line when nothing of the task works yet and every failure is that todo."""
    if any(c.passed for c in task.criteria):
        return None
    failed = [c.message for c in task.criteria if c.status == "failed"]
    todos = [m for m in failed if m.startswith(TODO_PREFIX)]
    # A hidden criterion's failure shows no detail: it does not tell a started task from an unstarted one.
    if not todos or any(m != HIDDEN_MESSAGE and not m.startswith(TODO_PREFIX) for m in failed):
        return None
    return todos[0]


def _task_state(task: TaskResult) -> str:
    if all(c.passed for c in task.criteria):
        return MARKS["passed"]
    summary = task_summary(task)
    return {"not_started": "not started", "unfinished": "unfinished"}.get(summary[0], "") if summary else ""


def junit(grade: Grade) -> str:
    """junit.xml: a test suite per exercise, a test case per criterion (CI tools show criteria, not tests)."""
    suites = ET.Element("testsuites", name="workbook", tests=str(len(grade.criteria)),
                        failures=str(sum(not c.passed for c in grade.criteria)))
    for exercise in grade.exercises:
        criteria = exercise.criteria
        suite = ET.SubElement(suites, "testsuite", name=f"{exercise.id} {exercise.title}",
                              tests=str(len(criteria)), failures=str(sum(not c.passed for c in criteria)),
                              errors="0", skipped="0",
                              time=f"{sum(t['duration_s'] for c in criteria for t in c.tests):.3f}")
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="points",
                      value=f"{exercise.points}/{exercise.max_points}")
        for c in criteria:
            case = ET.SubElement(suite, "testcase", classname=c.id.rsplit(".", 1)[0], name=f"{c.id}: {c.title}",
                                 time=f"{sum(t['duration_s'] for t in c.tests):.3f}")
            if not c.passed:
                failure = ET.SubElement(case, "failure", type=c.status, message=c.message)
                failure.text = f"{c.message}\nHint: {c.hint}\nPoints: 0/{c.max_points}"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def results_json(grade: Grade) -> str:
    return json.dumps(grade.to_json(), indent=2, ensure_ascii=False) + "\n"


FORMATS = {"table": table, "markdown": markdown, "json": results_json, "junit": junit}


def write_all(grade: Grade, out: Path) -> dict[str, Path]:
    """Always all four: report.md, results.json, junit.xml and the table as report.txt."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"report.md": markdown(grade), "results.json": results_json(grade), "junit.xml": junit(grade),
             "report.txt": table(grade) + "\n"}
    written = {}
    for name, text in files.items():
        path = out / name
        write_text(path, text)
        written[name] = path
    return written


def _clean(text: str) -> str:
    """`/tmp/workbook-x/starters/a.py:3` -> `starters/a.py:3`; other temp paths -> `<temp>/name`."""
    text = REPO_FOLDERS.sub(lambda m: m[1], text)
    return TEMP_PATH.sub(lambda m: "<temp>/" + m[0].rstrip("/").rsplit("/", 1)[-1], text)


def _code(text: str) -> str:
    """Inline code: shown as written (no escapes: `&lt;` would show as is), on one line."""
    text = " ".join(text.replace("`", "'").split())
    return f"`{text}`"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
