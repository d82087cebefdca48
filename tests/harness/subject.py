"""The subject: the only process of a graded run that imports and runs the learner's code.

`python -m tests.harness.subject FD` serves requests from the judge over the socket inherited as FD: import
a module, get or set an attribute, call, await, step an async generator. Every request runs in a thread of
its own (a test may call from several threads, and the learner's code may block); coroutines run on one
event loop of the subject's, as a triggerer's do. What comes back is plain data (tests.harness.wire); an
object that is not data stays here and the judge gets a reference to it. Nothing here decides a verdict:
the judge asserts on what it decoded.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import os
import queue
import socket
import sys
import threading
import traceback
import types
from typing import Any

from tests.harness import wire


class Subject:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.send_lock = threading.Lock()
        self.objects: dict[int, Any] = {}
        self.ids: dict[int, int] = {}  # id(obj) -> reference number, while the object is held here
        self.numbers = itertools.count(1)
        self.callback_numbers = itertools.count(1)
        self.waiting: dict[int, tuple[threading.Event, list[dict]]] = {}
        self.running: dict[int, asyncio.Future] = {}
        self.tasks: dict[int, asyncio.Task] = {}  # the loop's task of each awaited request, to cancel it
        self.main_jobs: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, name="subject-loop", daemon=True).start()

    # ---- references ----
    def refer(self, value: Any) -> dict[str, Any]:
        number = self.ids.get(id(value))
        if number is None or self.objects.get(number) is not value:
            number = next(self.numbers)
            self.objects[number] = value
            self.ids[id(value)] = number
        return {"$": "ref", "id": number, **describe(value)}

    def resolve(self, data: dict[str, Any]) -> Any:
        tag = data["$"]
        if tag == "ref":
            return self.objects[data["id"]]
        if tag == "callback":
            return self._callback(data["id"], data.get("name", "callback"))
        if tag == "error":
            return RuntimeError(data.get("message", ""))
        raise wire.WireError(f"unexpected {tag!r}")

    def encode(self, value: Any) -> Any:
        return wire.encode(value, self.refer)

    def decode(self, data: Any) -> Any:
        return wire.decode(data, self.resolve)

    # ---- the judge's callables, called back across the link ----
    def _callback(self, number: int, name: str):
        def call(*args: Any, **kwargs: Any) -> Any:
            request = next(self.callback_numbers)
            done, box = threading.Event(), []
            self.waiting[request] = (done, box)
            self.send({"callback": request, "id": number, "args": self.encode(list(args)),
                       "kwargs": self.encode(kwargs)})
            done.wait()
            del self.waiting[request]
            reply = box[0]
            if "error" in reply:
                raise _judge_error(reply["error"])
            return self.decode(reply["ok"])

        call.__name__ = call.__qualname__ = str(name)
        return call

    # ---- the link ----
    def send(self, message: dict[str, Any]) -> None:
        with self.send_lock:
            wire.send_frame(self.sock, message)

    def serve(self) -> None:
        while True:
            try:
                message = wire.recv_frame(self.sock)
            except wire.LinkClosed:
                return
            if "callback_reply" in message:
                done, box = self.waiting[message["callback_reply"]]
                box.append(message)
                done.set()
            elif message.get("op") == "cancel":
                self.loop.call_soon_threadsafe(self._cancel, message["target"])
            elif message.get("op") == "environ":
                os.environ.update({str(k): str(v) for k, v in message["set"].items()})
                for key in message["unset"]:
                    os.environ.pop(key, None)
            elif message.get("op") == "release":
                for number in message.get("ids", []):
                    value = self.objects.pop(number, None)
                    if value is not None and self.ids.get(id(value)) == number:
                        del self.ids[id(value)]
            elif message.get("main"):
                self.main_jobs.put(message)
            else:
                threading.Thread(target=self.answer, args=(message,), daemon=True).start()

    def answer(self, message: dict[str, Any]) -> None:
        number = message.get("id")
        try:
            result = self.perform(number, message)
            reply = {"reply": number, "ok": self.encode(result)}
        except BaseException as error:  # the learner's code may raise anything: it goes back as data
            reply = {"reply": number, "error": self.encode_error(error)}
        try:
            self.send(reply)
        except wire.WireError as error:
            self.send({"reply": number, "error": self.encode_error(error)})

    def encode_error(self, error: BaseException) -> dict[str, Any]:
        data = wire.encode_error(error, self.refer)
        data["where"] = learner_frames(error)
        if os.environ.get("WORKBOOK_SUBJECT_TRACE"):  # debugging the harness: every error's whole traceback
            traceback.print_exception(error, file=sys.stderr)
        return data

    def run_on_loop(self, number: int, awaitable: Any) -> Any:
        """Await on the subject's loop. The judge's cancel cancels that task, and the reply waits until the
        learner's code has unwound (its `finally` and `async with` exits have run), as `await task` does."""
        future = asyncio.run_coroutine_threadsafe(self._awaited(number, awaitable), self.loop)
        self.running[number] = future
        try:
            return future.result()
        finally:
            self.running.pop(number, None)

    async def _awaited(self, number: int, awaitable: Any) -> Any:
        self.tasks[number] = asyncio.current_task()
        try:
            return await awaitable
        finally:
            self.tasks.pop(number, None)

    def _cancel(self, number: int) -> None:
        """On the loop: cancel the request's task, or its future if the task has not started yet."""
        task = self.tasks.get(number)
        if task is not None:
            task.cancel()
        elif (future := self.running.get(number)) is not None:
            future.cancel()

    def perform(self, number: int, message: dict[str, Any]) -> Any:
        op = message["op"]
        if op == "import":
            return importlib.import_module(message["module"])
        if op == "call_path":
            function: Any = importlib.import_module(message["module"])
            for part in message["qualname"].split("."):
                function = getattr(function, part)
            function = getattr(function, "__wrapped__", function)
            result = function(*self.decode(message["args"]), **self.decode(message["kwargs"]))
            if message.get("awaited"):
                return self.run_on_loop(number, result)
            return result
        target = self.decode(message["target"]) if "target" in message else None
        if op == "getattr":
            return getattr(target, message["name"])
        if op == "setattr":
            setattr(target, message["name"], self.decode(message["value"]))
            return None
        if op == "delattr":
            delattr(target, message["name"])
            return None
        if op == "call":
            return target(*self.decode(message["args"]), **self.decode(message["kwargs"]))
        if op in ("await", "anext"):
            return self.run_on_loop(number, target if op == "await" else anext(target))
        if op == "isinstance":
            return isinstance(target, self.decode(message["cls"]))
        if op == "issubclass":
            return isinstance(target, type) and issubclass(target, self.decode(message["cls"]))
        if op == "dunder":
            return DUNDERS[message["name"]](target, *self.decode(message.get("args", [])))
        raise wire.WireError(f"unknown operation {op!r}")


