"""The test harness every exercise uses: target resolution, a real Airflow environment, and helpers
to call sensors, drive deferrals, check triggers the way the triggerer does, and run DAGs.

Names are imported lazily: the conftest configures Airflow before anything may import it.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "REPO_ROOT": "target",
    "Target": "target",
    "current_target": "target",
    "make_context": "context",
    "call_execute": "context",
    "DeferralRun": "deferral",
    "drive_deferral": "deferral",
    "fresh_instance": "deferral",
    "roundtrip": "triggers",
    "first_event": "triggers",
    "collect_events": "triggers",
    "run_in_fresh_process": "triggers",
    "DagRunResult": "dagrun",
    "run_dag": "dagrun",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
