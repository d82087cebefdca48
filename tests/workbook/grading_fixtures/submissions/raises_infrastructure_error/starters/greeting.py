"""Exercise 2 (fixture): the reference solution."""


def greet(name: str) -> str:
    """'Hello, <name>!'"""
    return f"Hello, {name}!"
