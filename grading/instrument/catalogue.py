"""The catalogue of `workbook mistakes`: its entries, read from their files.

A mistake file starts with comment lines, then the code:

    # criterion: ex04.t1.waits_for_status
    # violates: "the chapter's words it breaks, quoted"
    # target: module                      (optional; or dags/<file>.py)
    <code>

`target: module` (the default) appends the code to the exercise's module, so it replaces the class or
function of the same name; `target: dags/<file>.py` replaces that DAG file with the code.

Correct alternatives are checked the same way, the other way round: `tests/workbook/alternatives/
<exercise>.t<N>[.<reading>].alternative` starts with `# task: ex04.t1` and `# how it differs: ...` and must earn
every criterion of its task. An "alternative reading" (a choice the chapter leaves open, made otherwise than
the reference makes it: a log level, a message's words, a file's inner layout) may instead change the
reference in place with lines `# replace: OLD => NEW` (each OLD must be in the reference).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CATALOGUE = Path("tests/workbook/mistakes")
ALTERNATIVES = Path("tests/workbook/alternatives")
HEADER = re.compile(r"#\s*(criterion|violates|target|task|how it differs|replace|gap):\s*(.*)")


class MistakeError(ValueError):
    """A catalogue file that is not a well-formed mistake."""


@dataclass(frozen=True)
class Mistake:
    """A mistake (its criterion must earn nothing) or a correct alternative (its task must earn everything)."""
    path: str  # relative to the workbook
    criterion: str  # a mistake's criterion; an alternative's task
    violates: str  # a mistake's quote of the chapter; how an alternative differs
    target: str
    code: str
    kind: str = "mistake"  # mistake | alternative
    replacements: tuple[tuple[str, str], ...] = ()  # (old, new) text replaced in the reference module
    gap: str = ""  # a mistake the suite is known not to catch, and why (reported, never hidden)

    @property
    def name(self) -> str:
        return Path(self.path).name.rsplit(".", 1)[0]

    @property
    def exercise(self) -> str:
        return self.criterion.split(".", 1)[0]


def parse(path: Path, root: Path) -> Mistake:
    text = path.read_text(encoding="utf-8")
    fields: dict[str, str] = {}
    replacements: list[tuple[str, str]] = []
    for line in text.splitlines():
        match = HEADER.match(line)
        if not match:
            break
        key, value = match.groups()
        if key == "replace":
            old, arrow, new = value.partition(" => ")
            if not arrow or not old:
                raise MistakeError(f"{path}: a replace line reads '# replace: OLD => NEW', got {line!r}")
            replacements.append((old, new))
            continue
        fields[key] = (fields[key] + " " + value.strip()) if key in fields else value.strip()
    kind = "alternative" if path.suffix == ".alternative" else "mistake"
    needed = ("task", "how it differs") if kind == "alternative" else ("criterion", "violates")
    missing = [k for k in needed if not fields.get(k)]
    if missing:
        raise MistakeError(f"{path}: no {' and no '.join(missing)} line at the top")
    target = fields.get("target", "module")
    if target != "module" and not re.fullmatch(r"dags/[a-z0-9_]+\.py", target):
        raise MistakeError(f"{path}: target must be 'module' or 'dags/<file>.py', got {target!r}")
    return Mistake(path=path.relative_to(root).as_posix(), criterion=fields[needed[0]],
                   violates=fields[needed[1]], target=target, code=text, kind=kind,
                   replacements=tuple(replacements), gap=fields.get("gap", ""))


def catalogue(root: Path, exercises: list[str] | None = None, *, alternatives: bool = True) -> list[Mistake]:
    """The mistakes, then the per-task alternatives (`<exercise>.t<N>.alternative`)."""
    found = sorted((root / CATALOGUE).glob("*/*.mistake"))
    if alternatives:
        found += sorted((root / ALTERNATIVES).glob("*.t[0-9]*.alternative"))
    entries = [parse(p, root) for p in found]
    entries = [e for e in entries if not exercises or e.exercise in exercises]
    for entry in entries:
        if entry.kind == "mistake" and Path(entry.path).parent.name != entry.exercise:
            raise MistakeError(f"{entry.path}: names {entry.criterion}, which is not of its folder's exercise")
    return entries
