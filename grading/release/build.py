"""`release OUT_DIR`: the learner repo. Exercises (rubric without hidden criteria), starters, fixtures,
notebooks, public tests, the harness, grading's learner commands, a README for learners, Makefile,
pyproject and constraints. No solutions/, no hidden tests, no instructor tools (the judge's machinery
included), and no solution code anywhere: the release is searched for the solutions' source lines, and
checked for anything it names but does not contain (grading.release.check), before it is declared done.

It is built from the last commit (a tree with uncommitted changes is refused unless --allow-dirty, which
builds from the folder as it is), and it is itself a git repository with one initial commit.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from grading.core.errors import GradingError
from grading.core.rubric import RUBRIC_PATH, Rubric, load
from grading.release import check as release_check

RELEASE_AUTHOR = ("Workbook release", "release@workbook.invalid")
RELEASE_MESSAGE = "Waiting well: an Apache Airflow 3.3 workbook"
# Tests of the workbook's machinery that build the fixture workbook (tests/workbook/grading_fixtures/, which
# has solutions and hidden tests, so it is not shipped).
FIXTURE_WORKBOOK_TESTS = {"test_check_loop.py", "test_watch.py", "test_parallel_run.py", "test_learner_edges.py"}
# Tests of instructor-only grading modules, and correct alternatives to the solutions with their test (not
# shipped: an alternative is a solution).
INSTRUCTOR_ONLY_TESTS = {"test_isolation.py", "alternatives", "mistakes", "test_mistakes.py"}
# Whole folders shipped as they are (minus caches and the exclusions below).
FOLDERS = ("exercises", "starters", "fixtures", "notebooks", "tests")
FILES = ("pyproject.toml", "constraints.txt", ".gitignore", "LICENSE")
# grading/ for learners: the commands that need nothing but the public material (grade, check, watch, hint).
# The judge's machinery stays with the instructor: how a graded tree is built, the canaries, the review
# flags, the test inventory a record is held to, the probes that decide "could not grade", the secret
# detector, the sandbox check and this release's own checks would only tell a learner what to get around.
INSTRUCTOR_ONLY_GRADING = {"submission", "classroom", "release", "instrument", "dev"}  # packages of grading/
# Text of a chapter or notebook for the instructor repo only (pointers to solutions/ or benchmarks/): kept
# there, cut from the release. A span that fills its line (a list item, too) goes with its line.
INSTRUCTOR_ONLY_SPAN = re.compile(
    r"^(?:[-*] )?<!-- instructor-only -->(?:(?!<!-- /instructor-only -->).)*<!-- /instructor-only -->[ \t]*\n"
    r"|<!-- instructor-only -->(?:(?!<!-- /instructor-only -->).)*<!-- /instructor-only -->", re.S | re.M)
LEARNER_WORKFLOW = Path("grading/classroom/ci/learner-check.yml")
CACHE_NAMES = {"__pycache__", ".pytest_cache", ".ruff_cache", ".ipynb_checkpoints", ".cache", ".venv", ".venv-lab"}
MIN_LINE_LENGTH = 20
LONG_LINE = 60
RUN = 3
# Lines the solutions share on purpose with shipped simulators or helpers (reviewed, one per row).
SHARED_LINES = Path(__file__).with_name("shared_lines.txt")
# Lines a solution shares with its starter by design, whatever the starter says.
STRUCTURAL = [re.compile(p) for p in (
    r"^(from|import)\s", r"^(async\s+)?def\s", r"^class\s", r"^@", r"^super\(\)\.__init__\(",
    r"^self\.(\w+)\s*(:[^=]+)?=\s*\1,?$", r'^("""|\'\'\')$', r"^#\s*(noqa|type:)",
)]


@dataclass
class Release:
    out: Path
    files: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what it names and does not contain (release_check)


def is_excluded_test(relative: Path) -> bool:
    """Hidden tests, and the workbook's own tests that need solutions/ or instructor-only grading."""
    name = relative.name
    return (name == "test_hidden.py"
            or (relative.parts[:2] == ("tests", "workbook") and
                (name.startswith("test_grading") or name in FIXTURE_WORKBOOK_TESTS or name in INSTRUCTOR_ONLY_TESTS
                 or "grading_fixtures" in relative.parts or "alternatives" in relative.parts)))


