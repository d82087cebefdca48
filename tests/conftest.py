"""The graded suite's switchboard: which side it grades, the session's Airflow, learner-friendly failures."""

from __future__ import annotations

import importlib
import shlex
import shutil
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from grading.api import speed_of, wrong_environment
from tests.harness import infrastructure
from tests.harness.target import (
    ENV_VAR,
    PACKAGES,
    REPO_ROOT,
    UnknownTarget,
    current_target,
    import_error,
    resolve,
)

# Checked before the simulators' plugin is loaded: outside the venv it would fail on `import aiohttp`.
_WRONG_ENVIRONMENT = wrong_environment(shlex.join([".venv/bin/pytest", *sys.argv[1:]]))
if _WRONG_ENVIRONMENT:
    # A traceback here would read as broken code: one line, pytest's usage-error exit code.
    print(f"ERROR: {_WRONG_ENVIRONMENT}", file=sys.stderr)
    raise SystemExit(pytest.ExitCode.USAGE_ERROR)
pytest_plugins = ["fixtures.pytest_plugin"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--target",
        choices=None,  # validated in pytest_configure, so the error names the env var too
        default=None,
        help=f"grade the learner's starters or the reference solutions: {' | '.join(PACKAGES)} "
        f"(default: ${ENV_VAR}, else 'starter')",
    )


def pytest_configure(config: pytest.Config) -> None:
    try:
        target = resolve(config.getoption("--target"))
    except UnknownTarget as exc:
        raise pytest.UsageError(f"--target / {ENV_VAR}: {exc}") from None
    # Must happen before anything imports airflow: Airflow reads its configuration at import time.
    from tests.harness import airflow_env

    config.workbook_target = target
    config.workbook_airflow_home = airflow_env.configure(target)
    from tests.harness import remote

    if remote.enabled():
        remote.guard_imports()
        from tests.harness import subject_sandbox

        if subject_sandbox.wanted():
            remote.use_starter(subject_sandbox.starter(config))


