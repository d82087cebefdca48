"""The judge's side of the link to the subject (tests.harness.subject): the learner's code as references.

In a graded run the tests never import the learner's modules: `current_target().module(name)` is a
`RemoteObject` for the module as the subject imported it, and everything reached through it is either
plain data decoded here (numbers, strings, dicts, `PokeReturnValue`, `TriggerEvent`, exceptions of the
judge's own classes) or another reference. The tests' assertions run here, on that data.

A reference supports what the tests do to the learner's objects: attributes, calls, `await`, `async for`,
`isinstance` against a learner's class, `len`, indexing, `repr`. Callables the tests hand over (a condition,
a spy) are called back from the subject. A subject that dies or hangs costs the test it was serving: the
link is closed, and the next test starts a fresh subject.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import itertools
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from grading.api import (
    SUBJECT_MODE_VAR as MODE_VAR,  # "remote": the learner's code runs in a subject
)
from grading.api import measured_in_subject as _measured  # grading's own set: its recorder reads it per test
from tests.harness import wire

TRACE_VAR = "WORKBOOK_SUBJECT_TRACE"  # set: the subject's output and every error's traceback reach stderr
SHARED_ENV_PREFIXES = ("AIRFLOW_", "AIRFLOW__", "WORKBOOK_")


class SubjectGone(RuntimeError):
    """The subject process ended or stopped answering."""


class SubjectError(Exception):
    """An exception raised by the learner's code whose class the judge does not have."""

    remote_type = ""
    remote_mro: tuple[str, ...] = ()
    where: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message

    message = ""


def enabled() -> bool:
    return os.environ.get(MODE_VAR) == "remote"


# What the current test measured inside the subject (its log records, a DAG run, a deployment, a patched
# module): the learner's process reports those, so the judge counts them as the learner's output. The graded
# record carries them per test, and the instructor's report lists their criteria.
def note_measured(kind: str) -> None:
    if enabled():
        _measured.add(kind)


def take_measured() -> list[str]:
    taken = sorted(_measured)
    _measured.clear()
    return taken


