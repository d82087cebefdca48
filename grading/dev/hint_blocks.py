"""The hints a chapter shows: generated from the rubric's task hints between marker comments.

    <!-- hints: ex04.t1 -->
    ...rendered from the rubric by `workbook dev hints`...
    <!-- /hints -->

The rubric is the one source: `workbook hint` prints the same levels one at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from grading.core.rubric import Exercise, Task

CODE_SPAN = re.compile(r"(`[^`]*`)")
MARKUP = re.compile(r"[<*]")
BLOCK = re.compile(r"<!-- hints: (?P<task>[^ ]+) -->\n(?P<body>.*?)<!-- /hints -->", re.DOTALL)


@dataclass(frozen=True)
class Block:
    task: str
    body: str
    start: int
    end: int


def blocks(chapter: str) -> list[Block]:
    return [Block(m["task"], m["body"], m.start(), m.end()) for m in BLOCK.finditer(chapter)]


def marker(task: Task) -> str:
    return f"<!-- hints: {task.id} -->\n{render(task)}<!-- /hints -->"


def render(task: Task) -> str:
    """The block's body: the levels in order, as `workbook hint` gives them."""
    command = f"make hint EXERCISE={task.id.split('.', 1)[0]} TASK={task.number}"
    if not task.hints:
        return f"No hints for this task (`{command}` says so too).\n"
    lines = [f"**Hints** (`{command}` shows them one level at a time):", ""]
    lines += [f"{level}. {_markdown(' '.join(hint.split()))}" for level, hint in enumerate(task.hints, start=1)]
    return "\n".join(lines) + "\n"


def _markdown(hint: str) -> str:
    """The hint as the terminal prints it: outside `code`, `<ID>` is not an HTML tag and `2**i` not emphasis."""
    parts = CODE_SPAN.split(hint)
    return "".join(part if part.startswith("`") else MARKUP.sub(r"\\\g<0>", part) for part in parts)


def without_blocks(chapter: str) -> str:
    """The chapter's own text: what a hint must not repeat."""
    return BLOCK.sub("", chapter)


def refreshed(chapter: str, exercise: Exercise) -> str:
    """The chapter with every block of a known task rendered anew (blocks of unknown tasks left alone)."""
    tasks = {t.id: t for t in exercise.tasks}

    def one(match: re.Match) -> str:
        task = tasks.get(match["task"])
        return marker(task) if task else match[0]

    return BLOCK.sub(one, chapter)


def problems(chapter: str, exercise: Exercise) -> list[str]:
    """Missing, doubled, stale and unknown blocks of the chapter, one line each."""
    found: dict[str, list[Block]] = {}
    for block in blocks(chapter):
        found.setdefault(block.task, []).append(block)
    out = []
    for task in exercise.tasks:
        mine = found.pop(task.id, [])
        if not mine:
            out.append(f"{exercise.chapter}: no hint block for {task.id} (add '<!-- hints: {task.id} -->' and "
                       "'<!-- /hints -->' where its hints go, then run `workbook dev hints`)")
        elif len(mine) > 1:
            out.append(f"{exercise.chapter}: {len(mine)} hint blocks for {task.id}, expected one")
        elif mine[0].body != render(task):
            out.append(f"{exercise.chapter}: the hint block of {task.id} is stale (run `workbook dev hints`)")
    out += [f"{exercise.chapter}: a hint block names {name}, which is not a task of {exercise.id}"
            for name in found]
    return out
