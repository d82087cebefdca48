"""Verdicts for survivors whose diff alone shows what they change, so that they need no entry by hand.

Two rules, kept strict (one token of one line changed, nothing else); a survivor they do not recognise is
judged by hand in `benchmarks/mutation_triage/<exercise>.toml`, and an entry there wins over a rule:

- a codec name spelled another way ("utf-8" -> "UTF-8"): equivalent;
- a string literal wrapped in "XX" or put in another case, on a line that logs or raises: unspecified. The
  chapters state what a log line or an error names (the URL, the status, the attempt), which the tests
  check, never its words, and a test that demanded the words would fail a correct solution that words it
  differently.
"""

from __future__ import annotations

import io
import re
import tokenize

_MESSAGE_LINE = re.compile(r"\blog\w*\.(debug|info|warning|error|exception|critical)\(|\braise\s+\w+\(")
_STRING = re.compile(r"^([rRbBfFuU]*)('''|\"\"\"|'|\")(.*)\2$", re.S)
_SKIP = (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER, tokenize.INDENT, tokenize.DEDENT)

WORDING = ("changes only the letters of a log line's or an error message's words (wrapped in XX, or in "
           "another case); the chapter states what a message names, not its words.")
CODEC = "\"utf-8\" and \"UTF-8\" name the same codec."


def _tokens(line: str) -> list[tuple[int, str]] | None:
    # A line may open a call that goes on below (`self.log.warning("...",`): close it to tokenize it.
    for closing in ("", ")", "))", ")))"):
        try:
            return [(t.type, t.string) for t in
                    tokenize.generate_tokens(io.StringIO(line.strip() + closing + "\n").readline)
                    if t.type not in _SKIP]
        except (tokenize.TokenError, IndentationError, SyntaxError):
            continue
    return None


def _respelled(old: str, new: str) -> str | None:
    """The literal's text if `new` is `old` wrapped in XX or in another case, else None."""
    a, b = _STRING.match(old), _STRING.match(new)
    if not a or not b or a.group(1).lower() != b.group(1).lower() or "b" in a.group(1).lower():
        return None
    before, after = a.group(3), b.group(3)
    return before if after == f"XX{before}XX" or (after != before and after.lower() == before.lower()) else None


def rule_verdict(diff: str | None) -> tuple[str, str] | None:
    """("equivalent" | "unspecified", why) for a survivor a rule recognises, else None."""
    lines = (diff or "").splitlines()
    old = [line[1:] for line in lines if line.startswith("-") and not line.startswith("---")]
    new = [line[1:] for line in lines if line.startswith("+") and not line.startswith("+++")]
    if len(old) != 1 or len(new) != 1:
        return None
    before, after = _tokens(old[0]), _tokens(new[0])
    if before is None or after is None or len(before) != len(after):
        return None
    changed = [(x, y) for x, y in zip(before, after, strict=True) if x != y]
    if len(changed) != 1 or changed[0][0][0] != tokenize.STRING or changed[0][1][0] != tokenize.STRING:
        return None
    text = _respelled(changed[0][0][1], changed[0][1][1])
    if text is None:
        return None
    if re.fullmatch(r"utf-?8", text, re.IGNORECASE):
        return "equivalent", CODEC
    if _MESSAGE_LINE.search(old[0]):
        return "unspecified", WORDING
    return None