class Link:
    """One subject process and the multiplexed request/response channel to it."""

    def __init__(self, root: Path, command: list[str] | None = None, env: dict[str, str] | None = None,
                 preexec: Any = None, sweep: bool = False) -> None:
        """`preexec`: run in the subject's process before it starts (its limits); `sweep`: when the subject is
        closed, also kill every other process this one may signal (a sandbox where the judge starts nothing
        else: what a fork bomb left behind)."""
        ours, theirs = socket.socketpair()
        self.sock = ours
        self.numbers = itertools.count(1)
        self.pending: dict[int, tuple[threading.Event, list[dict]]] = {}
        self.callbacks: dict[int, Any] = {}
        self.send_lock = threading.Lock()
        self.closed = False
        self.tainted = False
        self.environment: dict[str, str] = {}
        self.classes: dict[int, type] = {}  # one judge-side class per learner class, so `is` compares them
        inner = [sys.executable, "-m", "tests.harness.subject", str(theirs.fileno())]
        if env is None:  # a local subject: this process's environment, without the switch that made it remote
            env = {k: v for k, v in os.environ.items() if k != MODE_VAR}
        self.process = subprocess.Popen(
            (command or []) + inner, cwd=root, env=env, pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
            stdout=None if os.environ.get(TRACE_VAR) or command else subprocess.DEVNULL, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=preexec)
        self.sweep = sweep
        theirs.close()
        self.reader = threading.Thread(target=self._read, name="judge-link", daemon=True)
        self.reader.start()

    # ---- values ----
    def encode(self, value: Any) -> Any:
        return wire.encode(value, self._refer)

    def _refer(self, value: Any) -> dict[str, Any]:
        if isinstance(value, RemoteObject):
            if object.__getattribute__(value, "_link") is not self:
                raise SubjectGone("a reference from a subject that has since been restarted")
            return {"$": "ref", "id": object.__getattribute__(value, "_id")}
        if isinstance(value, RemoteClassMeta):
            return {"$": "ref", "id": value._remote_id}
        if callable(value):
            number = next(self.numbers)
            self.callbacks[number] = value
            return {"$": "callback", "id": number, "name": getattr(value, "__name__", "callback")}
        raise TypeError(f"{type(value).__name__} objects cannot be handed to the learner's code in a graded run")

    def decode(self, data: Any) -> Any:
        return wire.decode(data, self._resolve)

    def _resolve(self, data: dict[str, Any]) -> Any:
        if data["$"] == "ref":
            return make_reference(self, data)
        if data["$"] == "error":
            return rebuild_error(self, data)
        raise wire.WireError(f"the subject sent a {data['$']!r}, which only the judge sends")

    # ---- requests ----
    def request(self, op: str, *, timeout: float | None = None, **fields: Any) -> Any:
        """One operation in the subject; its result decoded. `timeout`: seconds after which the subject is given
        up on (closed) and the call fails, for calls no per-test limit covers (collection)."""
        self._sync_environment()
        number = next(self.numbers)
        done, box = threading.Event(), []
        self.pending[number] = (done, box)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            self._send({"id": number, "op": op, **fields})
            while not done.wait(0.5):
                if self.closed:
                    raise SubjectGone("the learner's code process ended during this call")
                if deadline is not None and time.monotonic() > deadline:
                    self.close()
                    raise SubjectGone(f"the learner's code did not answer within {timeout:g} s")
        except BaseException:
            if not done.is_set() and not self.closed:
                self.cancel(number)
                self.tainted = True  # the learner's code may still be running that call: restart after the test
            raise
        finally:
            self.pending.pop(number, None)
        return self._outcome(box)

    def _outcome(self, box: list[dict]) -> Any:
        """A reply's value, or its error raised here (as the judge's own class)."""
        if not box:
            raise SubjectGone("the learner's code process ended during this call")
        reply = box[0]
        if "error" in reply:
            error = self.decode(reply["error"])
            raise error if isinstance(error, BaseException) else SubjectGone("a malformed error")
        return self.decode(reply.get("ok"))

    async def request_async(self, op: str, **fields: Any) -> Any:
        """The same, without blocking the judge's event loop. Cancelling it cancels the subject's await and
        waits until the learner's code has unwound, as `task.cancel(); await task` does in one process: the
        cancellation goes on, unless that code swallowed it (then what it returned is the result)."""
        self._sync_environment()
        number = next(self.numbers)
        arrival, box = _Arrival(asyncio.get_running_loop()), []
        self.pending[number] = (arrival, box)  # type: ignore[assignment]
        try:
            self._send({"id": number, "op": op, **fields})
            try:
                await asyncio.shield(arrival.future)
            except asyncio.CancelledError:
                self.cancel(number)
                try:
                    await arrival.future
                except asyncio.CancelledError:  # cancelled again while the learner's code unwinds
                    self.tainted = True
                    raise
                if not box or _is_cancellation(box[0]):
                    raise
        finally:
            self.pending.pop(number, None)
        if box and _is_cancellation(box[0]):  # the learner's own await was cancelled: here, as in one process
            raise asyncio.CancelledError()
        return self._outcome(box)

    def _sync_environment(self) -> None:
        """Airflow's connections, variables and configuration the tests set as environment variables reach the
        subject before its next call (only those: the judge's other variables are none of its business)."""
        now = {k: v for k, v in os.environ.items() if k.startswith(SHARED_ENV_PREFIXES) and k != MODE_VAR}
        if now == self.environment:
            return
        changes = {k: v for k, v in now.items() if self.environment.get(k) != v}
        removed = [k for k in self.environment if k not in now]
        self.environment = now
        self._send({"op": "environ", "set": changes, "unset": removed})

    def cancel(self, number: int) -> None:
        try:
            self._send({"op": "cancel", "target": number})
        except (OSError, wire.WireError):
            pass

    def _send(self, message: dict[str, Any]) -> None:
        if self.closed:
            raise SubjectGone("the learner's code process has ended")
        with self.send_lock:
            try:
                wire.send_frame(self.sock, message)
            except OSError as error:
                self.close()
                raise SubjectGone(f"the learner's code process is gone ({error})") from None

    def _read(self) -> None:
        try:
            while True:
                message = wire.recv_frame(self.sock)
                if "callback" in message:
                    threading.Thread(target=self._call_back, args=(message,), daemon=True).start()
                    continue
                waiter = self.pending.get(message.get("reply"))
                if waiter is not None:
                    waiter[1].append(message)
                    waiter[0].set()
        except (wire.WireError, OSError):
            pass
        finally:
            self.close()

    def _call_back(self, message: dict[str, Any]) -> None:
        try:
            function = self.callbacks[message["id"]]
            result = function(*self.decode(message["args"]), **self.decode(message["kwargs"]))
            reply = {"callback_reply": message["callback"], "ok": self.encode(result)}
        except BaseException as error:
            reply = {"callback_reply": message["callback"],
                     "error": {"class": type(error).__name__, "message": str(error)[:2000]}}
        try:
            self._send(reply)
        except SubjectGone:
            pass

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        for done, _box in list(self.pending.values()):
            done.set()
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, 9)
            except ProcessLookupError:
                pass
        if self.sweep:
            try:
                os.kill(-1, 9)  # every process of the sandbox this judge may signal, but itself and init
            except ProcessLookupError:
                pass
        self.process.wait()

    @property
    def alive(self) -> bool:
        return not self.closed and self.process.poll() is None


