"""What the grader reads of a submission in its own process is bounded and inert: its .git (links, devices,
FIFOs, huge files, pointers out of it), its file names (undecodable, colliding, too long), its source as the
review parses it (parser bombs), and what the sandbox may write (capped tmpfs folders only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from grading.classroom.checkout import checkout, starters_digest
from grading.classroom.roster import Entry
from grading.cli import main
from grading.core.git_head import checked_out_commit
from grading.submission import graded_tree, review
from grading.suite import sandbox
from grading.suite.options import sandbox_env
from tests.workbook.grading_fixtures.builder import make_submission, make_workbook
from tests.workbook.hand_made_git import SHA, hand_made, released, within


def class_folder_commit(folder: Path) -> str | None:
    """The commit grade-class records for a learner's folder graded as it is (a roster row without a commit)."""
    return checkout(Entry(learner="learner", repo=str(folder)), folder)[1]


def submission_commit(folder: Path) -> str | None:
    """The commit grade-submission records: nothing outside the submission is read."""
    return checked_out_commit(folder, confined=True)


def learner_commit(folder: Path) -> str | None:
    """The commit `grade` records of the learner's own repository (a worktree's gitdir may be anywhere)."""
    return checked_out_commit(folder, confined=False)


SUBMISSION_READERS = {"grade-submission": submission_commit, "grade-class": class_folder_commit}
READERS = {**SUBMISSION_READERS, "grade": learner_commit}
LEARNER_FILES = ("report.md", "results.json", "junit.xml", "report.txt")


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_an_honest_git_folder_gives_its_commit(reader, tmp_path):
    assert reader(hand_made(tmp_path)) == SHA
    (tmp_path / ".git" / "refs" / "heads" / "main").unlink()
    (tmp_path / ".git" / "packed-refs").write_text(f"# pack-refs with: peeled\n{SHA} refs/heads/main\n")
    assert reader(tmp_path) == SHA, "a packed ref"
    (tmp_path / ".git" / "HEAD").write_text(SHA + "\n", encoding="ascii")
    assert reader(tmp_path) == SHA, "a detached HEAD"


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_a_head_linked_to_dev_zero_is_no_commit(reader, tmp_path):
    hand_made(tmp_path)
    (tmp_path / ".git" / "HEAD").unlink()
    (tmp_path / ".git" / "HEAD").symlink_to("/dev/zero")
    assert within(30, reader, tmp_path) is None


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_a_head_that_is_a_fifo_is_no_commit_and_no_wait(reader, tmp_path):
    hand_made(tmp_path)
    fifo = tmp_path / ".git" / "HEAD"
    fifo.unlink()
    os.mkfifo(fifo)
    with released(fifo):
        assert within(30, reader, tmp_path) is None


@pytest.mark.parametrize("reader", READERS.values(), ids=READERS.keys())
def test_a_huge_ref_is_no_commit(reader, tmp_path):
    hand_made(tmp_path)
    with (tmp_path / ".git" / "refs" / "heads" / "main").open("w", encoding="ascii") as ref:
        ref.write(SHA + "\n")
        ref.truncate(2 * 1024**3)  # sparse: 2 GiB that nobody should read
    assert within(30, reader, tmp_path) is None
    (tmp_path / ".git" / "refs" / "heads" / "main").unlink()
    with (tmp_path / ".git" / "packed-refs").open("w", encoding="ascii") as packed:
        packed.write(f"{SHA} refs/heads/main\n")
        packed.truncate(2 * 1024**3)
    assert within(30, reader, tmp_path) is None


@pytest.mark.parametrize("reader", SUBMISSION_READERS.values(), ids=SUBMISSION_READERS.keys())
def test_links_and_pointers_out_of_a_submission_are_not_followed(reader, tmp_path):
    outside = hand_made(tmp_path / "instructor")
    learner = tmp_path / "learner"
    learner.mkdir()
    (learner / ".git").symlink_to(outside / ".git")
    assert reader(learner) is None, ".git linked to another repository"
    (learner / ".git").unlink()
    (learner / ".git").write_text(f"gitdir: {outside / '.git'}\n", encoding="ascii")
    assert reader(learner) is None, "a gitdir: file pointing out of the submission"
    (learner / ".git").write_text("gitdir: ../instructor/.git\n", encoding="ascii")
    assert reader(learner) is None, "a relative gitdir: pointing out of the submission"
    (learner / ".git").unlink()
    hand_made(learner)
    heads = learner / ".git" / "refs" / "heads"
    (heads / "main").unlink()
    heads.rmdir()
    heads.symlink_to(outside / ".git" / "refs" / "heads")
    assert reader(learner) is None, "refs/heads linked to another repository's"
    (learner / ".git" / "HEAD").write_text("ref: refs/heads/../../../../instructor/.git/refs/heads/main\n")
    assert reader(learner) is None, "a ref climbing out"


