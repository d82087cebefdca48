"""What learners read of the instructor's text: the rubric without hidden criteria, and chapters and notebooks
without their instructor-only spans (pointers to solutions/ or benchmarks/)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

# A span that fills its line (a list item, too) goes with its line.
INSTRUCTOR_ONLY_SPAN = re.compile(
    r"^(?:[-*] )?<!-- instructor-only -->(?:(?!<!-- /instructor-only -->).)*<!-- /instructor-only -->[ \t]*\n"
    r"|<!-- instructor-only -->(?:(?!<!-- /instructor-only -->).)*<!-- /instructor-only -->", re.S | re.M)


def public_rubric_text(text: str) -> str:
    """The rubric without hidden criteria; each exercise's points lowered to what its public criteria sum to.

    Works on the text, block by block, so comments and everyone's formatting survive.
    """
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("[[")]
    if not starts:
        return text
    head = "".join(lines[: starts[0]])
    blocks = ["".join(lines[a:b]) for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]
    hidden_points: dict[str, int] = {}
    kept = []
    for block in blocks:
        if block.startswith("[[criterion]]"):
            data = tomllib.loads(block.replace("[[criterion]]", "", 1))
            if data.get("visibility") == "hidden":
                exercise = str(data["id"]).split(".", 1)[0]
                hidden_points[exercise] = hidden_points.get(exercise, 0) + int(data["points"])
                continue
        kept.append(block)
    out = []
    for block in kept:
        if block.startswith("[[exercise]]"):
            data = tomllib.loads(block.replace("[[exercise]]", "", 1))
            less = hidden_points.get(str(data["id"]), 0)
            if less:
                block = re.sub(r"(?m)^points\s*=\s*(\d+)",
                               lambda m, less=less: f"points = {int(m[1]) - less}", block, count=1)
        out.append(block)
    return head + "".join(out)


def without_instructor_only(text: str) -> str:
    return INSTRUCTOR_ONLY_SPAN.sub("", text)


def strip_instructor_only(out: Path) -> None:
    """Cut the instructor-only spans from the release's Markdown and notebooks' Markdown cells."""
    for path in sorted(out.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        if "<!-- instructor-only -->" in text:
            path.write_text(without_instructor_only(text), encoding="utf-8")
    for path in sorted(out.rglob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        if "<!-- instructor-only -->" not in text:
            continue
        notebook = json.loads(text)
        for cell in notebook.get("cells", []):
            if cell.get("cell_type") == "markdown":
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                cell["source"] = without_instructor_only(source).splitlines(keepends=True)
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