# ---- references ------------------------------------------------------------------------------------------

class _Arrival:
    """A reply awaited on an event loop; set from the link's reader thread (or by a closing link)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.future: asyncio.Future = loop.create_future()

    def set(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self._arrived)
        except RuntimeError:  # that loop has closed: nobody waits any more
            pass

    def is_set(self) -> bool:
        return self.future.done()

    def _arrived(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


CANCELLATIONS = ("asyncio.exceptions.CancelledError", "concurrent.futures._base.CancelledError")


def _is_cancellation(reply: dict[str, Any]) -> bool:
    error = reply.get("error")
    return isinstance(error, dict) and any(name in CANCELLATIONS for name in error.get("mro", [])[:1])


def make_reference(link: Link, data: dict[str, Any]) -> Any:
    if data.get("kind") == "class":
        if data["id"] not in link.classes:
            link.classes[data["id"]] = remote_class(link, data)
        return link.classes[data["id"]]
    return RemoteObject(link, data)


class RemoteObject:
    __slots__ = ("_link", "_id", "_info")

    def __init__(self, link: Link, info: dict[str, Any]) -> None:
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_id", info["id"])
        object.__setattr__(self, "_info", info)

    def _ask(self, op: str, **fields: Any) -> Any:
        link = object.__getattribute__(self, "_link")
        return link.request(op, target=link.encode(self), **fields)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        link = object.__getattribute__(self, "_link")
        note_measured("a patched object")
        self._ask("setattr", name=name, value=link.encode(value))

    def __delattr__(self, name: str) -> None:
        self._ask("delattr", name=name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        link = object.__getattribute__(self, "_link")
        return self._ask("call", args=link.encode(list(args)), kwargs=link.encode(kwargs))

    def __repr__(self) -> str:
        try:
            return self._ask("dunder", name="repr")
        except (SubjectGone, wire.WireError):
            return f"<{object.__getattribute__(self, '_info').get('type', '?')} in a subject that is gone>"

    def __str__(self) -> str:
        return self._ask("dunder", name="str")

    def __len__(self) -> int:
        return self._ask("dunder", name="len")

    def __bool__(self) -> bool:
        return bool(self._ask("dunder", name="bool"))

    def __iter__(self):
        return iter(self._ask("dunder", name="list"))

    def __getitem__(self, key: Any) -> Any:
        link = object.__getattribute__(self, "_link")
        return self._ask("dunder", name="getitem", args=link.encode([key]))

    def __contains__(self, item: Any) -> bool:
        link = object.__getattribute__(self, "_link")
        return bool(self._ask("dunder", name="contains", args=link.encode([item])))

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, RemoteObject):
            return object.__getattribute__(self, "_id") == object.__getattribute__(other, "_id")
        return NotImplemented

    def __hash__(self) -> int:
        return hash(object.__getattribute__(self, "_id"))

    def __enter__(self) -> Any:
        return self._ask("dunder", name="enter")

    def __exit__(self, *exc: Any) -> Any:
        return self._ask("dunder", name="exit", args=object.__getattribute__(self, "_link").encode([None, None, None]))

    def __await__(self):
        link = object.__getattribute__(self, "_link")
        return link.request_async("await", target=link.encode(self)).__await__()

    def __aiter__(self) -> RemoteObject:
        return self

    async def __anext__(self) -> Any:
        link = object.__getattribute__(self, "_link")
        return await link.request_async("anext", target=link.encode(self))

    @property
    def remote_kind(self) -> str:
        return object.__getattribute__(self, "_info").get("kind", "object")


class RemoteClassMeta(type):
    """The metaclass of a learner's class as the judge sees it: calling it builds an instance in the subject,
    `isinstance` asks the subject, attributes are the class's own."""

    _remote_link: Link
    _remote_id: int
    _remote_info: dict[str, Any]

    def __new__(mcs, name: str, bases: tuple, namespace: dict) -> RemoteClassMeta:
        if any(isinstance(base, RemoteClassMeta) for base in bases):
            raise TypeError(f"class {name}: a test cannot subclass the learner's class in a graded run (the class "
                            "lives in the subject); define the subclass in a module the subject imports")
        return super().__new__(mcs, name, bases, namespace)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        link = cls._remote_link
        return link.request("call", target={"$": "ref", "id": cls._remote_id}, args=link.encode(list(args)),
                            kwargs=link.encode(kwargs))

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return cls._remote_link.request("getattr", target={"$": "ref", "id": cls._remote_id}, name=name)

    def __setattr__(cls, name: str, value: Any) -> None:
        if name.startswith("_remote_"):
            type.__setattr__(cls, name, value)
            return
        link = cls._remote_link
        link.request("setattr", target={"$": "ref", "id": cls._remote_id}, name=name, value=link.encode(value))

    def __instancecheck__(cls, instance: Any) -> bool:
        if isinstance(instance, RemoteObject):
            link = cls._remote_link
            return bool(link.request("isinstance", target=link.encode(instance),
                                     cls={"$": "ref", "id": cls._remote_id}))
        if isinstance(instance, SubjectError):
            return cls._remote_info.get("name") in instance.remote_mro
        return False

    def __subclasscheck__(cls, subclass: Any) -> bool:
        if isinstance(subclass, RemoteClassMeta):
            return cls._remote_info.get("name") in subclass._remote_info.get("mro", [])
        return False

    def __repr__(cls) -> str:
        return f"<class {cls._remote_info.get('name', '?')!r} (the learner's)>"


