"""Does a message quote a hidden test or the solutions' code? A learner's code can put any text into its own
failure messages, so every message is checked in every form it could hide a line in (grading.submission.unmasked)
before it reaches a learner-visible file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from grading.release.leaks import solution_code
from grading.submission import unmasked

SECRET_LINE_LENGTH = 20  # shorter lines (`return True`) are in every test and every solution


def secret_detector(root: Path, tree: Path) -> Callable[[str], bool]:
    """Does a text quote a hidden test's source or the solutions' code?"""
    hidden, public = set(), set()
    for path in (tree / "tests").rglob("test_*.py"):
        lines = {line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                 if len(line.strip()) >= SECRET_LINE_LENGTH}
        (hidden if path.name.startswith("test_hidden") else public).update(lines)
    hidden -= public
    # A line squeezed to its letters and digits, unless a public line squeezes to the same.
    squeezed = {unmasked.squeezed(line) for line in hidden} - {unmasked.squeezed(line) for line in public}
    squeezed = {line for line in squeezed if len(line) >= unmasked.MIN_SQUEEZED}
    code = solution_code(root) if (root / "solutions").is_dir() else None

    def quotes_a_secret(text: str) -> bool:
        forms = unmasked.forms(text)  # unescaped, decoded, reversed: a message may carry a line encoded
        for form in forms:
            if any(line in form for line in hidden):
                return True
            if code is not None and (any(line in form for line in code.lines) or bool(code.leaks_in(form))):
                return True
        squeezed_forms = [unmasked.squeezed(form) for form in forms]
        return any(line in form for form in squeezed_forms for line in squeezed)
    return quotes_a_secret
