"""The learner's Makefile: the instructor's, without the rules that need what the release does not ship, under
the learner's own head comment and with the learner's own `make test` (templates/learner_*.mk)."""

from __future__ import annotations

import re
from pathlib import Path

from grading.release.check import MAKE_TARGET
from grading.release.policy import release_policy

TEMPLATES = Path(__file__).with_name("templates")
HEAD = TEMPLATES / "learner_makefile_head.mk"
TEST_RULE = TEMPLATES / "learner_test_rule.mk"


def learner_makefile(text: str, absent: frozenset[str] = frozenset({"solutions", "benchmarks"})) -> str:
    """The Makefile without the rules that need solutions/ (test, notebooks) or the instructor's tools, and
    without any paragraph (rule and comment) that uses a folder the release does not have; `make test`
    becomes the workbook's own tests and the linter, which pass on the starters as shipped."""
    paragraphs = re.split(r"\n\s*\n", text)
    uses_absent = re.compile(rf"(?<![\w./-])({'|'.join(map(re.escape, sorted(absent)))})/") if absent else None
    dropped = set(release_policy().dropped_make_targets)
    dropped |= {target for p in paragraphs if uses_absent and uses_absent.search(p)
                for target in MAKE_TARGET.findall(p)}
    kept = [p for p in paragraphs if not re.search(rf"(?m)^({'|'.join(map(re.escape, sorted(dropped)))}):", p)
            and not (uses_absent and uses_absent.search(p))]
    kept[0] = re.sub(r"\A(#.*\n)+", "", kept[0])  # the instructor's header: the learner's head instead
    result = "\n\n".join(p for p in kept if p.strip())
    result = re.sub(r"(?m)^(\.PHONY:.*)$",
                    lambda m: " ".join(w for w in m[1].split() if w not in dropped) + " test", result)
    return (HEAD.read_text(encoding="utf-8") + result.rstrip("\n") + "\n\n"
            + TEST_RULE.read_text(encoding="utf-8"))
