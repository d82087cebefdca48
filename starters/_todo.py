"""The one-line error a starter raises until you implement it."""


def todo(exercise: str, task: int, what: str, section: str) -> NotImplementedError:
    """`raise todo("4", 1, "implement OrderStatusSensor.poke", "ex04_custom_sensors.md#task-1")`"""
    return NotImplementedError(f"Exercise {exercise} · Task {task}: {what} (exercises/{section})")
