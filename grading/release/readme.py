"""The learner release's README: templates/learner_readme.md.tmpl (a string.Template: `$rows` is the table of
exercises, taken from the public rubric; a literal dollar sign is written `$$`)."""

from __future__ import annotations

from pathlib import Path
from string import Template

from grading.core.rubric import Rubric

TEMPLATE = Path(__file__).with_name("templates") / "learner_readme.md.tmpl"


def learner_readme(rubric: Rubric) -> str:
    rows = "\n".join(f"| {e.id} | [{e.title}]({e.chapter}) | `starters/{e.module}.py` | "
                     f"`{e.test_folder}/` | {e.criteria_points} |" for e in rubric.exercises)
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(rows=rows)
