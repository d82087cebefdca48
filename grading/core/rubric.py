"""The workbook's manifest, `exercises/rubric.toml`: exercises, their tasks (with hints) and success criteria.

`load()` reads it; `problems()` lists every way it is inconsistent (the suite checks itself with it).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from grading.core.errors import RubricError, UnknownExercise

SCHEMA = 1
RUBRIC_PATH = Path("exercises") / "rubric.toml"
VISIBILITIES = ("public", "hidden")
TASK_ID = re.compile(r"^(?P<exercise>[a-z][a-z0-9_]*)\.t(?P<number>\d+)$")
CRITERION_ID = re.compile(r"^(?P<task>[a-z][a-z0-9_]*\.t\d+)\.(?P<name>[a-z][a-z0-9_]*)$")


@dataclass(frozen=True)
class Criterion:
    id: str
    title: str
    points: int
    hint: str
    visibility: str = "public"

    @property
    def task_id(self) -> str:
        return self.id.rsplit(".", 1)[0]

    @property
    def exercise_id(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def hidden(self) -> bool:
        return self.visibility == "hidden"


@dataclass(frozen=True)
class Task:
    id: str
    title: str
    hints: tuple[str, ...] = ()
    criteria: tuple[Criterion, ...] = ()
    # The task's code, for grading it on its own: top-level functions and classes of the exercise module,
    # DAG files of dags/, and the tasks whose code it needs (their criteria are earned along with its own).
    symbols: tuple[str, ...] = ()
    dags: tuple[str, ...] = ()
    builds_on: tuple[str, ...] = ()

    @property
    def number(self) -> str:
        """`t1` for `ex04.t1`: how a learner names the task."""
        return self.id.rsplit(".", 1)[1]

    @property
    def points(self) -> int:
        return sum(c.points for c in self.criteria)


@dataclass(frozen=True)
class Exercise:
    """An exercise's files are named after its slug `<id>_<module>`: exercises/<slug>.md, notebooks/<slug>.ipynb,
    tests/<slug>/, and its module is starters/<module>.py and solutions/<module>.py."""
    id: str
    title: str
    module: str
    points: int
    tasks: tuple[Task, ...] = ()

    @property
    def slug(self) -> str:
        """`ex04_custom_sensors` for the exercise `ex04` whose module is `custom_sensors`."""
        return f"{self.id}_{self.module}"

    @property
    def criteria(self) -> tuple[Criterion, ...]:
        return tuple(c for task in self.tasks for c in task.criteria)

    @property
    def chapter(self) -> str:
        return f"exercises/{self.slug}.md"

    @property
    def notebook(self) -> str:
        return f"notebooks/{self.slug}.ipynb"

    @property
    def test_folder(self) -> str:
        return f"tests/{self.slug}"

    @property
    def criteria_points(self) -> int:
        return sum(c.points for c in self.criteria)


@dataclass
class Rubric:
    exercises: tuple[Exercise, ...]
    path: Path | None = None
    problems_found: list[str] = field(default_factory=list)

    @property
    def criteria(self) -> dict[str, Criterion]:
        return {c.id: c for e in self.exercises for c in e.criteria}

    @property
    def points(self) -> int:
        return sum(e.criteria_points for e in self.exercises)

    def exercise(self, name: str) -> Exercise:
        """Find an exercise the way a learner names it: `ex04`, `4`, `ex04_custom_sensors`, `custom_sensors`
        (UnknownExercise, naming the known ones, when none is)."""
        wanted = name.strip().lower().removesuffix(".md").removeprefix("tests/").rstrip("/")
        for exercise in self.exercises:
            names = {exercise.id, exercise.slug, exercise.module}
            digits = re.sub(r"\D", "", exercise.id)
            if wanted in names or (wanted.isdigit() and digits and int(wanted) == int(digits)):
                return exercise
        raise UnknownExercise(name, [e.id for e in self.exercises])

    def task(self, exercise: Exercise, name: str) -> Task:
        """Find a task as `t1`, `1` or `ex04.t1` (UnknownExercise, naming the exercise's tasks, when none is)."""
        wanted = name.strip().lower()
        for task in exercise.tasks:
            if wanted in {task.id, task.number, task.number.removeprefix("t")}:
                return task
        raise UnknownExercise(name, [t.number for t in exercise.tasks], exercise=exercise.id)


def find_root(start: Path | None = None) -> Path:
    """The workbook root: the nearest folder above `start` (default: cwd) that has exercises/rubric.toml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / RUBRIC_PATH).is_file():
            return folder
    package_root = Path(__file__).resolve().parents[2]
    if (package_root / RUBRIC_PATH).is_file():
        return package_root
    raise RubricError(f"no {RUBRIC_PATH} in {here} or above: run this from the workbook (or pass --root)")


def load(root: Path) -> Rubric:
    """Read the rubric. Inconsistencies are collected in `problems_found`, not raised: grading still runs."""
    path = root / RUBRIC_PATH
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RubricError(f"{path} does not exist") from None
    except tomllib.TOMLDecodeError as error:
        raise RubricError(f"{path} is not valid TOML: {error}") from None
    if data.get("schema") != SCHEMA:
        raise RubricError(f"{path}: schema = {data.get('schema')!r}, this tool reads schema = {SCHEMA}")

    problems: list[str] = []
    criteria_by_task: dict[str, list[Criterion]] = {}
    for raw in data.get("criterion", []):
        try:
            criterion = Criterion(
                id=str(raw["id"]), title=str(raw["title"]), points=raw["points"], hint=str(raw.get("hint", "")),
                visibility=str(raw.get("visibility", "public")),
            )
        except KeyError as missing:
            problems.append(f"criterion {raw.get('id', raw)!r} has no {missing.args[0]}")
            continue
        criteria_by_task.setdefault(criterion.task_id, []).append(criterion)

    tasks_by_exercise: dict[str, list[Task]] = {}
    for raw in data.get("task", []):
        try:
            task_id = str(raw["id"])
            hints = raw.get("hints", [])
            lists = {key: _string_list(raw, key, task_id, problems) for key in ("symbols", "dags", "builds_on")}
            task = Task(id=task_id, title=str(raw["title"]), hints=tuple(str(h) for h in hints),
                        criteria=tuple(criteria_by_task.pop(task_id, [])), **lists)
        except KeyError as missing:
            problems.append(f"task {raw.get('id', raw)!r} has no {missing.args[0]}")
            continue
        tasks_by_exercise.setdefault(task_id.split(".", 1)[0], []).append(task)

    exercises = []
    for raw in data.get("exercise", []):
        try:
            exercise = Exercise(
                id=str(raw["id"]), title=str(raw["title"]), module=str(raw["module"]), points=raw["points"],
                tasks=tuple(tasks_by_exercise.pop(str(raw["id"]), [])),
            )
        except KeyError as missing:
            problems.append(f"exercise {raw.get('id', raw)!r} has no {missing.args[0]}")
            continue
        _refuse_stale_paths(path, raw, exercise)
        exercises.append(exercise)

    for task_id, orphans in criteria_by_task.items():
        problems.append(f"criteria {', '.join(c.id for c in orphans)} name task {task_id!r}, which is not declared")
    for exercise_id, orphans in tasks_by_exercise.items():
        problems.append(f"tasks {', '.join(t.id for t in orphans)} name exercise {exercise_id!r}, "
                        "which is not declared")
    rubric = Rubric(exercises=tuple(exercises), path=path)
    rubric.problems_found = problems + _consistency_problems(rubric)
    return rubric


# Keys an exercise once declared and now derives from its slug: still accepted when they say the same.
DERIVED_KEYS = {
    "text": lambda e: (e.chapter, Path(e.chapter).name),
    "notebook": lambda e: (e.notebook,),
    "tests": lambda e: (e.test_folder, f"{e.test_folder}/"),
}


def _refuse_stale_paths(path: Path, raw: dict, exercise: Exercise) -> None:
    """A declared path that differs from the derived one would be silently ignored: refuse it instead."""
    for key, derived in DERIVED_KEYS.items():
        if key in raw and raw[key] not in derived(exercise):
            raise RubricError(
                f"{path}: exercise {exercise.id!r} declares {key} = {raw[key]!r}, but its files are named after "
                f"its slug {exercise.slug!r} ({derived(exercise)[0]}): drop the {key!r} key (and rename the file "
                "if it is named otherwise)")


def _string_list(raw: dict, key: str, task_id: str, problems: list[str]) -> tuple[str, ...]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f"{task_id}: {key} must be a list of non-empty strings, got {value!r}")
        return ()
    if len(set(value)) != len(value):
        problems.append(f"{task_id}: {key} names an entry twice: {value!r}")
    return tuple(value)


def _task_code_problems(exercise: Exercise) -> list[str]:
    """symbols, dags and builds_on: each task's code is its own, and what it builds on comes before it."""
    problems = []
    owner: dict[str, str] = {}
    ids = [t.id for t in exercise.tasks]
    for task in exercise.tasks:
        for symbol in task.symbols:
            if not symbol.isidentifier():
                problems.append(f"{task.id}: symbol {symbol!r} is not a Python name")
        for dag in task.dags:
            if "/" in dag or not dag.endswith(".py"):
                problems.append(f"{task.id}: dags entry {dag!r}: expected a file name of dags/, e.g. "
                                f"'{exercise.id}_pipeline.py'")
        for name in (*task.symbols, *task.dags):
            if name in owner:
                problems.append(f"{name!r} is claimed by {owner[name]} and {task.id}: one task owns it")
            owner.setdefault(name, task.id)
        for other in task.builds_on:
            if other not in ids:
                problems.append(f"{task.id}: builds_on {other!r}, which is not a task of {exercise.id}")
            elif ids.index(other) >= ids.index(task.id):
                problems.append(f"{task.id}: builds_on {other!r}, which does not come before it")
    return problems


def _consistency_problems(rubric: Rubric) -> list[str]:
    problems = []
    seen: set[str] = set()
    for exercise in rubric.exercises:
        for value in (exercise.id, *(t.id for t in exercise.tasks), *(c.id for c in exercise.criteria)):
            if value in seen:
                problems.append(f"id {value!r} is declared twice")
            seen.add(value)
        if not re.fullmatch(r"[a-z][a-z0-9_]*", exercise.id):
            problems.append(f"exercise id {exercise.id!r}: use lowercase letters, digits and _ (e.g. ex04)")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", exercise.module):
            problems.append(f"{exercise.id}: module {exercise.module!r} is not a module name (lowercase letters, "
                            "digits and _, e.g. custom_sensors)")
        if not isinstance(exercise.points, int) or isinstance(exercise.points, bool):
            problems.append(f"{exercise.id}: points must be an integer, got {exercise.points!r}")
        elif exercise.points != exercise.criteria_points:
            problems.append(f"{exercise.id}: declares {exercise.points} points, its criteria add up to "
                            f"{exercise.criteria_points}")
        if not exercise.tasks:
            problems.append(f"{exercise.id}: has no task")
        problems += _task_code_problems(exercise)
        for task in exercise.tasks:
            match = TASK_ID.match(task.id)
            if not match or match["exercise"] != exercise.id:
                problems.append(f"task id {task.id!r}: expected '{exercise.id}.t<N>'")
            if not task.criteria:
                problems.append(f"{task.id}: has no criterion")
            for criterion in task.criteria:
                if not CRITERION_ID.match(criterion.id):
                    problems.append(f"criterion id {criterion.id!r}: expected '{task.id}.<name>' "
                                    "(lowercase letters, digits and _)")
                points = criterion.points
                if not isinstance(points, int) or isinstance(points, bool) or points < 1:
                    problems.append(f"{criterion.id}: points must be a positive integer, got {points!r}")
                if criterion.visibility not in VISIBILITIES:
                    problems.append(f"{criterion.id}: visibility {criterion.visibility!r}, expected one of "
                                    f"{', '.join(VISIBILITIES)}")
                if not criterion.hint.strip():
                    problems.append(f"{criterion.id}: has no hint (shown to the learner when it fails)")
    return problems
