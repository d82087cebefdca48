"""`release OUT_DIR`: the learner repo. Exercises (rubric without hidden criteria), starters, fixtures,
notebooks, public tests, the harness, grading's learner commands, a README for learners, Makefile,
pyproject and constraints. No solutions/, no hidden tests, no instructor tools (the judge's machinery
included), and no solution code anywhere: the release is searched for the solutions' source lines, and
checked for anything it names but does not contain (grading.release.check), before it is declared done.

What ships is the policy's (policy.toml). It is built from the last commit (a tree with uncommitted changes is
refused unless --allow-dirty, which builds from the folder as it is), and it is itself a git repository with
one initial commit.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from grading.core.errors import GradingError
from grading.core.rubric import RUBRIC_PATH, load
from grading.release import check as release_check
from grading.release.git_export import export_commit, init_repository, uncommitted_changes
from grading.release.leaks import find_leaks, solution_code
from grading.release.makefile import learner_makefile
from grading.release.policy import ReleasePolicy, release_policy
from grading.release.readme import learner_readme
from grading.release.redaction import public_rubric_text, strip_instructor_only


@dataclass
class Release:
    out: Path
    files: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what it names and does not contain (release_check)


def needs_instructor_side(test_file: Path, policy: ReleasePolicy) -> bool:
    """A test of the workbook's machinery that imports what the release does not ship (the fixture workbook,
    solutions/, an instructor-only grading module): it could not even be collected in a learner's copy."""
    instructor_only = ("solutions", "tests.workbook.grading_fixtures",
                       *(f"grading.{name}" for name in sorted(policy.instructor_only_grading)))
    names = release_check.python_names(test_file.read_text(encoding="utf-8", errors="replace"))
    return any(name == module or name.startswith(f"{module}.") for _, name in names for module in instructor_only)


def build(root: Path, out: Path) -> Release:
    root, out = root.resolve(), out.resolve()
    if out == root or root.is_relative_to(out):
        raise GradingError(f"refusing to build the release into {out}: it holds the instructor repo")
    if out.exists() and any(out.iterdir()):
        raise GradingError(f"{out} is not empty: pass a new folder")
    policy = release_policy()
    load(root)  # a rubric that cannot be read is no release
    public = public_rubric_text((root / RUBRIC_PATH).read_text(encoding="utf-8"))
    release = Release(out=out)
    out.mkdir(parents=True, exist_ok=True)
    _copy_shipped(root, out, policy)
    (out / RUBRIC_PATH).write_text(public, encoding="utf-8")
    if (root / policy.workflow_source).is_file():
        (out / policy.workflow_target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / policy.workflow_source, out / policy.workflow_target)
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


def _copy_shipped(root: Path, out: Path, policy: ReleasePolicy) -> None:
    """The policy's folders and files, and grading/ without its instructor-only packages."""
    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder).resolve()
        skipped = {n for n in names if n in policy.cache_names or n.endswith(".pyc") or (here / n) == out}
        for name in names:
            relative = (here / name).relative_to(root)
            if policy.is_excluded_test(relative) or (
                    policy.is_machinery_test(relative) and name.endswith(".py")
                    and needs_instructor_side(here / name, policy)):
                skipped.add(name)
            if relative.parts[0] == "grading" and len(relative.parts) == 2 and name in policy.instructor_only_grading:
                skipped.add(name)
        return skipped

    for folder in (*policy.folders, "grading"):
        if (root / folder).is_dir():
            shutil.copytree(root / folder, out / folder, ignore=ignore)
    for name in policy.files:
        if (root / name).is_file():
            shutil.copyfile(root / name, out / name)


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