def pytest_unconfigure(config: pytest.Config) -> None:
    from tests.harness import remote

    remote.stop()
    home: Path | None = getattr(config, "workbook_airflow_home", None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> list[str]:
    target = config.workbook_target
    return [
        f"workbook target: {target.name} (loads {target.package}/, DAGs from {target.package}/dags/)",
        f"airflow home: {config.workbook_airflow_home}",
    ]


# ---- a starter module that does not import: one line, once --------------------------------------------
_import_errors: dict[Path, str | None] = {}  # exercise test folder -> why its module does not import
_skipped_folders: set[Path] = set()


IMPORT_TIMEOUT_S = 120.0  # a module whose import hangs costs its exercise, not the whole run


def starter_import_error(module: str) -> str | None:
    """`starters/custom_sensors.py:80: SyntaxError: '(' was never closed`, or None when the module imports."""
    from tests.harness import remote

    if remote.enabled():  # a graded run: the subject imports it, never this process
        try:
            return remote.call_in_subject(import_error, module, answer_within=IMPORT_TIMEOUT_S)
        except remote.SubjectGone as gone:
            return f"{current_target().package}/{module}.py: importing it failed: {gone}"
    why = import_error(module)
    if why is None:
        _note_odd_pokes(importlib.import_module(f"{current_target().package}.{module}"))
    return why


def _note_odd_pokes(module) -> None:
    """A poke() that returns neither a bool nor a PokeReturnValue (a str, a dict, None) is read as done or not
    by its truth, and a test sees only that truth: each such value is noted, so the failure can show it."""
    import functools

    from airflow.sdk import PokeReturnValue
    from airflow.sdk.bases.sensor import BaseSensorOperator

    from grading.api import learner_notes

    for cls in list(vars(module).values()):
        if not (isinstance(cls, type) and issubclass(cls, BaseSensorOperator) and cls.__module__ == module.__name__
                and "poke" in vars(cls)) or getattr(vars(cls)["poke"], "notes_odd_returns", False):
            continue

        def noting(original, name: str):
            @functools.wraps(original)
            def poke(*args, **kwargs):
                result = original(*args, **kwargs)
                if not isinstance(result, bool | PokeReturnValue):
                    learner_notes.append(f"{name}.poke() returned {result!r:.80} ({type(result).__name__}), "
                                         "not a bool or a PokeReturnValue")
                return result

            poke.notes_odd_returns = True
            return poke

        cls.poke = noting(vars(cls)["poke"], cls.__name__)


def _exercise_modules() -> dict[Path, tuple[str, list[str]]]:
    """Each exercise's test folder -> (its module, its criteria), from the rubric."""
    from grading.api import RubricError, load_rubric

    try:
        rubric = load_rubric(REPO_ROOT)
    except RubricError:
        return {}
    return {(REPO_ROOT / e.test_folder).resolve(): (e.module, [c.id for c in e.criteria]) for e in rubric.exercises}


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The test files of an exercise whose module does not import are not collected: one item says why."""
    if not (collection_path.name.startswith("test_") and collection_path.suffix == ".py"):
        return None
    folder = collection_path.resolve().parent
    modules = config.stash.setdefault(_modules_key, _exercise_modules())
    if folder not in modules:
        return None
    if folder not in _import_errors:
        _import_errors[folder] = starter_import_error(modules[folder][0])
    if _import_errors[folder] is None:
        return None
    _skipped_folders.add(folder)
    return True


_modules_key = pytest.StashKey[dict]()


class StarterDoesNotImport(pytest.Item):
    """Stands for every test of an exercise whose module does not import; fails with that one line."""

    def __init__(self, *, message: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.message = message

    def runtest(self) -> None:
        from grading.api import StarterImportError

        raise StarterImportError(self.message)

    def repr_failure(self, excinfo, style=None) -> str:
        return self.message

    def reportinfo(self):
        return self.path, None, self.name


def _starter_import_items(session: pytest.Session) -> list[pytest.Item]:
    items = []
    modules = session.config.stash.get(_modules_key, {})
    for folder in sorted(_skipped_folders):
        module, criteria = modules[folder]
        relative = folder.relative_to(REPO_ROOT).as_posix()
        item = StarterDoesNotImport.from_parent(session, name=f"{module} imports", path=folder,
                                                nodeid=f"{relative}::{module}_imports",
                                                message=_import_errors[folder])
        for criterion in criteria:
            item.add_marker(pytest.mark.criterion(criterion))
        # `-k t1` (or `-k ex04.t1`) still selects it: it stands for every task's tests.
        item.extra_keyword_matches.update({c.rsplit(".", 1)[0] for c in criteria}
                                          | {c.split(".")[1] for c in criteria})
        items.append(item)
    return items


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """A test file named on the command line that imports its folder's module at import time fails to collect
    with that import's traceback: one line says it instead."""
    report = yield
    if report.failed and isinstance(collector, pytest.Module):
        folder = collector.path.resolve().parent
        if folder in _skipped_folders and _import_errors.get(folder):
            report.longrepr = f"{collector.nodeid}: {_import_errors[folder]}"
    return report


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Fast tests first: unit, then integration (dag.test), then e2e (real Airflow processes)."""
    # A test file or test id named on the command line is collected even when its folder's module does not
    # import: its tests would each fail on that import, at length. The one item that says why stands for them.
    stood_for = [item for item in items if Path(item.path).resolve().parent in _skipped_folders]
    if stood_for:
        items[:] = [item for item in items if Path(item.path).resolve().parent not in _skipped_folders]
        session.config.hook.pytest_deselected(items=stood_for)
    items[:0] = _starter_import_items(session)

    items.sort(key=lambda item: speed_of(m.name for m in item.iter_markers()))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    from tests.harness import remote

    remote.take_measured()  # what is measured from here on is this test's


def pytest_runtest_teardown(item: pytest.Item) -> None:
    from tests.harness import remote

    remote.after_test()  # a subject left inside a call this test gave up on does not serve the next test


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    report.criteria = [m.args[0] for m in item.iter_markers("criterion") if m.args]
    if report.failed and call.excinfo is not None:
        from grading.api import learner_notes

        if learner_notes:
            report.sections.append(("what your code returned", "\n".join(dict.fromkeys(learner_notes))))
        message = _starter_message(call.excinfo.value) or _hang_message(call.excinfo, item.config.rootpath)
        if message:
            report.longrepr = f"{item.nodeid}: {message}"
        else:
            infrastructure.annotate_report(item, call, report)  # Airflow's failure, not the learner's
    return report


def _hang_message(excinfo: pytest.ExceptionInfo, root: Path) -> str | None:
    """A test cut by its timeout inside the learner's code: the line it was on, not pages of stack."""
    from grading.api import is_timeout, learner_frame

    text = excinfo.exconly()
    if not is_timeout(text):
        return None
    where = learner_frame(excinfo, root)
    return f"{text.removeprefix('Failed: ').rstrip('.')}: the code was at {where}" if where else None


def pytest_runtest_logstart(nodeid: str) -> None:
    from grading.api import learner_notes

    learner_notes.clear()  # each test shows only what the code returned in it


def pytest_report_teststatus(report: pytest.TestReport):
    return infrastructure.report_teststatus(report)


def _starter_message(exc: BaseException | None) -> str | None:
    """A starter's `NotImplementedError("Exercise 4 · Task 1: ...")` or a starter file that does not import
    (`starters/dags/x.py:12: SyntaxError: ...`), found anywhere in the chain."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, NotImplementedError) and str(exc).startswith("Exercise"):
            return f"NotImplementedError: {exc}"
        if type(exc).__name__ in ("StarterImportError", "DagFileError"):  # a starter or DAG that does not import
            return str(exc)
        exc = exc.__cause__ or exc.__context__
    return None


# ---- parallel runs (`make test`: pytest-xdist, two workers) ----------------------------------------------
E2E_FILE = "test_e2e.py"  # where every e2e test lives (tests/workbook/test_parallel_run.py checks it)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    from xdist.scheduler import LoadFileScheduling

    class OneDeploymentAtATime(LoadFileScheduling):
        """Each test file on one worker (module fixtures are built once), and the e2e files all on one worker,
        handed out first: one real Airflow deployment at a time, and the longest chain of tests starts at once."""

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "e2e" if path.rsplit("/", 1)[-1] == E2E_FILE else path

        def _assign_work_unit(self, node) -> None:
            if "e2e" in self.workqueue:
                self.workqueue.move_to_end("e2e", last=False)
            super()._assign_work_unit(node)

    return OneDeploymentAtATime(config, log)


# ---- fixtures every exercise uses ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config):
    """The side under test; `target.module("custom_sensors")` imports its exercise module."""
    return pytestconfig.workbook_target


@pytest.fixture(scope="session")
def airflow_db(pytestconfig: pytest.Config) -> Path:
    """The session's migrated SQLite metadata DB (copied from a template migrated once)."""
    from tests.harness.airflow_env import ensure_metadata_db

    return ensure_metadata_db(pytestconfig.workbook_airflow_home)


@pytest.fixture
def run_dag(airflow_db: Path, capfd: pytest.CaptureFixture[str], pytestconfig: pytest.Config,
            tmp_path_factory: pytest.TempPathFactory):
    """`run_dag(dag_id, env={...})` runs the target's DAG with dag.test() and returns a DagRunResult.

    A failure shows the failed task, its exception and the end of its log; the whole log is in a file
    (named in the failure) and, with `pytest -v`, in the test's captured output."""
    from tests.harness.dagrun import run_dag as _run_dag

    log_dir = tmp_path_factory.getbasetemp() / "dag-logs"
    echo = pytestconfig.get_verbosity() > 0

    def run(dag_id: str, **kwargs):
        return _run_dag(dag_id, capfd=capfd, log_dir=log_dir, echo=echo, **kwargs)

    return run


# ---- the per-exercise / per-task progress table -------------------------------------------------------
# A criterion is met only when every one of its tests ran and passed: with -k or -m some may not run.
_selected: dict[str, set[str]] = defaultdict(set)  # criterion -> node ids selected to run
_deselected: dict[str, set[str]] = defaultdict(set)  # criterion -> node ids left out by -k / -m
_outcomes: dict[str, dict[str, bool]] = defaultdict(dict)  # criterion -> node id -> passed


def _criteria_of(item: pytest.Item) -> list[str]:
    return [str(m.args[0]) for m in item.iter_markers("criterion") if m.args]


def pytest_deselected(items: list[pytest.Item]) -> None:
    for item in items:
        for criterion in _criteria_of(item):
            _deselected[criterion].add(item.nodeid)


def pytest_collection_finish(session: pytest.Session) -> None:
    for item in session.items:
        for criterion in _criteria_of(item):
            _selected[criterion].add(item.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or not report.passed:
        for criterion in getattr(report, "criteria", ()):
            passed = report.passed and _outcomes[criterion].get(report.nodeid, True)
            _outcomes[criterion][report.nodeid] = passed


def progress_rows(selected: dict[str, set[str]], deselected: dict[str, set[str]],
                  outcomes: dict[str, dict[str, bool]]) -> list[tuple[str, str, int, int, int, int]]:
    """(exercise, task, met, failed, not run, criteria) per task; 'not run' counts a criterion any of whose
    tests did not run (deselected, or not reached), unless another of its tests already failed."""
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for criterion in sorted(set(selected) | set(deselected)):
        exercise, task = criterion.split(".")[:2]
        row = counts[(exercise, task)]
        tests = selected.get(criterion, set()) | deselected.get(criterion, set())
        ran = outcomes.get(criterion, {})
        if not all(ran.values()):
            row[1] += 1
        elif tests <= ran.keys():
            row[0] += 1
        else:
            row[2] += 1
        row[3] += 1
    return [(exercise, task, *row) for (exercise, task), row in sorted(counts.items())]


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    # Under pytest-xdist this process collects nothing (its workers do): it knows only the tests that ran.
    selected = _selected or {criterion: set(tests) for criterion, tests in _outcomes.items()}
    rows = progress_rows(selected, _deselected, _outcomes)
    if not rows:
        return
    terminalreporter.section(f"progress ({config.workbook_target.name})", sep="-")
    terminalreporter.write_line(f"{'exercise':<10} {'task':<6} {'met':>7} {'failed':>7} {'not run':>8}")
    for exercise, task, met, failed, not_run, total in rows:
        terminalreporter.write_line(f"{exercise:<10} {task:<6} {f'{met}/{total}':>7} {failed:>7} {not_run:>8}")
    if any(row[4] for row in rows):
        terminalreporter.write_line("not run: criteria with a test that did not run here (-k, -m, or a stop "
                                    "on an earlier failure) are not counted as met")