def remote_class(link: Link, info: dict[str, Any]) -> type:
    name = str(info.get("name", "Remote")).rsplit(".", 1)[-1]
    cls = RemoteClassMeta(name, (), {})
    type.__setattr__(cls, "_remote_link", link)
    type.__setattr__(cls, "_remote_id", info["id"])
    type.__setattr__(cls, "_remote_info", info)
    return cls


# ---- exceptions ------------------------------------------------------------------------------------------

def rebuild_error(link: Link, data: dict[str, Any]) -> BaseException:
    """An exception of the judge's own class when the judge has that class loaded, else a `SubjectError`
    subclass that is also an instance of the nearest base the judge has (so `pytest.raises` still works)."""
    mro = [str(n) for n in data.get("mro", [])][:64]
    message = str(data.get("message", ""))
    args = link.decode(data.get("args", []))
    args = tuple(args) if isinstance(args, list) else (message,)
    known = [_loaded_exception(name) for name in mro]
    exact = known[0] if known else None
    if exact is not None:
        error = exact.__new__(exact)
        error.args = args
    else:
        base = next((cls for cls in known if cls is not None and cls is not BaseException), Exception)
        bases = (SubjectError,) if issubclass(SubjectError, base) else (SubjectError, base)
        name = str(data.get("class", "Error")).rsplit(".", 1)[-1][:100]
        try:
            cls = type(name, bases, {})
        except TypeError:  # a base whose layout does not mix
            cls = type(name, (SubjectError,), {})
        error = cls.__new__(cls)
        error.args = args
        error.message, error.remote_type, error.remote_mro = message, mro[0] if mro else "", tuple(mro)
    attributes = data.get("attributes")
    if isinstance(attributes, dict):  # wire.encode_error: the instance's own attributes, each value encoded
        for key, value in list(attributes.items())[:32]:
            if isinstance(key, str) and not key.startswith("__") and key not in ("message", "remote_type", "remote_mro"):
                try:
                    setattr(error, key, link.decode(value))
                except (AttributeError, TypeError):
                    continue
    where = [str(w) for w in data.get("where", [])][:5]
    if where:
        error.add_note("raised in the learner's code at " + " <- ".join(reversed(where)))
    return error


