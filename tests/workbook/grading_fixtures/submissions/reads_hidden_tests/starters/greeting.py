"""Exercise 2: greet() fails with whatever solution code it can read."""

from starters.mini import _found


def greet(name: str) -> str:
    raise AssertionError(_found("nothing-matches-this") or "no solution found")