@pytest.mark.parametrize("reader", SUBMISSION_READERS.values(), ids=SUBMISSION_READERS.keys())
def test_a_gitdir_inside_the_submission_is_followed(reader, tmp_path):
    hand_made(tmp_path / "modules" / "repo")
    (tmp_path / "modules" / "repo" / ".git").rename(tmp_path / "gitdir")
    (tmp_path / ".git").write_text("gitdir: gitdir\n", encoding="ascii")
    assert reader(tmp_path) == SHA


def test_a_class_digest_of_undecodable_names_does_not_crash(tmp_path):
    starters = tmp_path / "starters"
    starters.mkdir()
    (starters / os.fsdecode(b"caf\xe9.py")).write_text("x = 1\n", encoding="utf-8")
    first = starters_digest(tmp_path)
    (starters / os.fsdecode(b"caf\xe9.py")).write_text("x = 2\n", encoding="utf-8")
    assert starters_digest(tmp_path) != first, "the digest must still see the file's content"


# ---- file names ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workbook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_workbook(tmp_path_factory.mktemp("instructor") / "workbook")


def built(workbook: Path, tmp_path: Path, files: dict[str | bytes, str]) -> graded_tree.GradedTree:
    starters = tmp_path / "learner" / "starters"
    starters.mkdir(parents=True)
    for name, text in files.items():
        path = starters / (os.fsdecode(name) if isinstance(name, bytes) else name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return graded_tree.build(workbook, starters, tmp_path / "tree")


NAME_ATTACKS = {
    "undecodable": ({b"mini\xff.py": "x = 1\n"}, "is not valid UTF-8"),
    "case collision": ({"mini.py": "x = 1\n", "Mini.py": "x = 2\n"}, "differ only by case or Unicode normalisation"),
    "normalisation collision": ({unicodedata.normalize("NFC", "café.py"): "x = 1\n",
                                 unicodedata.normalize("NFD", "café.py"): "x = 2\n"},
                                "differ only by case or Unicode normalisation"),
    "too long": ({"m" * 150 + ".py": "x = 1\n"}, "longer than"),
    "too deep": ({"/".join(["d"] * 20) + "/m.py": "x = 1\n"}, "nested more than"),
    "newline": ({"mini\n.py": "x = 1\n"}, "control or invisible character"),
    "bidi override": ({"mini\u202e.py": "x = 1\n"}, "control or invisible character"),
}


@pytest.mark.parametrize("files, reason", NAME_ATTACKS.values(), ids=NAME_ATTACKS.keys())
def test_names_no_report_or_import_can_carry_refuse_the_submission(workbook, tmp_path, files, reason):
    tree = built(workbook, tmp_path, files)
    assert any(reason in refusal for refusal in tree.refusals), tree.refusals
    for refusal in tree.refusals:
        refusal.encode("utf-8")  # every refusal reaches report.md: it must be writable text
        assert "\n" not in refusal and "\u202e" not in refusal, repr(refusal)


def test_honest_names_are_taken(workbook, tmp_path):
    tree = built(workbook, tmp_path, {"mini.py": "x = 1\n", "dags/my_dag.py": "y = 2\n", "café.py": "z = 3\n"})
    assert tree.refusals == [], tree.refusals
    assert (tree.root / "starters" / "dags" / "my_dag.py").read_text(encoding="utf-8") == "y = 2\n"
    assert (tree.root / "starters" / "café.py").is_file()


def test_fifos_devices_and_huge_files_are_skipped_without_reading(workbook, tmp_path):
    starters = tmp_path / "learner" / "starters"
    starters.mkdir(parents=True)
    os.mkfifo(starters / "pipe.py")
    (starters / "zero.py").symlink_to("/dev/zero")
    with (starters / "huge.py").open("w", encoding="utf-8") as huge:
        huge.truncate(graded_tree.MAX_FILE_BYTES + 1)
    (starters / "mini.py").write_text("x = 1\n", encoding="utf-8")
    tree = within(60, graded_tree.build, workbook, starters, tmp_path / "tree")
    assert tree.refusals == [], tree.refusals
    taken = {p.name for p in (tree.root / "starters").iterdir()}
    assert "mini.py" in taken and not {"pipe.py", "zero.py", "huge.py"} & taken, taken
    assert len(tree.skipped) == 3, tree.skipped


def test_too_many_files_refuse_the_submission(workbook, tmp_path, monkeypatch):
    monkeypatch.setattr(graded_tree, "MAX_FILES", 5)
    tree = built(workbook, tmp_path, {f"m{n}.py": "x = 1\n" for n in range(10)})
    assert any("holds more than 5 files" in r for r in tree.refusals), tree.refusals


# ---- review flags under limits ---------------------------------------------------------------------------
PARSER_BOMBS = {
    "nested unary minus": "x = " + "-" * 300_000 + "1\n",
    "nested attributes": "x = " + "a." * 300_000 + "b\n",
    "long addition chain": "x = 1" + "+1" * 1_000_000 + "\n",
}


@pytest.mark.parametrize("source", PARSER_BOMBS.values(), ids=PARSER_BOMBS.keys())
def test_a_parser_bomb_refuses_the_submission_with_a_reason(tmp_path, source):
    (tmp_path / "bomb.py").write_text(source, encoding="utf-8")
    (tmp_path / "clean.py").write_text("import subprocess\n", encoding="utf-8")
    flags = review.scan(tmp_path)
    reasons = review.refusals(flags)
    assert len(reasons) == 1 and reasons[0].startswith("starters/bomb.py could not be reviewed: "), reasons
    assert ("imports subprocess", "starters/clean.py:1") in {(f.what, f.where) for f in flags}, flags


def test_a_parser_that_is_killed_refuses_the_submission(tmp_path, monkeypatch):
    monkeypatch.setattr(review, "PARSE_MEMORY_BYTES", 64 * 1024**2)  # less than the interpreter needs
    (tmp_path / "mini.py").write_text("x = [" + "1, " * 200_000 + "]\n", encoding="utf-8")
    reasons = review.refusals(review.scan(tmp_path))
    assert len(reasons) == 1 and "could not be reviewed" in reasons[0], reasons


def test_a_syntax_error_is_a_flag_not_a_refusal(tmp_path):
    (tmp_path / "mini.py").write_text("def f(:\n", encoding="utf-8")
    flags = review.scan(tmp_path)
    assert [(f.what, f.refuses) for f in flags] == [("does not parse", False)], flags


REFUSED_END_TO_END = {
    "undecodable name": (b"mini\xff.py", "def add(a, b):\n    return a + b\n", "starters/mini\\xff.py has a name that is not valid UTF-8"),
    "parser bomb": (b"bomb.py", "x = " + "-" * 300_000 + "1\n", "starters/bomb.py could not be reviewed"),
}


@pytest.mark.parametrize("name, source, note", REFUSED_END_TO_END.values(), ids=REFUSED_END_TO_END.keys())
def test_grade_submission_refuses_with_a_note_and_writes_every_report(workbook, tmp_path, capsys, name, source,
                                                                      note):
    learner = make_submission("half_done", workbook, tmp_path / "learner")
    (learner / "starters" / os.fsdecode(name)).write_text(source, encoding="utf-8")
    out = tmp_path / "report"
    code = main(["--root", str(workbook), "grade-submission", str(learner), "--out", str(out)])
    printed = capsys.readouterr()
    assert code == 0, f"exit {code}\n{printed.err[-2000:]}"
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert (results["verdict"], results["total"]["points"]) == ("refused", 0), results
    assert any(note in n for n in results["notes"]), results["notes"]
    for name_ in LEARNER_FILES:
        (out / name_).read_text(encoding="utf-8")


# ---- what the sandbox can write --------------------------------------------------------------------------
WRITER = r"""
import os, sys
cache = sys.argv[1]
template = os.path.join(cache, "airflow-db-x", "airflow.db")
open(os.path.join(cache, "airflow-db-x", ".lock"), "w").close()
print("template", open(template).read())
try:
    open(template, "a").write("spoiled")
    print("template written")
except OSError as error:
    print("template refused", error.errno)
for where in (os.path.join(cache, "fill"), "/dev/shm/fill"):
    try:
        with open(where, "wb") as out:
            for _ in range(64):
                out.write(b"x" * 1024**2)
        print("filled", where)
    except OSError as error:
        print("full", where, error.errno)
"""


def test_the_graded_trees_cache_is_a_capped_tmpfs_and_its_template_read_only(tmp_path, monkeypatch):
    try:
        bwrap = sandbox.probe()
    except sandbox.SandboxUnavailable as error:
        pytest.skip(f"no sandbox here: {error}")
    monkeypatch.setattr(sandbox, "CACHE_TMPFS_BYTES", 16 * 1024**2)
    monkeypatch.setattr(sandbox, "SHM_BYTES", 16 * 1024**2)
    tree = tmp_path / "tree"
    (tree / ".cache" / "airflow-db-x").mkdir(parents=True)
    (tree / ".cache" / "airflow-db-x" / "airflow.db").write_text("migrated", encoding="utf-8")
    for path in (tree, tree / ".cache", tree / ".cache" / "airflow-db-x"):
        path.chmod(0o755)
    (tree / ".cache" / "airflow-db-x" / "airflow.db").chmod(0o644)
    wrapped = sandbox.command(bwrap, [sys.executable, "-c", WRITER, str(tree / ".cache")], tree=tree,
                              cache=tree / ".cache", env=sandbox_env(tree), python_prefixes=sandbox.python_prefixes())
    done = subprocess.run(wrapped, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "template migrated" in lines and "template written" not in lines, lines
    if sandbox.supports_size(bwrap):
        assert any(line.startswith(f"full {tree / '.cache' / 'fill'}") for line in lines), lines
        assert any(line.startswith("full /dev/shm/fill") for line in lines), lines
    assert sorted(p.name for p in (tree / ".cache" / "airflow-db-x").iterdir()) == ["airflow.db"], \
        "the sandbox wrote into the host's folder"
    assert not (tree / ".cache" / "fill").exists()
    assert (tree / ".cache" / "airflow-db-x" / "airflow.db").read_text(encoding="utf-8") == "migrated"
