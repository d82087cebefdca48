import pytest

from tests.harness.target import current_target

mini = current_target().module("mini")


@pytest.mark.criterion("ex01.t1.negative")
def test_add_negative():
    result = mini.add(-2, 3)
    assert result == 1, f"add(-2, 3): expected 1, got {result!r}"
