"""`release OUT_DIR`: the learner repo has no solutions, no hidden tests, no instructor tools, and no
solution code anywhere (searched line by line, notebooks cell by cell)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from grading.cli import main
from grading.core.rubric import load
from grading.release import policy as release_policy_module
from grading.release.build import build
from grading.release.leaks import find_leaks, solution_code
from grading.release.policy import POLICY_PATH, load_policy, release_policy
from grading.release.redaction import public_rubric_text
from tests.harness.target import REPO_ROOT
from tests.workbook.grading_fixtures.builder import make_workbook


@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("release") / "workbook")


def test_release_of_this_repo_ships_no_solution_code(tmp_path, capsys):
    out = tmp_path / "learner"
    # --allow-dirty: the tree as it is being worked on, not only its last commit.
    code = main(["--root", str(REPO_ROOT), "release", "--allow-dirty", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, f"release of this repo found solution code:\n{printed}"
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert not [f for f in files if f.startswith("solutions/")], "solutions/ shipped"
    assert not [f for f in files if f.endswith("test_hidden.py")], "hidden tests shipped"
    assert not {"grading/submission/submission.py", "grading/release/build.py", "grading/instrument/verify_suite.py"} & files
    assert not [f for f in files if f.startswith(("grading/classroom/ci/", ".ci/", "tests/workbook/grading_fixtures/"))]
    for needed in ("README.md", "Makefile", "pyproject.toml", "constraints.txt", "exercises/rubric.toml",
                   "starters/_todo.py", "tests/conftest.py", "grading/learner/check.py", "grading/learner/hint.py"):
        assert needed in files, f"{needed} missing from the release"
    rubric = tomllib.loads((out / "exercises" / "rubric.toml").read_text(encoding="utf-8"))
    hidden = [c["id"] for c in rubric.get("criterion", []) if c.get("visibility") == "hidden"]
    assert hidden == [], f"hidden criteria in the learner rubric: {hidden}"
    makefile = (out / "Makefile").read_text(encoding="utf-8")
    assert "--target=solution" not in makefile and "check:" in makefile, makefile
    needs_fixtures = [f for f in files if f.endswith(".py") and "grading_fixtures" in (out / f).read_text("utf-8")]
    assert needs_fixtures == [], f"shipped tests that need the (unshipped) fixture workbook: {needs_fixtures}"


def test_learner_release_offers_only_learner_commands(tmp_path):
    out = tmp_path / "learner"
    assert build(REPO_ROOT, out).leaks == []
    done = release_python(out, "import runpy, sys\nsys.argv = ['workbook', '--help']\n"
                               "runpy.run_module('grading', run_name='__main__')")
    assert done.returncode == 0, done.stdout + done.stderr
    offered = done.stdout
    commands = {line.split()[0] for line in offered.split("positional arguments:")[1].split("options:")[0]
                .splitlines()[2:] if line.startswith("    ") and not line.startswith("     ")}
    assert {"check", "watch", "hint", "grade"} <= commands, offered
    instructors = {"grade-submission", "grade-class", "gradebook", "class-status", "release", "verify-suite",
                   "mistakes", "sandbox-check"}
    assert not commands & instructors, f"instructor commands in the learner release: {commands & instructors}"


def release_python(out: Path, code: str) -> subprocess.CompletedProcess:
    """Run `code` on the release alone: -S keeps this repo's editable install (a finder that would lend the
    release any grading module it lacks) out, and site-packages is put back as a plain folder (the
    third-party packages, no .pth file run)."""
    bootstrap = (f"import sys\nsys.path[:0] = [{str(out)!r}]\nsys.path.append({sysconfig.get_paths()['purelib']!r})\n")
    return subprocess.run([sys.executable, "-S", "-c", bootstrap + code], cwd=out, capture_output=True, text=True,
                          timeout=300, check=False)


def test_public_rubric_drops_hidden_criteria_and_still_adds_up(workbook, tmp_path):
    out = tmp_path / "learner"
    build(workbook, out)
    rubric = load(out)
    assert rubric.problems_found == [], rubric.problems_found
    assert [c.id for c in rubric.exercises[0].criteria] == ["ex01.t1.adds", "ex01.t2.parses", "ex01.t2.counts_down"]
    assert rubric.exercises[0].points == 5, "ex01 declares 6 points, 1 of them hidden"
    assert not (out / "tests" / "ex01_mini" / "test_hidden.py").exists()
    assert not (out / "solutions").exists()


def test_public_rubric_keeps_other_blocks_as_written():
    text = ('# head\nschema = 1\n\n[[exercise]]\nid = "ex01"\npoints = 3  # two public, one hidden\n\n'
            '[[criterion]]\nid = "ex01.t1.a"\npoints = 2\nvisibility = "public"\n\n'
            '[[criterion]]\nid = "ex01.t1.b"\npoints = 1\nvisibility = "hidden"\n')
    assert public_rubric_text(text) == ('# head\nschema = 1\n\n[[exercise]]\nid = "ex01"\n'
                                        'points = 2  # two public, one hidden\n\n'
                                        '[[criterion]]\nid = "ex01.t1.a"\npoints = 2\nvisibility = "public"\n\n')


def test_solution_code_anywhere_in_the_release_is_found(workbook, tmp_path, capsys):
    code = solution_code(workbook)
    assert 'status = str(payload.get("status", "")).lower()' in code.lines, sorted(code.lines)
    assert "def add(a: int, b: int) -> int:" not in code.lines, "a signature the starter shares is not a leak"
    # A notebook that shows the solution, and a fixture that copied three lines of it (a comment in between).
    notebook = {"cells": [{"cell_type": "code", "source": [
        "def parse_status(payload):\n", '    status = str(payload.get("status", "")).lower()\n',
        "    if status not in KNOWN_STATUSES:\n", '        raise ValueError(f"unknown status {status!r}")\n'],
        "outputs": []}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (workbook / "notebooks").mkdir(exist_ok=True)
    (workbook / "notebooks" / "ex01.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    (workbook / "fixtures" / "leaky.py").write_text(
        'def check(payload):\n    status = str(payload.get("status", "")).lower()\n'
        '    if status not in KNOWN_STATUSES:\n        # reformatted\n\n'
        '        raise ValueError(f"unknown status {status!r}")\n', encoding="utf-8")
    try:
        code_ = main(["--root", str(workbook), "release", "--allow-dirty", str(tmp_path / "learner")])
        printed = capsys.readouterr().out
        assert code_ == 1, f"a release with solution code: expected exit 1, got {code_}\n{printed}"
        assert "notebooks/ex01.ipynb: 'status = str(payload.get(" in printed, printed
        assert "fixtures/leaky.py: 'status = str(payload.get(" in printed, printed
        assert len(find_leaks(tmp_path / "learner", code)) == 2
    finally:
        (workbook / "notebooks" / "ex01.ipynb").unlink()
        (workbook / "fixtures" / "leaky.py").unlink()


def test_idioms_shared_with_any_code_are_not_leaks(workbook):
    code = solution_code(workbook)
    assert code.leaks_in('status = str(payload.get("status", "")).lower()\nprint(status)\n') == [], \
        "one short line is an idiom, not a leak"


def test_release_refuses_a_folder_in_use(workbook, tmp_path, capsys):
    (tmp_path / "something").write_text("x", encoding="utf-8")
    assert main(["--root", str(workbook), "release", "--allow-dirty", str(tmp_path)]) == 2
    assert "is not empty" in capsys.readouterr().err


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                           *args], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture
def committed_workbook(tmp_path: Path) -> Path:
    root = make_workbook(tmp_path / "instructor")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "workbook")
    return root


def test_release_refuses_uncommitted_changes_unless_allowed(committed_workbook, tmp_path, capsys):
    starter = committed_workbook / "starters" / "mini.py"
    starter.write_text(starter.read_text(encoding="utf-8") + "# not committed yet\n", encoding="utf-8")
    assert main(["--root", str(committed_workbook), "release", str(tmp_path / "refused")]) == 2
    err = capsys.readouterr().err
    assert "uncommitted changes" in err and "starters/mini.py" in err and "--allow-dirty" in err, err
    assert not (tmp_path / "refused").exists(), "a refused release must write nothing"
    assert main(["--root", str(committed_workbook), "release", "--allow-dirty", str(tmp_path / "dirty")]) == 0
    assert "# not committed yet" in (tmp_path / "dirty" / "starters" / "mini.py").read_text(encoding="utf-8")


def test_release_is_built_from_the_last_commit_as_a_new_repository(committed_workbook, tmp_path, capsys):
    out = tmp_path / "learner"
    assert main(["--root", str(committed_workbook), "release", str(out)]) == 0, capsys.readouterr()
    log = _git(out, "log", "--format=%s")
    assert log.splitlines() == ["Waiting well: an Apache Airflow 3.3 workbook"], log
    assert _git(out, "status", "--porcelain") == "", "everything in the release is committed"
    tracked = set(_git(out, "ls-files").split())
    assert "starters/mini.py" in tracked and not any(f.startswith("solutions/") for f in tracked), tracked


def test_not_a_git_repository_needs_allow_dirty(workbook, tmp_path, capsys):
    assert main(["--root", str(workbook), "release", str(tmp_path / "out")]) == 2
    assert "not a git repository" in capsys.readouterr().err


def test_learner_makefile_has_no_rule_that_needs_solutions(tmp_path):
    out = tmp_path / "learner"
    build(REPO_ROOT, out)
    makefile = (out / "Makefile").read_text(encoding="utf-8")
    assert "--target=solution" not in makefile and "notebooks:" not in makefile, makefile
    readme = (out / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"make (\w+)", readme + makefile):
        assert re.search(rf"(?m)^{target}:", makefile), f"`make {target}` is named but the Makefile has no rule"


JUDGE_FILES = {"grading/submission/canaries.py", "grading/submission/review.py", "grading/submission/graded_tree.py", "grading/submission/submission.py",
               "grading/submission/inventory.py", "grading/submission/probes.py", "grading/submission/unmasked.py", "grading/submission/sandbox_check.py",
               "grading/release/check.py", "grading/release/shared_lines.txt"}


def test_the_release_ships_nothing_of_the_judge_and_its_commands_still_import(tmp_path):
    out = tmp_path / "learner"
    release = build(REPO_ROOT, out)
    assert release.leaks == [] and release.problems == [], release.leaks + release.problems
    assert not JUDGE_FILES & set(release.files), sorted(JUDGE_FILES & set(release.files))
    hints = [c.hint for c in load(REPO_ROOT).criteria.values() if c.hidden]
    assert hints, "the workbook has hidden criteria with hints"
    text = " ".join(" ".join(p.read_text(encoding="utf-8", errors="replace").split())
                    for p in out.rglob("*") if p.is_file())
    assert not [h for h in hints if " ".join(h.split()) in text], "a hidden criterion's hint is in the release"
    # Every module the learner's commands may load, from the release alone.
    modules = sorted(f"grading.{p.stem}" for p in (out / "grading").glob("*.py") if p.stem != "__main__")
    done = release_python(out, f"import importlib\nfor m in {modules!r}: importlib.import_module(m)\n"
                               "import grading\nassert grading.__file__.startswith(sys.path[0]), grading.__file__")
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
def instructor_workbook(tmp_path: Path) -> Path:
    root = make_workbook(tmp_path / "instructor")
    shutil.copytree(REPO_ROOT / "grading", root / "grading", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "benchmarks").mkdir()
    (root / "benchmarks" / "speed.py").write_text("print('fast')\n", encoding="utf-8")
    (root / "tests" / "workbook").mkdir()  # the machinery's own tests: the learner's `make test` runs them
    (root / "tests" / "workbook" / "__init__.py").touch()
    (root / "Makefile").write_text(
        "# instructor header\nBIN := .venv/bin\n.PHONY: check watch hint lab speed\n\n"
        + "".join(f"{target}:\n\tpython -m grading {target}\n\n" for target in ("check", "watch", "hint", "lab"))
        + "# Measures the solutions (instructors only).\nspeed:\n\tpython benchmarks/speed.py\n", encoding="utf-8")
    return root


def test_release_fails_when_a_learner_file_names_an_instructor_module(instructor_workbook, tmp_path, capsys):
    (instructor_workbook / "fixtures" / "peek.py").write_text(
        "import importlib\n\nfrom grading.submission import canaries\n\nreview = importlib.import_module('grading.submission.review')\n"
        "from solutions.mini import add\n", encoding="utf-8")
    assert main(["--root", str(instructor_workbook), "release", "--allow-dirty", str(tmp_path / "learner")]) == 1
    printed = capsys.readouterr().out
    for named in ("fixtures/peek.py:3 names grading.submission.canaries", "fixtures/peek.py:5 names grading.submission.review",
                  "fixtures/peek.py:6 names solutions.mini"):
        assert named in printed, printed
    (instructor_workbook / "fixtures" / "peek.py").unlink()
    assert main(["--root", str(instructor_workbook), "release", "--allow-dirty", str(tmp_path / "clean")]) == 0, \
        capsys.readouterr().out


def test_release_fails_on_a_link_or_target_it_does_not_contain(instructor_workbook, tmp_path, capsys):
    chapter = instructor_workbook / "exercises" / "ex01_mini.md"
    chapter.write_text(chapter.read_text(encoding="utf-8") + (
        "\nSee [the reference](../solutions/mini.py), [task 9](ex01_mini.md#task-9), `make speed` and "
        "`benchmarks/speed.py`.\n"), encoding="utf-8")
    assert main(["--root", str(instructor_workbook), "release", "--allow-dirty", str(tmp_path / "learner")]) == 1
    printed = capsys.readouterr().out
    for problem in ("exercises/ex01_mini.md: link ../solutions/mini.py: no such file in the release",
                    "exercises/ex01_mini.md: link ex01_mini.md#task-9: ex01_mini.md has no heading #task-9",
                    "exercises/ex01_mini.md: mentions `make speed`, which the release's Makefile does not have",
                    "exercises/ex01_mini.md: points at benchmarks/..., which the release does not have"):
        assert problem in printed, printed
    makefile = (tmp_path / "learner" / "Makefile").read_text(encoding="utf-8")
    assert "speed" not in makefile and "benchmarks" not in makefile and "instructors only" not in makefile, makefile


def test_instructor_only_text_is_cut_from_chapters_and_notebooks(instructor_workbook, tmp_path):
    chapter = instructor_workbook / "exercises" / "ex01_mini.md"
    chapter.write_text(chapter.read_text(encoding="utf-8") + (
        "\nA benchmark<!-- instructor-only --> (`benchmarks/speed.py`)<!-- /instructor-only --> says it is fast.\n\n"
        "- Starter: `starters/mini.py`\n- <!-- instructor-only -->Solution: `solutions/mini.py`<!-- /instructor-only -->\n"
        "- Tests: `tests/ex01_mini/`\n"), encoding="utf-8")
    notebook = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": [
        "Read `starters/mini.py`<!-- instructor-only --> (and `solutions/mini.py`)<!-- /instructor-only -->.\n"]}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (instructor_workbook / "notebooks").mkdir()
    (instructor_workbook / "notebooks" / "ex01.ipynb").write_text(json.dumps(notebook), encoding="utf-8")
    release = build(instructor_workbook, tmp_path / "learner")
    assert release.problems == [], release.problems
    shipped = (tmp_path / "learner" / "exercises" / "ex01_mini.md").read_text(encoding="utf-8")
    assert "A benchmark says it is fast.\n\n- Starter: `starters/mini.py`\n- Tests: `tests/ex01_mini/`\n" in shipped, \
        shipped[-300:]
    cells = json.loads((tmp_path / "learner" / "notebooks" / "ex01.ipynb").read_text(encoding="utf-8"))["cells"]
    assert "".join(cells[0]["source"]) == "Read `starters/mini.py`.\n", cells


def test_every_makefile_target_is_walked(tmp_path):
    from grading.release.check import makefile_problems

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "here.py").write_text("", encoding="utf-8")
    (tmp_path / "Makefile").write_text(
        "ok:\n\tpython tests/here.py\n\nspeed:\n\tpython benchmarks/speed.py\n\n"
        "gone:\n\tpython tests/gone.py\n\nbroken: no-such-file.txt\n\techo never\n", encoding="utf-8")
    broken, *others = makefile_problems(tmp_path, {"benchmarks"})
    assert broken.startswith("Makefile: `make -n broken` fails: ") and "no-such-file.txt" in broken, broken
    assert others == ["Makefile: `make gone` uses tests/gone.py, which the release does not have",
                      "Makefile: `make speed` runs benchmarks/speed.py, and the release has no benchmarks/"]


@pytest.mark.parametrize(("change", "error"), [
    (lambda text: text.replace('folders = ["exercises"', 'folders = "exercises" #'),
     "ship.folders must be a list of strings, not 'exercises'"),
    (lambda text: text.replace('hidden = "test_hidden.py"', 'hidden = "tests/test_hidden.py"'),
     "tests.hidden must be a single name, not the path 'tests/test_hidden.py'"),
    (lambda text: text.replace('"LICENSE"]', '"../LICENSE"]'),
     "ship.files[3] must be a path inside the repository, not '../LICENSE'"),
    (lambda text: text.replace("dropped_targets =", "droped_targets ="), "makefile.dropped_targets is missing"),
    (lambda text: text + "\n[extra]\nfolders = []\n", "extra.folders is not a key of the release policy"),
    (lambda text: text + "\n[ship\n", "not valid TOML"),
])
def test_a_malformed_release_policy_is_one_line_of_error(tmp_path, monkeypatch, capsys, change, error):
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(change(POLICY_PATH.read_text(encoding="utf-8")), encoding="utf-8")
    monkeypatch.setattr(release_policy_module, "POLICY_PATH", policy_file)
    release_policy.cache_clear()
    try:
        assert main(["--root", str(REPO_ROOT), "release", "--allow-dirty", str(tmp_path / "learner")]) == 2
    finally:
        release_policy.cache_clear()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"release policy {policy_file}: " in err and error in err, err
    assert not (tmp_path / "learner").exists(), "a release is not started on a broken policy"


def test_the_shipped_policy_reads_and_says_what_the_release_leaves_out():
    policy = load_policy(POLICY_PATH)
    assert "submission" in policy.instructor_only_grading and "solutions" not in policy.folders
    assert policy.is_excluded_test(Path("tests/ex04_custom_sensors/test_hidden.py"))
    assert policy.is_excluded_test(Path("tests/workbook/test_grading_release.py"))
    assert policy.is_excluded_test(Path("tests/workbook/mistakes/ex11_4/t2.poke_mode__bare_true.mistake"))
    assert not policy.is_excluded_test(Path("tests/ex04_custom_sensors/test_t1_order_status.py"))
    assert not policy.is_excluded_test(Path("tests/workbook/test_rubric.py"))
