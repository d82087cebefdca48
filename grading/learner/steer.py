"""`workbook steer ACTION ...`: moves the simulators of the running playground (`workbook airflow`) from a
second terminal, through the playground's control server."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from grading.learner.playground import EXIT_COULD_NOT_RUN, VECTOR_COLLECTION
from grading.learner.playground_control import STEER_TOKEN_HEADER, pid_alive, read_control, state_dir


@dataclass(frozen=True)
class SteerAction:
    usage: str
    help: str
    needs: str  # the simulator it steers


STEER_ACTIONS = {
    "health": SteerAction("health healthy|maintenance|cycle", "pin the health server's answer, or let it cycle "
                          "(healthy 60 s of every 120 s)", "health"),
    "order": SteerAction("order ID STATUS", "set an order's status, e.g. `order 1 shipped` or `order 1 cancelled`",
                         "orders"),
    "ml-data": SteerAction("ml-data ready", "the behavior log, today's inventory snapshot and catalog version "
                           "104 appear at once", "ml-data"),
    "partner-export": SteerAction("partner-export drop|remove", "drop (or remove) the partner's daily export",
                                  "partner-export"),
    "drop-file": SteerAction("drop-file [COUNT]", "drop COUNT CSV files (default 1) into the landing zone",
                             "landing"),
    "inbox-file": SteerAction("inbox-file", "drop one CSV file into the inbox", "inbox"),
    "vector": SteerAction("vector finish|stall|resume|fail", "steer the index build of the collection "
                          f"{VECTOR_COLLECTION!r}", "vector-store"),
    "webhook": SteerAction("webhook [KEY | --replay | --unsigned]",
                           "send a signed MinIO notification to the webhook receiver (a new object each time)",
                           "webhook"),
}


def register(commands: argparse._SubParsersAction) -> None:
    steer = commands.add_parser(
        "steer", help="move the running playground's simulators (flip the health server, drop a file, ...)",
        description="Steer the simulators of the playground `workbook airflow` started in this workbook.\n\n"
                    + "\n".join(f"  {a.usage:<42} {a.help}" for a in STEER_ACTIONS.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    steer.add_argument("action", choices=list(STEER_ACTIONS), metavar="ACTION")
    steer.add_argument("args", nargs=argparse.REMAINDER, help="what the action takes (see above)")
    steer.add_argument("--state-dir", type=Path, default=None, help="the playground's (default .cache/playground)")
    steer.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import httpx

    control = read_control(state_dir(args))
    if not control or not pid_alive(control.get("pid", 0)):
        print("workbook steer: no playground runs in this workbook: start one with `make airflow` "
              "(and wait for its \"Airflow 3.3 is up\")", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    try:
        response = httpx.post(f"{control['control_url']}/steer", json={"action": args.action, "args": args.args},
                              headers={STEER_TOKEN_HEADER: control["token"]}, timeout=60)
        answer = response.json()
    except (httpx.HTTPError, ValueError) as error:
        print(f"workbook steer: the playground did not answer ({error})", file=sys.stderr)
        return EXIT_COULD_NOT_RUN
    if response.is_error:
        print(f"workbook steer: {answer.get('error', response.text)}", file=sys.stderr)
        return 1
    print(answer["message"])
    return 0
