"""Is there solution code in a release? The solutions' non-trivial lines, searched for in every file (notebooks
cell by cell, outputs included)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from grading.release.policy import release_policy

MIN_LINE_LENGTH = 20
LONG_LINE = 60
RUN = 3
# Lines the solutions share on purpose with shipped simulators or helpers (reviewed, one per row).
SHARED_LINES = Path(__file__).with_name("shared_lines.txt")
# Lines a solution shares with its starter by design, whatever the starter says.
STRUCTURAL = [re.compile(p) for p in (
    r"^(from|import)\s", r"^(async\s+)?def\s", r"^class\s", r"^@", r"^super\(\)\.__init__\(",
    r"^self\.(\w+)\s*(:[^=]+)?=\s*\1,?$", r'^("""|\'\'\')$', r"^#\s*(noqa|type:)",
)]


@dataclass
class SolutionCode:
    """What counts as the solutions' code when searching a release.

    Single short lines are Python idioms (`except Exception as exc:`, `started = time.monotonic()`) that
    tests and fixtures share with any solution (even two in a row: `except BaseException:` then
    `Path(tmp).unlink(missing_ok=True)` is how fixtures/atomic.py cleans up too), so a leak is RUN
    consecutive non-trivial solution lines found one after the other, or a single non-trivial line of
    LONG_LINE characters or more.
    """
    lines: dict[str, str]  # every non-trivial line -> where it is in solutions/
    runs: set[tuple[str, ...]]

    def leaks_in(self, text: str) -> list[str]:
        code = _code_lines(text)
        found = [line for line in code if len(line) >= LONG_LINE and line in self.lines]
        windows = zip(*(code[i:] for i in range(RUN)), strict=False)
        found += [" / ".join(window) for window in windows if window in self.runs]
        return found

    def where(self, leak: str) -> str:
        return self.lines[leak.split(" / ", 1)[0]]


def solution_code(root: Path) -> SolutionCode:
    """The non-trivial lines of solutions/: not structural, not shared with the starter of the same name."""
    lines: dict[str, str] = {}
    runs: set[tuple[str, ...]] = set()
    solutions = root / "solutions"
    cache_names = release_policy().cache_names
    allowed = {
        line.strip() for line in SHARED_LINES.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for source in sorted(solutions.rglob("*.py")):
        if any(part in cache_names for part in source.parts):
            continue
        relative = source.relative_to(solutions)
        starter = root / "starters" / relative
        shared = set(_code_lines(starter.read_text(encoding="utf-8"))) if starter.exists() else set()
        chain: list[str] = []
        for number, raw in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            trivial = (len(line) < MIN_LINE_LENGTH or line in shared or line in allowed
                       or any(p.search(line) for p in STRUCTURAL))
            if trivial:
                chain = []
                continue
            lines.setdefault(line, f"solutions/{relative.as_posix()}:{number}")
            chain = [*chain[-(RUN - 1):], line]
            if len(chain) == RUN:
                runs.add(tuple(chain))
    return SolutionCode(lines=lines, runs=runs)


def find_leaks(release: Path, code: SolutionCode) -> list[str]:
    """Files of the release that contain solution code (notebooks are searched cell by cell)."""
    leaks = []
    for path in sorted(p for p in release.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if path.suffix == ".ipynb":
            text = _notebook_text(text)
        for leak in code.leaks_in(text):
            leaks.append(f"{path.relative_to(release).as_posix()}: {leak!r} (from {code.where(leak)})")
    if (release / "solutions").exists():
        leaks.insert(0, "solutions/ is in the release")
    return leaks


def _code_lines(text: str) -> list[str]:
    """Stripped lines without blanks and comments (so a leak cannot hide behind reformatting them)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _notebook_text(text: str) -> str:
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError):
        return text
    parts = []
    for cell in cells:
        source = cell.get("source", "")
        parts.append("".join(source) if isinstance(source, list) else str(source))
        for output in cell.get("outputs", []):
            data = output.get("text") or output.get("data", {}).get("text/plain", "")
            parts.append("".join(data) if isinstance(data, list) else str(data))
    return "\n".join(parts)
