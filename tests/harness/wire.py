"""What crosses between the judge (the graded tests) and the subject (the learner's code): plain data.

Frames are length-prefixed JSON. Values are JSON with tagged objects (`{"$": tag, ...}`) for what JSON has
no word for: tuples, dates, durations, bytes, the few Airflow value types the tests compare, exceptions, and
references to objects that stay on the other side (a sensor, a trigger, a callback). Decoding builds only
plain values and the judge's own classes: nothing in a frame can make the decoder run code it names.
"""

from __future__ import annotations

import base64
import json
import math
import socket
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from pathlib import PurePath
from typing import Any

MAX_FRAME_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 200
REPR_CHARS = 300


class WireError(RuntimeError):
    """The other side sent something that is not a well-formed frame."""


class LinkClosed(WireError):
    """The other side is gone."""


def send_frame(sock: socket.socket, message: dict[str, Any]) -> None:
    data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(data) > MAX_FRAME_BYTES:
        raise WireError(f"a message of {len(data)} bytes is over the {MAX_FRAME_BYTES}-byte limit")
    sock.sendall(len(data).to_bytes(4, "big") + data)


def recv_frame(sock: socket.socket) -> dict[str, Any]:
    size = int.from_bytes(_read_exactly(sock, 4), "big")
    if size > MAX_FRAME_BYTES:
        raise WireError(f"a message of {size} bytes is over the {MAX_FRAME_BYTES}-byte limit")
    try:
        message = json.loads(_read_exactly(sock, size).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise WireError(f"a message that is not JSON: {type(error).__name__}") from None
    if not isinstance(message, dict):
        raise WireError("a message that is not a JSON object")
    return message


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 20))
        if not chunk:
            raise LinkClosed("the other side closed the link")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# ---- values ----------------------------------------------------------------------------------------------

def encode(value: Any, refer: Callable[[Any], dict[str, Any]], depth: int = 0) -> Any:
    """`value` as JSON data; what is not data becomes `refer(value)` (a reference kept on this side)."""
    if depth > MAX_DEPTH:
        raise WireError(f"a value nested deeper than {MAX_DEPTH} levels")
    deeper = depth + 1
    # Only type(value) is looked at: isinstance() would evaluate a lazy proxy (Airflow's context has some).
    cls = type(value)
    if value is None or cls in (bool, str, int):
        return value
    if cls is float:
        return value if math.isfinite(value) else {"$": "float", "repr": repr(value)}
    if cls is list:
        return [encode(v, refer, deeper) for v in value]
    if cls is tuple:
        return {"$": "tuple", "items": [encode(v, refer, deeper) for v in value]}
    if cls is dict:
        return {"$": "dict", "items": [[encode(k, refer, deeper), encode(v, refer, deeper)] for k, v in value.items()]}
    if cls in (set, frozenset):
        return {"$": cls.__name__, "items": [encode(v, refer, deeper) for v in value]}
    if cls in (bytes, bytearray):
        return {"$": "bytes", "b64": base64.b64encode(value).decode("ascii")}
    if issubclass(cls, datetime):
        return {"$": "datetime", "iso": value.isoformat()}
    if cls is date:
        return {"$": "date", "iso": value.isoformat()}
    if cls is time:
        return {"$": "time", "iso": value.isoformat()}
    if issubclass(cls, timedelta):
        return {"$": "timedelta", "dsu": [value.days, value.seconds, value.microseconds]}
    if issubclass(cls, PurePath):
        return {"$": "path", "path": str(value)}
    if cls is uuid.UUID:
        return {"$": "uuid", "hex": value.hex}
    special = _encode_airflow_value(value, refer, deeper)
    if special is not None:
        return special
    if issubclass(cls, BaseException):
        return encode_error(value, refer, deeper)
    if issubclass(cls, str):  # a StrEnum (Airflow's states) crosses as its text
        return str.__str__(value)
    if issubclass(cls, int) and not issubclass(cls, bool):  # an IntEnum (a signal number) as its number
        return int.__index__(value)
    return refer(value)


