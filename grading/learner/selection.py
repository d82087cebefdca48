"""Which tests a learner's partial run takes: `-p grading.learner.selection`.

- `--grading-tasks=ex04.t1[,ex04.t2]`: only the tests that prove a criterion of those tasks (`check ex04 t1`);
- `--grading-criteria=ex04.t1.waits_for_status[,...]`: only the tests that prove those criteria (`mistakes`);
- `--grading-fast`: no DAG runs nor real Airflow processes (integration, e2e), the watch's loop.

Tests left out are reported to pytest as deselected, so the progress table shows their criteria as not run
instead of dropping them; with `--grading-fast` the grading record also lists them as not run, so a
criterion proved partly by a DAG run is not counted as met.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grading.core.speed import speed_of as marker_speed

NOT_RUN_FAST = "not run in the fast loop: it runs a DAG (make check runs it)"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grading", "workbook grading")
    group.addoption("--grading-tasks", default=None, help="comma-separated task ids (ex04.t1): run only their tests")
    group.addoption("--grading-criteria", default=None,
                    help="comma-separated criterion ids: run only the tests that prove one of them")
    group.addoption("--grading-fast", action="store_true", help="leave out integration and e2e tests")


def criteria_of(item: pytest.Item) -> list[str]:
    return [str(m.args[0]) for m in item.iter_markers("criterion") if m.args]


def speed_of(item: pytest.Item) -> int:
    return marker_speed(m.name for m in item.iter_markers())


def proves_a_task_of(item: pytest.Item, tasks: set[str]) -> bool:
    return any(criterion.rsplit(".", 1)[0] in tasks for criterion in criteria_of(item))


# Before the grading recorder lists what was collected: a left-out test is not part of this run.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = config.getoption("--grading-tasks")
    if wanted:
        tasks = {t.strip() for t in wanted.split(",") if t.strip()}
        _leave_out(config, items, [item for item in items if not proves_a_task_of(item, tasks)])
    criteria = config.getoption("--grading-criteria")
    if criteria:
        chosen = {c.strip() for c in criteria.split(",") if c.strip()}
        _leave_out(config, items, [item for item in items if not chosen & set(criteria_of(item))])
    if config.getoption("--grading-fast"):
        slow = [item for item in items if speed_of(item)]
        _leave_out(config, items, slow)
        _record_not_run(config, slow)


def _leave_out(config: pytest.Config, items: list[pytest.Item], left_out: list[pytest.Item]) -> None:
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        dropped = {id(item) for item in left_out}
        items[:] = [item for item in items if id(item) not in dropped]


def _record_not_run(config: pytest.Config, items: list[pytest.Item]) -> None:
    record = config.getoption("--grading-record", None)
    if not record or not items:
        return
    with Path(record).open("a", encoding="utf-8") as file:
        for item in items:
            try:
                path = Path(item.path).resolve().relative_to(config.rootpath.resolve()).as_posix()
            except ValueError:
                path = str(item.path)
            file.write(json.dumps({"event": "collected", "nodeid": item.nodeid, "path": path,
                                   "criteria": criteria_of(item), "speed": speed_of(item)}) + "\n")
            file.write(json.dumps({"event": "result", "nodeid": item.nodeid, "outcome": "not_run",
                                   "message": NOT_RUN_FAST, "timed_out": False, "duration": 0}) + "\n")