# Exceptions the judge never raises on the subject's word: they would steer the judge's own pytest (stop the
# session, skip or xfail a test) instead of failing the test the subject was serving.
JUDGE_ONLY_MODULES = ("starters", "solutions", "_pytest", "pytest", "pluggy", "grading", "tests", "fixtures")


def _loaded_exception(name: str) -> type | None:
    """The class `module.qualname` if that module is already imported here (a frame never makes the judge
    import anything) and it is an `Exception` (not a bare BaseException: no KeyboardInterrupt, SystemExit)."""
    module_name, _, qualname = name.rpartition(".")
    module = sys.modules.get(module_name)
    if module is None or module_name.split(".")[0] in JUDGE_ONLY_MODULES:
        return None
    value: Any = module
    for part in qualname.split("."):
        value = getattr(value, part, None)
    if not isinstance(value, type) or not issubclass(value, BaseException):
        return None
    # Airflow's own BaseExceptions are a task's outcomes the tests expect (TaskDeferred), never a way out.
    return value if issubclass(value, Exception) or value.__module__.split(".")[0] == "airflow" else None


# ---- the session's subject -------------------------------------------------------------------------------

_current: Link | None = None
_lock = threading.Lock()
_starter: Any = None  # how a graded run starts its subject: (root) -> Link; None: a plain local process


def current_link() -> Link:
    """The running subject, started on first use and again after one died or was left mid-call."""
    global _current
    with _lock:
        if _current is None or not _current.alive:
            root = Path(__file__).resolve().parents[2]
            if "AIRFLOW_HOME" in os.environ:  # one migrated DB for both sides, made before either opens it
                from tests.harness.airflow_env import ensure_metadata_db

                ensure_metadata_db(Path(os.environ["AIRFLOW_HOME"]))
            _current = _starter(root) if _starter is not None else Link(root)
        return _current


def use_starter(start: Any) -> None:
    """`start(root) -> Link`: how this session's subjects are started (a graded run: in their sandbox)."""
    global _starter
    _starter = start


def after_test() -> None:
    """A subject left running a call the test gave up on (a timeout, an interrupted await) is replaced."""
    global _current
    with _lock:
        replace = _current is not None and (_current.tainted or not _current.alive)
        if replace:
            _current.close()
            _current = None
    if replace:
        current_link()  # started now, in this test's teardown: the next test's time is its own


def stop() -> None:
    global _current
    with _lock:
        if _current is not None:
            _current.close()
            _current = None


