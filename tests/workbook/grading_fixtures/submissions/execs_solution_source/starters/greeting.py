"""Exercise 2: not started."""

from starters._todo import todo


def greet(name: str) -> str:
    """'Hello, <name>!'"""
    raise todo("2", 1, "implement greet", "ex02_greeting.md#task-1")
