"""What the watch shows: the latest result of every criterion, the task you are on, and the screen."""

from __future__ import annotations

from dataclasses import dataclass, field

from grading.core.rubric import Exercise, Rubric, Task
from grading.learner.check import BAR_MARKS, next_step
from grading.scoring.grade import CriterionResult, grade
from grading.scoring.run import Run


@dataclass
class Progress:
    """What the watch knows: the latest result of every criterion, and the task you are on."""
    exercises: list[Exercise]
    latest: dict[str, CriterionResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # the latest run's (a run cut short, a crash)

    def tasks(self) -> list[tuple[Exercise, Task]]:
        return [(e, t) for e in self.exercises for t in e.tasks]

    def task_done(self, task: Task) -> bool:
        """Done in the fast loop: no criterion failed, and every one was proved or waits only for DAG runs."""
        results = [self.latest.get(c.id) for c in task.criteria]
        return all(r is not None and r.status in ("passed", "not_run") for r in results) and any(
            r is not None and r.status == "passed" for r in results)

    def current(self) -> tuple[Exercise, Task] | None:
        return next(((e, t) for e, t in self.tasks() if not self.task_done(t)), None)

    def update(self, rubric: Rubric, run: Run, target: str, tasks: list[Task]) -> None:
        """The criteria of the tasks that ran take this run's result; the others keep theirs."""
        graded = grade(rubric, self.exercises, run, target=target)
        self.notes = list(graded.notes)
        asked = {c.id for t in tasks for c in t.criteria}
        for criterion in graded.criteria:
            if criterion.id in asked:
                self.latest[criterion.id] = criterion


def render(progress: Progress, *, target: str, summary: str, moved: list[str]) -> str:
    current = progress.current()
    lines = [f"Workbook watch ({target}s/) · {summary}"]
    for exercise in progress.exercises:
        lines.append(f"\n{exercise.id}  {exercise.title}")
        for task in exercise.tasks:
            results = [progress.latest.get(c.id) for c in task.criteria]
            bar = "".join(BAR_MARKS.get(r.status, ".") if r else "." for r in results)
            met = sum(bool(r and r.passed) for r in results)
            waiting = sum(bool(r and r.status == "not_run") for r in results)
            mark = "  <- you are here" if current and current[1].id == task.id else ""
            state = "  fast tests pass" if progress.task_done(task) else ""
            dag_runs = f", {waiting} with DAG runs" if waiting and progress.task_done(task) else ""
            after_hang = sum(bool(r and r.status == "not_run" and " hung before it " in r.message) for r in results)
            if after_hang:
                state = f"  ({after_hang} not run after a hang)"
            lines.append(f"  {task.number:<4} {task.title[:44]:<44} [{bar}] {met}/{len(task.criteria)}"
                         f"{state}{dag_runs}{mark}")
    lines.append(f"\n{LEGEND}")
    lines += [f"note: {note}" for note in progress.notes]
    lines += [f"\n{line}" for line in moved]
    if current is None:
        lines.append("\nEvery fast test passes. Run everything, DAG runs included: make check")
        return "\n".join(lines)
    exercise, task = current
    missed = [progress.latest[c.id] for c in task.criteria
              if c.id in progress.latest and progress.latest[c.id].status in ("failed", "not_collected")]
    if missed:
        lines += ["", *next_step(missed[0])]
    lines.append(f"\nSave a file in starters/ to run {exercise.id} {task.number} again; Ctrl-C stops.")
    return "\n".join(lines)


LEGEND = "[#] met  [x] failed  [.] not run yet (DAG runs: make check EXERCISE=.. TASK=..)"


def tests_count(count: int) -> str:
    return f"{count} test" if count == 1 else f"{count} tests"


def with_done_before(progress: Progress, exercise: Exercise, task: Task) -> list[Task]:
    """The exercise's tasks before `task` whose fast tests passed, then `task`."""
    before = exercise.tasks[:exercise.tasks.index(task)]
    return [t for t in before if progress.task_done(t)] + [task]


def has_fast_tests(progress: Progress, task: Task) -> bool:
    """False when every criterion of the task waits only for DAG runs: then those are what the watch runs."""
    results = [progress.latest.get(c.id) for c in task.criteria]
    return not all(r is not None and r.status == "not_run" for r in results)
