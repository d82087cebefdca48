"""The judge/subject split: values cross as inert data, the judge survives a hostile or dying subject, and the
judge never imports the learner's code."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.harness import remote, wire
from tests.harness.target import REPO_ROOT


def no_refs(value):
    raise AssertionError(f"plain data expected, got a {type(value).__name__} to refer to")


@pytest.mark.parametrize("value", [
    None, True, 3, -2.5, "text", [1, [2, "x"]], (1, "a"), {"k": {"nested": [1, 2]}}, {1: "int key", (1, 2): "tuple"},
    {3, 4}, frozenset({"a"}), b"\x00\xff", datetime(2024, 1, 1, 12, tzinfo=UTC), timedelta(seconds=90.5),
    Path("/tmp/x.json"), float("inf"),
])
def test_plain_values_cross_unchanged(value):
    data = json.loads(json.dumps(wire.encode(value, no_refs)))
    back = wire.decode(data, no_refs)
    assert back == value and type(back) is type(value), f"encode/decode of {value!r} gave {back!r}"


def test_airflow_values_and_enums_cross_as_what_the_tests_compare():
    from airflow.sdk import PokeReturnValue
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.state import TaskInstanceState

    poke = wire.decode(json.loads(json.dumps(wire.encode(PokeReturnValue(True, {"id": 1}), no_refs))), no_refs)
    assert isinstance(poke, PokeReturnValue) and poke.is_done and poke.xcom_value == {"id": 1}
    event = wire.decode(wire.encode(TriggerEvent({"status": "ok"}), no_refs), no_refs)
    assert isinstance(event, TriggerEvent) and event.payload == {"status": "ok"}
    assert wire.encode(TaskInstanceState.SUCCESS, no_refs) == "success"


@pytest.mark.parametrize(("data", "why"), [
    ({"$": "pickle", "b64": "gASV"}, "unknown value tag"),
    ({"$": "datetime", "iso": 5}, "expected text"),
    ({"$": "dict", "items": [[[1], 2]]}, "unhashable"),
    ({"$": "timedelta", "dsu": ["1", 0, 0]}, "expected an integer"),
    ({"$": "tuple"}, "malformed"),
])
def test_malformed_values_are_refused_not_run(data, why):
    with pytest.raises(wire.WireError, match=why):
        wire.decode(data, no_refs)


def test_a_value_nested_too_deep_is_refused():
    data = 0
    for _ in range(wire.MAX_DEPTH + 5):
        data = [data]
    with pytest.raises(wire.WireError, match="deeper"):
        wire.decode(data, no_refs)


@pytest.mark.parametrize("frame", [
    (wire.MAX_FRAME_BYTES + 1).to_bytes(4, "big"),
    (9).to_bytes(4, "big") + b"not json!",
    (200_005).to_bytes(4, "big") + b"[" * 100_000 + b"]" * 100_000 + b"00000",
    (2).to_bytes(4, "big") + b"[]",
])
def test_a_frame_that_is_too_big_or_not_a_json_object_is_refused(frame):
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(frame)
        with pytest.raises(wire.WireError):
            wire.recv_frame(ours)


# ---- a real subject process ------------------------------------------------------------------------------

@pytest.fixture
def link():
    running = remote.Link(REPO_ROOT)
    yield running
    running.close()


def test_the_subject_runs_calls_and_the_judge_gets_data_or_references(link):
    json_module = link.request("import", module="json")
    assert json_module.dumps({"a": [1, 2]}) == '{"a": [1, 2]}'
    decoder = json_module.JSONDecoder()
    assert isinstance(decoder, remote.RemoteObject), f"an object stays in the subject: got {decoder!r}"
    assert decoder.decode("[1, 2]") == [1, 2]


def test_the_learners_exceptions_come_back_as_the_judges_own_classes(link):
    builtins = link.request("import", module="builtins")
    with pytest.raises(ValueError, match="invalid literal"):
        builtins.int("not a number")


def test_judge_callables_are_called_back_from_the_subject(link):
    functools = link.request("import", module="functools")
    seen = []

    def add(a, b):
        seen.append((a, b))
        return a + b

    assert functools.reduce(add, [1, 2, 3]) == 6
    assert seen == [(1, 2), (3, 3)]


def test_a_subject_that_dies_costs_the_call_and_the_judge_goes_on(link):
    os_module = link.request("import", module="os")
    with pytest.raises(remote.SubjectGone):
        os_module._exit(3)
    assert not link.alive


def test_a_call_the_judge_gives_up_on_replaces_the_subject(monkeypatch):
    monkeypatch.setenv(remote.MODE_VAR, "remote")
    link = remote.current_link()
    time_module = link.request("import", module="time")
    timer = threading.Timer(0.5, lambda: link.sock.shutdown(socket.SHUT_RDWR))  # the judge's timeout, simulated
    timer.start()
    with pytest.raises(remote.SubjectGone):
        time_module.sleep(60)
    remote.after_test()
    fresh = remote.current_link()
    try:
        assert fresh is not link and fresh.alive, "after_test() must start a fresh subject"
        assert link.process.wait(timeout=30) is not None, "the subject given up on must be stopped"
    finally:
        remote.stop()


HOSTILE_SUBJECT = textwrap.dedent("""
    import json, socket, sys
    sock = socket.socket(fileno=int(sys.argv[-1]))
    def receive():
        size = int.from_bytes(sock.recv(4, socket.MSG_WAITALL), "big")
        return json.loads(sock.recv(size, socket.MSG_WAITALL))
    while "id" not in (request := receive()):
        pass
    number = request["id"]
    def send(message):
        data = json.dumps(message).encode()
        sock.sendall(len(data).to_bytes(4, "big") + data)
    kind = sys.argv[1]
    if kind == "interrupt":
        send({"reply": number, "error": {"$": "error", "module": "builtins", "class": "KeyboardInterrupt",
              "message": "stop the judge", "mro": ["builtins.KeyboardInterrupt", "builtins.BaseException"]}})
    elif kind == "skip":
        send({"reply": number, "error": {"$": "error", "module": "_pytest.outcomes", "class": "Skipped",
              "message": "skip me", "mro": ["_pytest.outcomes.Skipped", "_pytest.outcomes.OutcomeException",
              "builtins.BaseException"]}})
    elif kind == "pickle":
        send({"reply": number, "ok": {"$": "pickle", "b64": "gASV"}})
    elif kind == "flood":
        sock.sendall((1 << 31).to_bytes(4, "big") + b"x" * 1000)
    sock.recv(1)
