import pytest

from tests.harness.target import current_target

mini = current_target().module("mini")


@pytest.mark.criterion("ex01.t1.adds")
def test_add():
    result = mini.add(2, 3)
    assert result == 5, f"add(2, 3): expected 5, got {result!r}"


@pytest.mark.criterion("ex01.t2.parses")
def test_parse_known_status():
    result = mini.parse_status({"status": "OK"})
    assert result == "ok", f"parse_status({{'status': 'OK'}}): expected 'ok', got {result!r}"


@pytest.mark.criterion("ex01.t2.parses")
def test_parse_rejects_unknown_status():
    with pytest.raises(ValueError):
        mini.parse_status({"status": "maybe"})


@pytest.mark.integration
@pytest.mark.criterion("ex01.t2.counts_down")
def test_countdown():
    result = mini.Countdown(3).ticks()
    assert result == [3, 2, 1, 0], f"Countdown(3).ticks(): expected [3, 2, 1, 0], got {result!r}"
