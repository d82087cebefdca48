"""What the code under test leaves open: the aiohttp sessions it creates and the ResourceWarnings raised
while it runs, observed where it runs (in a graded run, the subject: "measured in the subject")."""

from __future__ import annotations

import contextlib
import gc
import warnings
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from tests.harness.remote import SubjectGone, in_subject, note_measured


class SessionRecorder:
    """Every `aiohttp.ClientSession` built until `stop()`, however the code under test imports the class.
    A live view: each read sees the sessions made so far."""

    def __init__(self) -> None:
        import aiohttp

        self.cls = aiohttp.ClientSession
        self.created: list[Any] = []
        self.original = self.cls.__dict__["__init__"]
        original, created = self.original, self.created

        def init(session: Any, *args: Any, **kwargs: Any) -> None:
            original(session, *args, **kwargs)
            created.append(session)

        self.cls.__init__ = init

    def __iter__(self) -> Iterator[Any]:
        return iter(list(self.created))

    def __len__(self) -> int:
        return len(self.created)

    def __getitem__(self, index: Any) -> Any:
        return self.created[index]

    def stop(self) -> None:
        self.cls.__init__ = self.original


@in_subject(always=True)
def record_sessions() -> SessionRecorder:
    return SessionRecorder()


@pytest.fixture
def sessions() -> Generator[SessionRecorder, None, None]:
    """Every aiohttp.ClientSession created during the test (a conftest imports this fixture)."""
    note_measured("aiohttp sessions")
    recorder = record_sessions()
    yield recorder
    with contextlib.suppress(SubjectGone):
        recorder.stop()


class ResourceWarnings:
    """ResourceWarnings until `stop()`, which first collects garbage (unclosed objects warn when freed)."""

    def __init__(self) -> None:
        self.manager = warnings.catch_warnings(record=True)
        self.caught = self.manager.__enter__()
        warnings.simplefilter("always", ResourceWarning)

    def stop(self) -> list[str]:
        gc.collect()
        self.manager.__exit__(None, None, None)
        return [str(w.message) for w in self.caught if issubclass(w.category, ResourceWarning)]


@in_subject(always=True)
def catch_resource_warnings() -> ResourceWarnings:
    return ResourceWarnings()


@contextlib.contextmanager
def resource_warnings() -> Generator[list[str], None, None]:
    """The messages of the ResourceWarnings raised inside the block (the list is filled when it ends)."""
    note_measured("ResourceWarnings")
    catcher = catch_resource_warnings()
    found: list[str] = []
    try:
        yield found
    finally:
        with contextlib.suppress(SubjectGone):
            found.extend(str(message) for message in catcher.stop())
