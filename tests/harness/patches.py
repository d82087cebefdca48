"""Replacements a test installs where the code under test runs (`monkeypatch.setattr(subject_module("time"),
"time", patches.wall_clock_jumping(3600))`): built there too, so in a graded run the patched function runs in
the subject without a call back to the judge at every use. Reach them with `subject_module(__name__)`."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any


def wall_clock_jumping(step: float) -> Callable[[], float]:
    """`time.time` that jumps `step` seconds further at every reading."""
    real, jumps = time.time, itertools.count()
    return lambda: real() + step * next(jumps)


def slowed(function: Callable[..., Any], seconds: float) -> Callable[..., Any]:
    """`function` on slow storage: every call first blocks for `seconds`."""
    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return function(*args, **kwargs)

    return slow
