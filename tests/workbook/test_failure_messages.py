"""A test's own lookup that fails (`event["status"]` on an event without it) reads as a finding, not as a bare
KeyError: the test's file and line, the expression, what was looked up and what came back, with its type."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from grading.judge.messages import failure_message, lookup_message


def failing(call) -> pytest.ExceptionInfo:
    with pytest.raises((KeyError, IndexError)) as info:
        call()
    return info


def test_a_missing_key_names_the_expression_and_what_came_back():
    event = {"status": "timeout", "attempts": 3}
    info = failing(lambda: event["last_value"])
    message = lookup_message(info, __file__)
    assert message is not None and "tests/workbook/test_failure_messages.py:" in message, message
    assert "`event` has no key 'last_value'" in message and "dict {'status': 'timeout', 'attempts': 3}" in message, (
        f"lookup_message for event['last_value']: expected the expression, the key and the dict, got {message!r}")


def test_a_missing_index_says_so_with_the_list():
    rows: list[dict] = []
    message = lookup_message(failing(lambda: rows[0]), __file__)
    assert message is not None and "`rows` has no index 0: it came back as list []" in message, message


def test_the_grading_record_carries_that_line():
    payload = {"status": "error"}
    info = failing(lambda: payload["value"])
    report = SimpleNamespace(passed=False, skipped=False, longrepr=None, fspath=__file__)
    got = failure_message(report, SimpleNamespace(excinfo=info))
    assert "`payload` has no key 'value'" in got, f"failure_message for a failed lookup: got {got!r}"


def test_a_lookup_error_raised_in_the_code_under_test_keeps_its_own_message():
    import os

    info = failing(lambda: os.environ["WORKBOOK_NO_SUCH_VARIABLE"])  # raised inside os.py, not by the test
    assert lookup_message(info, __file__) is None, f"a KeyError from library code: expected its own message, got {lookup_message(info, __file__)!r}"


def test_a_frame_claiming_another_test_files_name_is_not_quoted():
    # Code compiled under another test file's name (as learner code could) raises the KeyError there.
    other = str(Path(__file__).with_name("test_mistakes.py"))
    forged = compile("{}['x']", other, "eval")
    info = failing(lambda: eval(forged))  # noqa: S307 (the forged frame under test)
    assert lookup_message(info, __file__) is None, (
        f"a KeyError from a frame named {other}: expected no line of that file quoted, got {lookup_message(info, __file__)!r}")
