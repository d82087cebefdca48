import pytest


@pytest.mark.criterion("ex01.t1.adds")
def test_add():
    assert True


@pytest.mark.criterion("ex01.t2.parses")
def test_parse_known_status():
    assert True


@pytest.mark.criterion("ex01.t2.counts_down")
def test_countdown():
    assert True
