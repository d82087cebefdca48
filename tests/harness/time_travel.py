"""Move the clocks the code under test reads (Airflow's `timezone.utcnow`, `time.time`, `time.monotonic`) forward,
without waiting: in the subject in a graded run, in this process otherwise. pytest's `monkeypatch` puts them back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tests.harness.remote import in_subject, subject_module


@in_subject
def shifted(clock: Callable[[], Any], seconds: float) -> Callable[[], Any]:
    """`clock`, `seconds` later (built where `clock` lives, so the shifted clock never crosses the link)."""
    def later() -> Any:
        now = clock()
        return now + timedelta(seconds=seconds) if isinstance(now, datetime) else now + seconds

    return later


def travel(monkeypatch: Any, seconds: float) -> None:
    """Every clock the sensor may read jumps `seconds` ahead of where it is now (jumps add up)."""
    timezone, time_module = subject_module("airflow.sdk.timezone"), subject_module("time")
    for module, name in ((timezone, "utcnow"), (time_module, "time"), (time_module, "monotonic")):
        monkeypatch.setattr(module, name, shifted(getattr(module, name), seconds))
