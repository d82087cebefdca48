"""`class-status GRADEBOOK ROSTER`: each learner's score, as a commit status on their GitHub repo.

Only the score leaves the gradebook ("Points 5/7 (71.4 %)", GitHub Classroom's convention): never flags,
notes or criteria. The token comes from the STATUS_TOKEN environment variable and is never printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from grading.classroom.roster import read_roster
from grading.core.errors import GradingError

CONTEXT = "workbook/grade"
GITHUB_REPO = re.compile(r"^(?:https://github\.com/|git@github\.com:|ssh://git@github\.com/)"
                         r"(?P<owner>[\w.-]+)/(?P<name>[\w.-]+?)(?:\.git)?/?$")
TOKEN_VARIABLE = "STATUS_TOKEN"


def status_for(row: dict[str, str]) -> dict[str, str]:
    """The commit status of one gradebook row: the score, and nothing that explains it."""
    verdict, points, most = row["verdict"], row["points"], row["max_points"]
    if verdict == "graded":
        return {"state": "success", "context": CONTEXT,
                "description": f"Points {points}/{most} ({row['percent']} %)"}
    if verdict in ("tampered", "refused"):
        return {"state": "failure", "context": CONTEXT, "description": f"Points 0/{most}: please see your instructor"}
    return {"state": "error", "context": CONTEXT, "description": "Not graded yet: your instructor will regrade it"}


def planned_statuses(gradebook: Path, roster: Path) -> tuple[list[tuple[str, dict[str, str]]], list[str]]:
    """(API path, body) of every status to post, and one line per learner that gets none (and why)."""
    repos = {entry.learner: entry.repo for entry in read_roster(roster)}
    with gradebook.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    planned, skipped = [], []
    for row in rows:
        learner, commit = row["learner"], row["commit"]
        match = GITHUB_REPO.match(repos.get(learner, ""))
        if match is None:
            skipped.append(f"{learner}: not a GitHub repo in the roster")
        elif not re.fullmatch(r"[0-9a-f]{40}", commit):
            skipped.append(f"{learner}: no commit in the gradebook")
        else:
            planned.append((f"/repos/{match['owner']}/{match['name']}/statuses/{commit}", status_for(row)))
    return planned, skipped


def post(api: str, path: str, body: dict[str, str], token: str) -> None:
    request = urllib.request.Request(
        api.rstrip("/") + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                 "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("class-status", help="post each learner's score as a commit status",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gradebook", type=Path, help="gradebook.csv written by grade-class or gradebook")
    parser.add_argument("roster", type=Path, help="the roster it was graded from (for the repos)")
    parser.add_argument("--api-url", default="https://api.github.com")
    parser.add_argument("--dry-run", action="store_true", help="print the statuses, post nothing")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    planned, skipped = planned_statuses(args.gradebook, args.roster)
    for line in skipped:
        print(f"no status: {line}")
    token = os.environ.get(TOKEN_VARIABLE, "")
    if not args.dry_run and not token:
        raise GradingError(f"class-status: set {TOKEN_VARIABLE} (a token with commit statuses: write), "
                           "or pass --dry-run")
    failed = 0
    for path, body in planned:
        if args.dry_run:
            print(f"POST {path} {json.dumps(body)}")
            continue
        try:
            post(args.api_url, path, body, token)
        except (urllib.error.URLError, OSError) as error:
            failed += 1
            reason = error.code if isinstance(error, urllib.error.HTTPError) else getattr(error, "reason", error)
            print(f"POST {path} failed: {reason}", file=sys.stderr)
        else:
            print(f"POST {path}: {body['description']}")
    return 1 if failed else 0