def _encode_airflow_value(value: Any, refer: Callable[[Any], dict[str, Any]], depth: int) -> dict | None:
    name = f"{type(value).__module__}.{type(value).__qualname__}"
    if name == "airflow.sdk.bases.sensor.PokeReturnValue":
        return {"$": "PokeReturnValue", "is_done": encode(value.is_done, refer, depth),
                "xcom_value": encode(value.xcom_value, refer, depth)}
    if name == "airflow.triggers.base.TriggerEvent":
        return {"$": "TriggerEvent", "payload": encode(value.payload, refer, depth)}
    return None


def encode_error(error: BaseException, refer: Callable[[Any], dict[str, Any]], depth: int = 0) -> dict[str, Any]:
    cls = type(error)
    data: dict[str, Any] = {"$": "error", "module": cls.__module__, "class": cls.__qualname__,
                            "message": _bounded(str(error)),
                            "mro": [f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__]}
    try:
        data["args"] = encode(list(error.args), refer, depth)
    except WireError:
        data["args"] = [_bounded(repr(a)) for a in error.args]
    attributes = {}
    for name, value in list(getattr(error, "__dict__", {}).items())[:32]:
        if isinstance(name, str) and not name.startswith("__"):
            try:
                attributes[name] = encode(value, refer, depth)
            except WireError:
                continue
    data["attributes"] = attributes  # what __init__ kept beside args: a reschedule_date, a deferral's trigger
    return data


def _bounded(text: str, limit: int = 20_000) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception as error:  # a learner's __repr__ may raise: the reference must still cross
        text = f"<{type(value).__name__} whose repr raised {type(error).__name__}>"
    return text if len(text) <= REPR_CHARS else text[:REPR_CHARS] + "…"


def decode(data: Any, resolve: Callable[[dict[str, Any]], Any], depth: int = 0) -> Any:
    """Rebuild a value from `encode`'s data; references go to `resolve`. Unknown tags are an error."""
    if depth > MAX_DEPTH:
        raise WireError(f"a value nested deeper than {MAX_DEPTH} levels")
    deeper = depth + 1
    if data is None or isinstance(data, bool | int | float | str):
        return data
    if isinstance(data, list):
        return [decode(v, resolve, deeper) for v in data]
    if not isinstance(data, dict):
        raise WireError(f"not a value: {type(data).__name__}")
    tag = data.get("$")
    try:
        if tag == "tuple":
            return tuple(decode(v, resolve, deeper) for v in data["items"])
        if tag == "dict":
            return {_key(decode(k, resolve, deeper)): decode(v, resolve, deeper) for k, v in data["items"]}
        if tag in ("set", "frozenset"):
            items = [_key(decode(v, resolve, deeper)) for v in data["items"]]
            return set(items) if tag == "set" else frozenset(items)
        if tag == "float":
            return float({"nan": "nan", "inf": "inf", "-inf": "-inf"}[data["repr"]])
        if tag == "bytes":
            return base64.b64decode(_text(data["b64"]), validate=True)
        if tag == "datetime":
            return datetime.fromisoformat(_text(data["iso"]))
        if tag == "date":
            return date.fromisoformat(_text(data["iso"]))
        if tag == "time":
            return time.fromisoformat(_text(data["iso"]))
        if tag == "timedelta":
            days, seconds, micro = (_int(v) for v in data["dsu"])
            return timedelta(days=days, seconds=seconds, microseconds=micro)
        if tag == "path":
            from pathlib import Path

            return Path(_text(data["path"]))
        if tag == "uuid":
            return uuid.UUID(hex=_text(data["hex"]))
        if tag == "PokeReturnValue":
            from airflow.sdk import PokeReturnValue

            return PokeReturnValue(is_done=decode(data["is_done"], resolve, deeper),
                                   xcom_value=decode(data["xcom_value"], resolve, deeper))
        if tag == "TriggerEvent":
            from airflow.triggers.base import TriggerEvent

            return TriggerEvent(decode(data["payload"], resolve, deeper))
        if tag in ("ref", "callback", "error"):
            return resolve(data)
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise WireError(f"a malformed {tag!r} value: {type(error).__name__}: {error}") from None
    raise WireError(f"an unknown value tag {tag!r}")


def _key(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        raise WireError(f"an unhashable key or set member: {type(value).__name__}") from None
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise WireError(f"expected text, got {type(value).__name__}")
    return value


def _int(value: Any) -> int:
    if type(value) is not int:
        raise WireError(f"expected an integer, got {type(value).__name__}")
    return value
