"""`sandbox-check`: can submissions be graded on this machine? It starts the test process's Python once in
the grading sandbox, on an empty tree and with no learner code, and says so in one line.

The instructor workflow (grading/classroom/ci/grade-class.yml) runs it before grading a batch: on a machine where
bubblewrap cannot build its namespaces every submission would end as "could not grade", so the job stops
there, red, with the reason, instead of grading nobody.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from grading.core.errors import GradingError
from grading.suite import sandbox
from grading.suite.options import RunOptions, Sandbox
from grading.suite.runner import check_python_starts

EXIT_NO_SANDBOX = 1


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("sandbox-check", help="check that submissions can be graded here (the sandbox)",
                                 description="Start the test process's Python once in grade-submission's sandbox "
                                             "(bubblewrap), with no learner code: exit 0 when it runs, 1 with "
                                             "the reason when it does not.")
    parser.set_defaults(handler=run)


def check() -> Path:
    """The bwrap grade-submission would use, after it ran Python in a sandbox; GradingError with why not."""
    try:
        bwrap = sandbox.probe()
    except sandbox.SandboxUnavailable as error:
        raise GradingError(str(error)) from error
    with tempfile.TemporaryDirectory(prefix="workbook-sandbox-check-") as scratch:
        tree, cache = Path(scratch) / "tree", Path(scratch) / "cache"
        tree.mkdir()
        cache.mkdir()
        check_python_starts(RunOptions(root=tree, target="starter", paths=[],
                                       sandbox=Sandbox(bwrap=bwrap, cache=cache)))
    return bwrap


def run(args: argparse.Namespace) -> int:
    try:
        bwrap = check()
    except GradingError as error:
        print(f"workbook sandbox-check: submissions cannot be graded here: {error}", file=sys.stderr)
        return EXIT_NO_SANDBOX
    print(f"workbook sandbox-check: the sandbox runs here ({bwrap}, {'as root' if sandbox.as_root() else 'in a user namespace'})")
    return 0