DUNDERS = {
    "repr": wire.short_repr, "str": str, "len": len, "bool": bool, "list": list,
    "getitem": lambda obj, key: obj[key], "contains": lambda obj, item: item in obj,
    "eq": lambda obj, other: obj == other, "enter": lambda obj: obj.__enter__(),
    "exit": lambda obj, *args: obj.__exit__(*args),
}


def describe(value: Any) -> dict[str, Any]:
    """What the judge is told about an object it gets a reference to, from its type alone (touching the value
    would evaluate a lazy proxy)."""
    cls = type(value)
    is_class = issubclass(cls, type)
    kind = ("module" if issubclass(cls, types.ModuleType) else "class" if is_class
            else "asyncgen" if issubclass(cls, types.AsyncGeneratorType)
            else "coroutine" if issubclass(cls, types.CoroutineType)
            else "callable" if callable(value) else "object")
    own = value if is_class else cls
    name = ""
    if is_class:
        name = f"{value.__module__}.{value.__qualname__}"
    elif kind == "module" or issubclass(cls, types.FunctionType | types.MethodType | types.BuiltinFunctionType):
        name = str(getattr(value, "__name__", ""))
    return {"kind": kind, "type": f"{cls.__module__}.{cls.__qualname__}", "name": name,
            "mro": [f"{c.__module__}.{c.__qualname__}" for c in own.__mro__]}


def learner_frames(error: BaseException) -> list[str]:
    """Where in the learner's own files the error passed: `starters/x.py:42 in poke`."""
    frames = []
    for frame in traceback.extract_tb(error.__traceback__):
        path = frame.filename.replace("\\", "/")
        for package in ("/starters/", "/solutions/"):
            if package in path:
                frames.append(f"{package.strip('/')}/{path.split(package, 1)[1]}:{frame.lineno} in {frame.name}")
    return frames[-5:]


def _judge_error(data: dict[str, Any]) -> BaseException:
    return RuntimeError(f"{data.get('class', 'Error')}: {data.get('message', '')}")


def main() -> None:
    """Requests that need the main thread (signals: a DAG run's time bound) run here, the rest in threads."""
    subject = Subject(socket.socket(fileno=int(sys.argv[1])))

    def serve_then_stop() -> None:
        subject.serve()
        subject.main_jobs.put(None)

    threading.Thread(target=serve_then_stop, name="subject-link", daemon=True).start()
    while (job := subject.main_jobs.get()) is not None:
        subject.answer(job)


if __name__ == "__main__":
    main()
