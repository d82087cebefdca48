"""The judge/subject link keeps what one process would do: a cancelled await unwinds the code under test
before the cancellation is seen, a swallowed cancellation returns what the code returned, and one class of
the code under test is one class in the judge."""

from __future__ import annotations

import asyncio
import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import remote
from tests.harness.target import REPO_ROOT

CODE = textwrap.dedent(
    """
    import asyncio

    started, unwound = [], []


    class Thing:
        pass


    async def wait_then_unwind():
        started.append(1)
        try:
            await asyncio.sleep(60)
        finally:
            await asyncio.sleep(0.05)  # an `async with` exit that takes a while
            unwound.append(1)


    async def swallow():
        started.append(1)
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            return "swallowed"
    """
)


@pytest.fixture
def code(tmp_path: Path) -> Iterator[remote.RemoteObject]:
    (tmp_path / "code_under_test.py").write_text(CODE)
    env = {k: v for k, v in os.environ.items() if k != remote.MODE_VAR}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO_ROOT)])
    link = remote.Link(REPO_ROOT, env=env)
    try:
        yield link.request("import", module="code_under_test")
    finally:
        link.close()


async def cancel_once_started(code, awaitable) -> object:
    async def awaited():
        return await awaitable

    task = asyncio.ensure_future(awaited())
    async with asyncio.timeout(30):
        while not len(code.started):  # a state to reach: the code is inside its await
            if task.done():
                break
            await asyncio.sleep(0.01)
    task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        return asyncio.CancelledError


def test_a_cancelled_await_ends_after_the_code_under_test_has_unwound(code):
    outcome = asyncio.run(cancel_once_started(code, code.wait_then_unwind()))
    assert outcome is asyncio.CancelledError, f"expected the cancellation to propagate, got {outcome!r}"
    assert len(code.unwound) == 1, "the cancellation came back before the code's `finally` had run"


def test_a_swallowed_cancellation_returns_what_the_code_returned(code):
    outcome = asyncio.run(cancel_once_started(code, code.swallow()))
    assert outcome == "swallowed", f"expected the value the code returned on its cancellation, got {outcome!r}"


def test_one_class_of_the_code_under_test_is_one_class_in_the_judge(code):
    assert code.Thing is code.Thing
    assert isinstance(code.Thing(), code.Thing)
