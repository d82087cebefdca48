"""The harness's bound on dag.test() holds whatever the DAG does: Airflow clears a real-time alarm set before
the run (its DAG importer and execution_timeout use one) and its Task Runner turns an exception raised into a
task into that task's failure."""

from __future__ import annotations

import signal
import time
from types import SimpleNamespace

import pytest

from tests.harness import dagrun
from tests.harness.infrastructure import scaled

# Longer than the bound and than this test's own limit: only the bound can end the run in time.
SENSOR_TIMEOUT_S = 1800
# The run is named as waiting only once its task exists, and a busy poke only if it runs when the bound
# fires: long enough for dag.test() to parse the DAG and start the task, stretched on a loaded machine.
BOUND_S = round(scaled(10.0))
BUSY_BOUND_S = round(scaled(30.0))
pytestmark = pytest.mark.timeout(900)

NEVER_DONE = '''
from datetime import UTC, datetime

from airflow.sdk import DAG
from airflow.sdk.bases.sensor import BaseSensorOperator


class NeverDone(BaseSensorOperator):
    def poke(self, context):
        while {busy}:  # the busy poke's line: the timeout names it
            pass
        return False


with DAG(dag_id="{dag_id}", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC), catchup=False):
    NeverDone(task_id="wait_forever", poke_interval=0.2, timeout={timeout}, mode="{mode}", retries=3,
              retry_delay=0)
'''


@pytest.mark.parametrize(("mode", "busy"), [("poke", False), ("reschedule", False), ("poke", True)])
def test_dag_test_is_cut_at_its_bound_and_says_what_it_waited_for(tmp_path, monkeypatch, airflow_db, mode, busy):
    dag_id = f"bound_never_done_{mode}_{'busy' if busy else 'sleeping'}"
    dag_file = tmp_path / f"{dag_id}.py"
    source = NEVER_DONE.format(dag_id=dag_id, timeout=SENSOR_TIMEOUT_S, mode=mode, busy=busy)
    dag_file.write_text(source, encoding="utf-8")
    monkeypatch.setattr(dagrun, "current_target", lambda: SimpleNamespace(dags_folder=tmp_path, folder=tmp_path))
    alarm_handler = signal.getsignal(signal.SIGALRM)
    started = time.monotonic()
    bound = BUSY_BOUND_S if busy else BOUND_S
    with pytest.raises(AssertionError, match=rf"did not finish within {bound:g} s") as raised:
        dagrun.run_dag(dag_id, timeout=bound)
    took = time.monotonic() - started
    if busy:
        busy_line = source.splitlines().index("        while True:  # the busy poke's line: the timeout names it") + 1
        assert f"the code was at {dag_file.resolve()}:{busy_line} in poke" in str(raised.value), raised.value
    else:  # the run still goes on (the busy one's task may have failed of the timeouts meanwhile)
        assert "still waiting on wait_forever" in str(raised.value), raised.value
    assert took < bound + 120, f"dag.test() ran {took:.0f} s for a bound of {bound:g} s"
    assert signal.getsignal(signal.SIGALRM) is alarm_handler, "pytest-timeout's alarm handler was not put back"
    assert signal.getitimer(signal.ITIMER_REAL)[0] > 0, "pytest-timeout's alarm was not put back"