""")


@pytest.mark.parametrize(("kind", "expected"), [
    ("interrupt", remote.SubjectError), ("skip", remote.SubjectError),
    ("pickle", (remote.SubjectGone, wire.WireError)), ("flood", remote.SubjectGone),
])
def test_a_hostile_subject_cannot_steer_the_judge(tmp_path, kind, expected):
    script = tmp_path / "hostile.py"
    script.write_text(HOSTILE_SUBJECT, encoding="utf-8")
    link = remote.Link(REPO_ROOT, command=[sys.executable, str(script), kind])
    try:
        with pytest.raises(expected) as raised:
            link.request("import", module="json")
        assert isinstance(raised.value, Exception), "a BaseException from the subject would stop the judge's pytest"
    finally:
        link.close()


def test_the_judge_cannot_import_the_learners_code(monkeypatch):
    guard = remote._LearnerImportGuard()
    monkeypatch.setattr(sys, "meta_path", [guard, *sys.meta_path])
    for name in [n for n in sys.modules if n.split(".")[0] in remote.LEARNER_PACKAGES]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError, match="never imports the learner's code"):
        __import__("starters.custom_sensors")


def test_a_workbook_checked_out_under_tmp_still_has_its_python_in_the_subject(tmp_path, monkeypatch):
    """The subject gets a /tmp of its own: the venv of a checkout under /tmp must be mounted back into it."""
    from tests.harness import subject_sandbox

    venv, tree = tmp_path / "checkout" / ".venv", tmp_path / "tree"
    (venv / "bin").mkdir(parents=True)
    tree.mkdir()
    monkeypatch.setattr(sys, "prefix", str(venv))
    args = subject_sandbox.command("bwrap", tree, [])
    assert str(tmp_path).startswith("/tmp/"), f"this test needs its tmp_path under /tmp, got {tmp_path}"
    own_tmp = args.index("/tmp")
    bound = [(args[i + 1], args[i + 2]) for i in range(own_tmp, len(args) - 2) if args[i] == "--ro-bind"]
    assert (str(venv), str(venv)) in bound and (str(tree), str(tree)) in bound, (
        f"subject_sandbox.command() with the venv at {venv}: expected it and the tree bound back after the "
        f"subject's own /tmp, got {args}")