def needs_instructor_side(test_file: Path) -> bool:
    """A test of the workbook's machinery that imports what the release does not ship (the fixture workbook,
    solutions/, an instructor-only grading module): it could not even be collected in a learner's copy."""
    instructor_only = ("solutions", "tests.workbook.grading_fixtures",
                       *(f"grading.{name}" for name in INSTRUCTOR_ONLY_GRADING))
    names = release_check.python_names(test_file.read_text(encoding="utf-8", errors="replace"))
    return any(name == module or name.startswith(f"{module}.") for _, name in names for module in instructor_only)


def public_rubric_text(text: str) -> str:
    """The rubric without hidden criteria; each exercise's points lowered to what its public criteria sum to.

    Works on the text, block by block, so comments and everyone's formatting survive.
    """
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith("[[")]
    if not starts:
        return text
    head = "".join(lines[: starts[0]])
    blocks = ["".join(lines[a:b]) for a, b in zip(starts, [*starts[1:], len(lines)], strict=True)]
    hidden_points: dict[str, int] = {}
    kept = []
    for block in blocks:
        if block.startswith("[[criterion]]"):
            data = tomllib.loads(block.replace("[[criterion]]", "", 1))
            if data.get("visibility") == "hidden":
                exercise = str(data["id"]).split(".", 1)[0]
                hidden_points[exercise] = hidden_points.get(exercise, 0) + int(data["points"])
                continue
        kept.append(block)
    out = []
    for block in kept:
        if block.startswith("[[exercise]]"):
            data = tomllib.loads(block.replace("[[exercise]]", "", 1))
            less = hidden_points.get(str(data["id"]), 0)
            if less:
                block = re.sub(r"(?m)^points\s*=\s*(\d+)",
                               lambda m, less=less: f"points = {int(m[1]) - less}", block, count=1)
        out.append(block)
    return head + "".join(out)


def learner_makefile(text: str, absent: frozenset[str] = frozenset({"solutions", "benchmarks"})) -> str:
    """The Makefile without the rules that need solutions/ (test, notebooks) or the instructor's tools, and
    without any paragraph (rule and comment) that uses a folder the release does not have; `make test`
    becomes the workbook's own tests and the linter, which pass on the starters as shipped."""
    paragraphs = re.split(r"\n\s*\n", text)
    uses_absent = re.compile(rf"(?<![\w./-])({'|'.join(map(re.escape, sorted(absent)))})/") if absent else None
    dropped = {"test", "notebooks", "mistakes"}
    dropped |= {target for p in paragraphs if uses_absent and uses_absent.search(p)
                for target in release_check.MAKE_TARGET.findall(p)}
    kept = [p for p in paragraphs if not re.search(rf"(?m)^({'|'.join(map(re.escape, sorted(dropped)))}):", p)
            and not (uses_absent and uses_absent.search(p))]
    kept[0] = re.sub(r"\A(#.*\n)+", "", kept[0])  # the instructor's header: LEARNER_MAKEFILE_HEAD instead
    result = "\n\n".join(p for p in kept if p.strip())
    result = re.sub(r"(?m)^(\.PHONY:.*)$",
                    lambda m: " ".join(w for w in m[1].split() if w not in dropped) + " test", result)
    return LEARNER_MAKEFILE_HEAD + result.rstrip("\n") + "\n\n" + LEARNER_TEST_RULE


def without_instructor_only(text: str) -> str:
    return INSTRUCTOR_ONLY_SPAN.sub("", text)