class _LearnerImportGuard:
    """In the judge, importing the learner's package is an error at the line that tries it."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if name.split(".")[0] in LEARNER_PACKAGES:
            raise ImportError(f"{name}: the judge of a graded run never imports the learner's code (use "
                              "current_target().module(...) or a harness helper, which reach it in the subject)")
        return None


LEARNER_PACKAGES = ("starters", "solutions")


def guard_imports() -> None:
    """From here on this process is a judge: the learner's packages cannot be imported into it."""
    if not any(isinstance(finder, _LearnerImportGuard) for finder in sys.meta_path):
        sys.meta_path.insert(0, _LearnerImportGuard())


def call_in_subject(function: Any, *args: Any, main_thread: bool = False, answer_within: float | None = None,
                    **kwargs: Any) -> Any:
    """`function(*args, **kwargs)` run in the subject (a module-level function of a module both sides have);
    `main_thread`: on the subject's main thread (what installs signal handlers needs it); `answer_within`:
    seconds after which the subject is given up on."""
    link = current_link()
    return link.request("call_path", module=function.__module__, qualname=function.__qualname__,
                        args=link.encode(list(args)), kwargs=link.encode(kwargs), main=main_thread,
                        timeout=answer_within)


def subject_module(name: str) -> Any:
    """A module as the code under test sees it, e.g. `time` to patch its `sleep`: the subject's in a graded
    run, this process's otherwise."""
    return RemoteModule(name) if enabled() else importlib.import_module(name)


class RemoteModule:
    """A learner's module by name: whichever subject is running imports it (a restarted one too)."""

    __slots__ = ("_name", "_refs")  # no __dict__: monkeypatch must see the module's attributes, not ours

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_refs", {})

    def _module(self) -> RemoteObject:
        link = current_link()
        refs = object.__getattribute__(self, "_refs")
        if link not in refs:
            refs.clear()
            refs[link] = link.request("import", module=object.__getattribute__(self, "_name"))
        return refs[link]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return getattr(self._module(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        note_measured("a patched module")
        setattr(self._module(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._module(), name)

    def __repr__(self) -> str:
        return f"<the learner's module {object.__getattribute__(self, '_name')!r}>"


# ---- harness helpers that act on the learner's objects ---------------------------------------------------

def _holds_reference(values: Any, depth: int = 0) -> bool:
    if isinstance(values, RemoteObject | RemoteClassMeta | RemoteModule):
        return True
    if depth < 3 and isinstance(values, list | tuple):
        return any(_holds_reference(v, depth + 1) for v in values)
    if depth < 3 and isinstance(values, dict):
        return any(_holds_reference(v, depth + 1) for v in values.values())
    return False


def in_subject(function: Any = None, *, always: bool = False) -> Any:
    """A harness helper that drives the learner's objects (builds a context, steps a trigger) runs where they
    live: handed a reference (`always`: in any graded run), the call is made in the subject and its result
    comes back as data or references. Its result is an observation for the judge's assertions, never a verdict."""
    if function is None:
        return functools.partial(in_subject, always=always)
    path = (function.__module__, function.__qualname__)

    def call_there(args: tuple, kwargs: dict, awaited: bool) -> Any:
        link = current_link()
        return link.request("call_path", module=path[0], qualname=path[1], args=link.encode(list(args)),
                            kwargs=link.encode(kwargs), awaited=awaited)

    if inspect.iscoroutinefunction(function):
        @functools.wraps(function)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            if (always and enabled()) or _holds_reference((args, kwargs)):
                link = current_link()
                return await link.request_async("call_path", module=path[0], qualname=path[1],
                                                args=link.encode(list(args)), kwargs=link.encode(kwargs),
                                                awaited=True)
            return await function(*args, **kwargs)
        return run_async

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        if (always and enabled()) or _holds_reference((args, kwargs)):
            return call_there(args, kwargs, False)
        return function(*args, **kwargs)
    return run
