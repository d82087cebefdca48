"""The class roster: a folder of learner repos or a CSV (learner,repo,commit), and the learners a run grades
(`--only`, `--batch I/N` of a CI matrix)."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from grading.core.errors import RosterError

LEARNER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
URL = re.compile(r"^(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")


@dataclass(frozen=True)
class Entry:
    """One learner of the class: where the submission is, and the commit to grade (None: as it is)."""
    learner: str
    repo: str
    commit: str | None = None
    line: int = 0

    @property
    def is_url(self) -> bool:
        return bool(URL.match(self.repo))


def read_roster(source: Path) -> list[Entry]:
    """A folder (each sub-folder is a learner's repo, named after it) or a CSV roster (learner,repo,commit)."""
    if source.is_dir():
        entries = [Entry(learner=p.name, repo=str(p.resolve()))
                   for p in sorted(source.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        for entry in entries:
            _check_name(entry.learner, f"{source}/{entry.learner}")
        if not entries:
            raise RosterError(f"{source} has no sub-folder: expected one learner's repo per sub-folder")
        return entries
    if not source.is_file():
        raise RosterError(f"{source}: no such roster file or folder")
    return parse_roster(source.read_text(encoding="utf-8-sig"), base=source.resolve().parent, name=str(source))


def parse_roster(text: str, *, base: Path, name: str = "roster") -> list[Entry]:
    rows = [row for row in csv.reader(io.StringIO(text))]
    content = [(number, row) for number, row in enumerate(rows, start=1)
               if row and any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")]
    if not content:
        raise RosterError(f"{name}: empty roster (expected a header learner,repo,commit and one row per learner)")
    header_line, header = content[0]
    columns = [cell.strip().lower() for cell in header]
    if columns[:2] != ["learner", "repo"] or (columns[2:] and columns[2] != "commit"):
        raise RosterError(f"{name}:{header_line}: the header must be learner,repo[,commit], got {','.join(header)}")
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for number, row in content[1:]:
        cells = [cell.strip() for cell in row] + [""] * 3
        learner, repo, commit = cells[0], cells[1], cells[2] if len(columns) > 2 else ""
        where = f"{name}:{number}"
        _check_name(learner, where)
        if learner in seen:
            raise RosterError(f"{where}: learner {learner!r} is listed twice (first on line {seen[learner]})")
        seen[learner] = number
        if not repo:
            raise RosterError(f"{where}: learner {learner!r} has no repo")
        if commit and not re.fullmatch(r"[0-9a-fA-F]{7,40}", commit):
            raise RosterError(f"{where}: {commit!r} is not a commit SHA")
        if not URL.match(repo):
            repo = str((base / repo).resolve())
        entries.append(Entry(learner=learner, repo=repo, commit=commit.lower() or None, line=number))
    if not entries:
        raise RosterError(f"{name}: the roster lists no learner")
    return entries


def _check_name(learner: str, where: str) -> None:
    if not LEARNER_NAME.fullmatch(learner):
        raise RosterError(f"{where}: {learner!r} cannot name a learner (letters, digits, '.', '_', '-'; "
                          "it names the learner's report folder)")


def select(entries: list[Entry], *, only: list[str] | None, batch: str | None) -> list[Entry]:
    """The learners asked for (`--only`), or batch I of N (`--batch I/N`, 1-based, contiguous slices)."""
    if only:
        missing = sorted(set(only) - {e.learner for e in entries})
        if missing:
            raise RosterError(f"--only: not in the roster: {', '.join(missing)}")
        entries = [e for e in entries if e.learner in set(only)]
    if batch:
        index, count = batch_numbers(batch)
        size = -(-len(entries) // count)
        entries = entries[(index - 1) * size: index * size]
    return entries


def batch_numbers(batch: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)/(\d+)", batch)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise RosterError(f"--batch {batch!r}: expected I/N with 1 <= I <= N, for example 3/8")
    return int(match[1]), int(match[2])


def batches_for(count: int, *, per_job: int, max_jobs: int = 256) -> list[str]:
    """The `--batch` values of a CI matrix: at most `per_job` learners a job, at most `max_jobs` jobs."""
    jobs = min(max_jobs, max(1, -(-count // max(1, per_job))))
    return [f"{i}/{jobs}" for i in range(1, jobs + 1)]