def strip_instructor_only(out: Path) -> None:
    """Cut the instructor-only spans from the release's Markdown and notebooks' Markdown cells."""
    for path in sorted(out.rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        if "<!-- instructor-only -->" in text:
            path.write_text(without_instructor_only(text), encoding="utf-8")
    for path in sorted(out.rglob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        if "<!-- instructor-only -->" not in text:
            continue
        notebook = json.loads(text)
        for cell in notebook.get("cells", []):
            if cell.get("cell_type") == "markdown":
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                cell["source"] = without_instructor_only(source).splitlines(keepends=True)
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


LEARNER_MAKEFILE_HEAD = "# `make check` (your progress), `make watch`, `make hint`, `make test` (the workbook's own tests).\n"
LEARNER_TEST_RULE = """# The workbook's own machinery (harness, simulators, rubric) and the linter; your exercises: `make check`.
test: $(INSTALLED)
\t$(BIN)/python -m pytest tests/workbook
\t$(BIN)/ruff check .
"""


# The fast loop as the README and every chapter quote it.
FAST_LOOP = '.venv/bin/pytest --target=starter -m "not integration and not e2e"'


def learner_readme(rubric: Rubric) -> str:
    rows = "\n".join(f"| {e.id} | [{e.title}]({e.chapter}) | `starters/{e.module}.py` | "
                     f"`{e.test_folder}/` | {e.criteria_points} |" for e in rubric.exercises)
    return f"""# Waiting well: an Apache Airflow 3.3 workbook

Graded exercises on custom sensors, async triggers, deferrable operators and event-driven DAGs. Each
exercise has a chapter to read, a starter module for you to fill in, simulators of the outside world to
wait on, and tests that tell you, task by task, what works.

## Start

You need Python 3.11 and `make`.

```bash
make check                          # your progress, every exercise (installs everything on first use)
make watch EXERCISE=ex04            # re-runs the fast tests of the task you are on each time you save
make check EXERCISE=ex04 TASK=t1    # one task, its DAG runs included
make hint EXERCISE=ex04 TASK=t1     # the hints of a task, one level at a time (run again for the next)
make test                           # the workbook's own tests and the linter (they pass as shipped)
.venv/bin/workbook grade            # the full report: reports/report.md, results.json, junit.xml
```

Every command can also be run as `.venv/bin/workbook COMMAND`, or as `workbook COMMAND` after
`source .venv/bin/activate`. `check` ends with the first criterion to work on, why it is not met yet and a
hint. A task you have not started says where to read, for example
`NotImplementedError: Exercise 4 · Task 1: implement OrderStatusSensor.poke (exercises/ex04_custom_sensors.md#task-1)`.

## Exercises

| id | chapter | you fill in | tests | points |
| --- | --- | --- | --- | ---: |
{rows}

Work only in `starters/` (and `starters/dags/`): that folder is what gets graded. Your instructor grades
it against the same public tests you have here plus a few hidden ones, with a fresh copy of everything
else, so changing tests, the rubric or grading code changes nothing in your grade. Commit your work: the
grade names the commit it graded.

## While you work

- Fast loop: `{FAST_LOOP} tests/<exercise>`.
- Everything for one exercise, DAG runs included: `.venv/bin/pytest --target=starter tests/<exercise>`.
- Simulators by hand: `.venv/bin/python -m fixtures --help`.
- Walkthrough notebooks in `notebooks/` run against your starters (`WORKBOOK_TARGET=starter`); `make lab` opens
  them in JupyterLab.

Unit tests have no marker, `integration` tests run your DAGs with `dag.test()`, `e2e` tests start real
Airflow processes.
"""


@dataclass
class SolutionCode:
    """What counts as the solutions' code when searching a release.

    Single short lines are Python idioms (`except Exception as exc:`, `started = time.monotonic()`) that
    tests and fixtures share with any solution (even two in a row: `except BaseException:` then
    `Path(tmp).unlink(missing_ok=True)` is how fixtures/atomic.py cleans up too), so a leak is RUN
    consecutive non-trivial solution lines found one after the other, or a single non-trivial line of
    LONG_LINE characters or more.
    """
    lines: dict[str, str]  # every non-trivial line -> where it is in solutions/
    runs: set[tuple[str, ...]]

    def leaks_in(self, text: str) -> list[str]:
        code = _code_lines(text)
        found = [line for line in code if len(line) >= LONG_LINE and line in self.lines]
        windows = zip(*(code[i:] for i in range(RUN)), strict=False)
        found += [" / ".join(window) for window in windows if window in self.runs]
        return found

    def where(self, leak: str) -> str:
        return self.lines[leak.split(" / ", 1)[0]]


def solution_code(root: Path) -> SolutionCode:
    """The non-trivial lines of solutions/: not structural, not shared with the starter of the same name."""
    lines: dict[str, str] = {}
    runs: set[tuple[str, ...]] = set()
    solutions = root / "solutions"
    allowed = {
        line.strip() for line in SHARED_LINES.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for source in sorted(solutions.rglob("*.py")):
        if any(part in CACHE_NAMES for part in source.parts):
            continue
        relative = source.relative_to(solutions)
        starter = root / "starters" / relative
        shared = set(_code_lines(starter.read_text(encoding="utf-8"))) if starter.exists() else set()
        chain: list[str] = []
        for number, raw in enumerate(source.read_text(encoding="utf-8").splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            trivial = (len(line) < MIN_LINE_LENGTH or line in shared or line in allowed
                       or any(p.search(line) for p in STRUCTURAL))
            if trivial:
                chain = []
                continue
            lines.setdefault(line, f"solutions/{relative.as_posix()}:{number}")
            chain = [*chain[-(RUN - 1):], line]
            if len(chain) == RUN:
                runs.add(tuple(chain))
    return SolutionCode(lines=lines, runs=runs)


def find_leaks(release: Path, code: SolutionCode) -> list[str]:
    """Files of the release that contain solution code (notebooks are searched cell by cell)."""
    leaks = []
    for path in sorted(p for p in release.rglob("*") if p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if path.suffix == ".ipynb":
            text = _notebook_text(text)
        for leak in code.leaks_in(text):
            leaks.append(f"{path.relative_to(release).as_posix()}: {leak!r} (from {code.where(leak)})")
    if (release / "solutions").exists():
        leaks.insert(0, "solutions/ is in the release")
    return leaks


def build(root: Path, out: Path) -> Release:
    root, out = root.resolve(), out.resolve()
    if out == root or root.is_relative_to(out):
        raise GradingError(f"refusing to build the release into {out}: it holds the instructor repo")
    if out.exists() and any(out.iterdir()):
        raise GradingError(f"{out} is not empty: pass a new folder")
    load(root)  # a rubric that cannot be read is no release
    public = public_rubric_text((root / RUBRIC_PATH).read_text(encoding="utf-8"))
    release = Release(out=out)

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder).resolve()
        skipped = {n for n in names if n in CACHE_NAMES or n.endswith(".pyc") or (here / n) == out}
        for name in names:
            relative = (here / name).relative_to(root)
            if is_excluded_test(relative) or (relative.parts[:2] == ("tests", "workbook") and name.endswith(".py")
                                              and needs_instructor_side(here / name)):
                skipped.add(name)
            if relative.parts[0] == "grading" and len(relative.parts) == 2 and name in INSTRUCTOR_ONLY_GRADING:
                skipped.add(name)
        return skipped

    out.mkdir(parents=True, exist_ok=True)
    for folder in (*FOLDERS, "grading"):
        if (root / folder).is_dir():
            shutil.copytree(root / folder, out / folder, ignore=ignore)
    for name in FILES:
        if (root / name).is_file():
            shutil.copyfile(root / name, out / name)
    (out / RUBRIC_PATH).write_text(public, encoding="utf-8")
    # The learners' advisory workflow (their visible tests and `check`, no secret): grading/classroom/ci/README.md.
    if (root / LEARNER_WORKFLOW).is_file():
        (out / ".github" / "workflows").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / LEARNER_WORKFLOW, out / ".github" / "workflows" / "check.yml")
    if (root / "Makefile").is_file():
        absent = frozenset(release_check.absent_folders(out, root))
        (out / "Makefile").write_text(learner_makefile((root / "Makefile").read_text(encoding="utf-8"), absent),
                                      encoding="utf-8")
    (out / "README.md").write_text(learner_readme(load(out)), encoding="utf-8")
    strip_instructor_only(out)
    release.files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    release.leaks = find_leaks(out, solution_code(root))
    release.problems = release_check.problems(out, root)
    return release


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=120,
                          check=False)


def uncommitted_changes(root: Path) -> list[str] | None:
    """`git status` of the instructor repo, one path a line; None when it is not a git repository."""
    inside = _git(root, "rev-parse", "--show-toplevel")
    if inside.returncode != 0:
        return None
    status = _git(root, "status", "--porcelain", "--untracked-files=normal", "--", ".")
    if status.returncode != 0:
        raise GradingError(f"git status failed in {root}: {status.stderr.strip()}")
    return [line for line in status.stdout.splitlines() if line.strip()]


def export_commit(root: Path, into: Path) -> tuple[str, Path]:
    """The files of HEAD (what is committed, nothing else) into `into`; returns the commit's SHA."""
    sha = _git(root, "rev-parse", "HEAD")
    if sha.returncode != 0:
        raise GradingError(f"{root} has no commit to build a release from: {sha.stderr.strip()}")
    prefix = _git(root, "rev-parse", "--show-prefix").stdout.strip()
    archive = into / "head.tar"
    done = _git(root, "archive", "--format=tar", f"--output={archive}", "HEAD", *([prefix] if prefix else []))
    if done.returncode != 0:
        raise GradingError(f"git archive failed in {root}: {done.stderr.strip()}")
    tree = into / "tree"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return sha.stdout.strip(), tree / prefix if prefix else tree


def init_repository(out: Path) -> None:
    """The release as a git repository with one initial commit (the learner's history starts there)."""
    name, email = RELEASE_AUTHOR
    identity = ["-c", f"user.name={name}", "-c", f"user.email={email}", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 [*identity, "commit", "-q", "--no-verify", "-m", RELEASE_MESSAGE]):
        done = _git(out, *args)
        if done.returncode != 0:
            raise GradingError(f"git {args[-1] if args[0] == '-c' else args[0]} in {out} failed: "
                               f"{done.stderr.strip() or done.stdout.strip()}")


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("release", help="build the learner repo (no solutions, no hidden tests)",
                                 description="Build the learner repo into OUT_DIR from the last commit, search "
                                             "it for solution code and make it a git repository.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--allow-dirty", action="store_true",
                        help="build from the folder as it is, uncommitted changes included")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    changes = uncommitted_changes(args.root)
    with tempfile.TemporaryDirectory(prefix="workbook-release-") as scratch:
        source, built_from = args.root, "the folder as it is (--allow-dirty)"
        if changes is None and not args.allow_dirty:
            raise GradingError(f"{args.root} is not a git repository: a release is built from a commit "
                               "(--allow-dirty builds from the folder as it is)")
        if changes and not args.allow_dirty:
            shown = ", ".join(line[3:] for line in changes[:5]) + (" ..." if len(changes) > 5 else "")
            raise GradingError(f"uncommitted changes in {args.root} ({len(changes)}: {shown}): commit them, "
                               "or pass --allow-dirty to ship them as they are")
        if not args.allow_dirty:
            sha, source = export_commit(args.root, Path(scratch))
            built_from = f"commit {sha[:12]}"
        release = build(source, args.out_dir)
        if release.leaks:
            print(f"solution code found in the release ({len(release.leaks)}); do not ship {release.out}:")
            for leak in release.leaks:
                print(f"  {leak}")
            return 1
        if release.problems:
            print(f"the release names what it does not contain ({len(release.problems)}); do not ship "
                  f"{release.out}:")
            for problem in release.problems:
                print(f"  {problem}")
            return 1
        init_repository(release.out)
    print(f"learner release in {release.out} from {built_from}: {len(release.files)} files, no solution code "
          "found, one initial commit")
    return 0


def _code_lines(text: str) -> list[str]:
    """Stripped lines without blanks and comments (so a leak cannot hide behind reformatting them)."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _notebook_text(text: str) -> str:
    try:
        cells = json.loads(text).get("cells", [])
    except (ValueError, AttributeError):
        return text
    parts = []
    for cell in cells:
        source = cell.get("source", "")
        parts.append("".join(source) if isinstance(source, list) else str(source))
        for output in cell.get("outputs", []):
            data = output.get("text") or output.get("data", {}).get("text/plain", "")
            parts.append("".join(data) if isinstance(data, list) else str(data))
    return "\n".join(parts)
