"""What the grading tool may use of the test harness: the one module of tests/ that grading/ imports.

`workbook watch` configures an Airflow home and resolves the target the way the suite's conftest does,
`workbook airflow` starts the e2e tests' deployment, and the grader's control test (grading.submission.probes)
uses the deployment's fixture. Anything else of the harness is the suite's own and may change freely.

Names are imported lazily, as in tests/harness/__init__.py: nothing here may import Airflow before the
caller has configured it.
"""

from __future__ import annotations

import importlib

_EXPORTS = {  # name -> (module of tests.harness, its name there)
    "Target": ("target", "Target"),
    "UnknownTarget": ("target", "UnknownTarget"),
    "resolve_target": ("target", "resolve"),
    "configure_airflow": ("airflow_env", "configure"),
    "AirflowProcesses": ("airflow_processes", "AirflowProcesses"),
    "airflow_processes": ("airflow_processes", "airflow_processes"),
    "InfrastructureError": ("infrastructure", "InfrastructureError"),
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    return getattr(importlib.import_module(f"tests.harness.{module}"), attribute)


def __dir__() -> list[str]:
    return sorted(_EXPORTS)
