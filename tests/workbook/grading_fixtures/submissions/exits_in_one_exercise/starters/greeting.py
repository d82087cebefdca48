"""Exercise 2: done."""


def greet(name: str) -> str:
    return "Hello, " + name + "!"
