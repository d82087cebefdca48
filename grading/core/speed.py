"""How slow a test is, from its marks: the order a graded run takes them in and what a fast loop leaves out."""

from __future__ import annotations

UNIT = 0
# A test marked `integration` runs dag.test() or a fresh process; `e2e` starts real Airflow processes.
SPEED_CLASSES = {"integration": 1, "e2e": 2}
INTEGRATION, E2E = SPEED_CLASSES["integration"], SPEED_CLASSES["e2e"]


def speed_of(marker_names) -> int:
    """The slowest class among a test's marker names (UNIT when it has none of them)."""
    return max((SPEED_CLASSES.get(name, UNIT) for name in marker_names), default=UNIT)
