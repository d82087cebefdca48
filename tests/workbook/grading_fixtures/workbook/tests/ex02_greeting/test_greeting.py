import pytest

from tests.harness.target import current_target


@pytest.mark.criterion("ex02.t1.greets")
def test_greet():
    result = current_target().module("greeting").greet("Ada")
    assert result == "Hello, Ada!", f"greet('Ada'): expected 'Hello, Ada!', got {result!r}"
