"""Exercise 2: done honestly."""


def greet(name: str) -> str:
    return f"Hello, {name}!"
