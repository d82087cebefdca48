"""Mutation testing of the suite against the reference solutions, one exercise at a time (`make mutation`).

For each exercise: a scratch copy of the repo in `build/mutation/<exercise>/` whose pyproject tells mutmut
to mutate only that exercise's `solutions/` module and DAGs, with that exercise's unit tests as the
killing suite (integration and e2e tests left out: see `pytest_add_cli_args` below for why). mutmut forks
one child per mutant from a warmed-up pytest process and runs only the tests that executed the mutated
function. The results (every mutant's status, function, task and the criteria whose tests ran it) go to
`benchmarks/mutation/<exercise>.json`; `benchmarks/mutation_report.py` turns them into `benchmarks/mutation.md`.

    .venv/bin/python benchmarks/mutation.py                 # every exercise
    .venv/bin/python benchmarks/mutation.py ex04 ex11_4     # some
    .venv/bin/python benchmarks/mutation.py --max-children 1 ex11_3

Runs under `nice -n 19` (the machine is shared); takes tens of minutes per exercise on 2 cores.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from grading.core.rubric import load

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "mutation"
MUTMUT = Path(sys.executable).with_name("mutmut")
MARKERS = "not integration and not e2e"
LOG_CALL = r"^\s*self\.log\.(debug|info|warning|error|exception)\("  # a line where a log call starts
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", None: "not checked"}


@dataclass(frozen=True)
class Exercise:
    name: str
    module: str
    tests: str
    dags: dict[str, str]  # DAG file -> task it belongs to
    log_text_promised: bool = True


# No criterion of these exercises checks what their code logs: log calls are not mutated (their wording would
# only add survivors no chapter promise can kill). Every other exercise's criteria read the log.
LOG_TEXT_NOT_PROMISED = {"ex11_3"}


def rubric_exercises() -> dict[str, Exercise]:
    """Every exercise of exercises/rubric.toml: its module, test folder, and the task each DAG file belongs to."""
    return {e.id: Exercise(e.id, e.module, e.test_folder, {dag: t.number for t in e.tasks for dag in t.dags},
                           log_text_promised=e.id not in LOG_TEXT_NOT_PROMISED)
            for e in load(REPO).exercises}


EXERCISES = rubric_exercises()


def mutmut_config(exercise: Exercise) -> str:
    files = [f"solutions/{exercise.module}.py"] + [f"solutions/dags/{name}" for name in exercise.dags]
    return "\n".join([
        "", "[tool.mutmut]",
        'source_paths = ["solutions"]',
        f"only_mutate = {json.dumps(files)}",
        'also_copy = ["fixtures", "grading", "starters", "exercises", "notebooks", "constraints.txt", "README.md"]',
        # Unit tests only: under mutmut's tracing, nice 19 and other suites on 2 cores, a dag.test() run
        # took over pytest-timeout's 120 s in the stats run, and every mutant of a function a DAG run touches
        # would pay a dag.test() (1-10 s). DAG task code therefore shows as "no tests".
        f'pytest_add_cli_args = ["--target=solution", "-m", "{MARKERS}", "-p", "no:cacheprovider", "-q", '
        '"--timeout=600"]',
        f'pytest_add_cli_args_test_selection = ["{exercise.tests}"]',
        # Timeouts are CPU seconds (RLIMIT_CPU), so a loaded machine does not turn slow tests into timeouts.
        *([] if exercise.log_text_promised else [f"do_not_mutate_patterns = {json.dumps([LOG_CALL])}"]),
        "timeout_multiplier = 10.0",
        "timeout_constant = 5.0",
        "use_git_change_detection = false",
        "",
    ])


def scratch_copy(exercise: Exercise) -> Path:
    """The repo's files (tracked and new, not ignored) in a fresh folder, with the exercise's mutmut config."""
    workdir = REPO / "build" / "mutation" / exercise.name
    shutil.rmtree(workdir, ignore_errors=True)
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (workdir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, workdir / name)
    with (workdir / "pyproject.toml").open("a") as pyproject:
        pyproject.write(mutmut_config(exercise))
    return workdir


def elapsed_so_far(workdir: Path) -> float:
    """Seconds from the start of the run in `workdir` to its latest result (for an interrupted run)."""
    marker = workdir / "started_at"
    # The scratch copy's pyproject.toml is written just before mutmut starts.
    started = float(marker.read_text()) if marker.exists() else (workdir / "pyproject.toml").stat().st_mtime
    metas = list((workdir / "mutants").rglob("*.meta"))
    return max((meta.stat().st_mtime for meta in metas), default=time.time()) - started


def run_mutmut(workdir: Path, max_children: int, names: list[str] = ()) -> tuple[int, float]:
    """mutmut over every mutant not run yet (or only over `names`, again)."""
    if not names:
        (workdir / "started_at").write_text(str(time.time()))
    env = {**os.environ, "WORKBOOK_TARGET": "solution", "PYTHONDONTWRITEBYTECODE": "1"}
    env["PATH"] = f"{MUTMUT.parent}{os.pathsep}{env.get('PATH', '')}"
    started = time.monotonic()
    with (workdir / "mutmut.log").open("a" if names else "w") as log:
        code = subprocess.call(["nice", "-n", "19", str(MUTMUT), "run", "--max-children", str(max_children),
                                *names], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT)
    return code, time.monotonic() - started


def task_of_lines(source: str) -> list[tuple[int, str]]:
    """(first line, task) for each `# ---- Task N` section of a solution module; before Task 1 is shared."""
    sections = [(1, "shared")]
    for number, line in enumerate(source.splitlines(), 1):
        if match := re.match(r"# -+ Task (\d+)", line):
            sections.append((number, f"t{match.group(1)}"))
        elif re.match(r"# -+ ", line) and len(sections) > 1:
            sections.append((number, "shared"))
    return sections


def given_functions(starter: str, solution: str) -> set[str]:
    """mutmut's names of the functions the starter ships exactly as the solution has them (constructors,
    helpers): the learner does not write them, so their mutants are no mistake a learner can make. Docstrings
    are not compared (the starter's may say "given")."""
    def code(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]
        return ast.dump(node.args) + ast.dump(ast.Module(body=body, type_ignores=[])) + \
            "".join(ast.dump(d) for d in node.decorator_list) + ast.dump(node.returns or ast.Constant(None))

    def bodies(source: str) -> dict[str, str]:
        return {name: code(node) for name, node in _functions(source).items()}
    shipped, reference = bodies(starter), bodies(solution)
    return {name for name, body in reference.items() if shipped.get(name) == body}


def _functions(source: str) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    """mutmut's mangled function name (`x_f`, `xǁClassǁmethod`) -> its definition."""
    found = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found[f"x_{node.name}"] = node
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    found[f"xǁ{node.name}ǁ{item.name}"] = item
    return found


def given_signature_mutants(workdir: Path, relative: str) -> set[str]:
    """Mutants that change only a function's signature (a default value) where the starter ships that
    signature as the solution has it: the learner does not write the defaults, so they are given."""
    mutated, starter = workdir / "mutants" / relative, workdir / relative.replace("solutions/", "starters/", 1)
    if not mutated.exists() or not starter.exists():
        return set()
    shipped = {name: ast.dump(node.args) for name, node in _functions(starter.read_text()).items()}
    tree = ast.parse(mutated.read_text())
    defs = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    prefix = relative.removesuffix(".py").replace("/", ".") + "."
    found = set()
    for name, node in defs.items():
        base, marker, _ = name.rpartition("__mutmut_")
        original = defs.get(base + "__mutmut_orig")
        if not marker or name.endswith("__mutmut_orig") or original is None:
            continue
        signature_only = (ast.dump(node.args) != ast.dump(original.args)
                          and [ast.dump(n) for n in node.body] == [ast.dump(n) for n in original.body])
        if signature_only and shipped.get(base) == ast.dump(original.args):
            found.add(prefix + name)
    return found


def function_lines(source: str) -> dict[str, int]:
    """mutmut's mangled function name (`x_f`, `xǁClassǁmethod`) -> the line it is defined on."""
    return {name: node.lineno for name, node in _functions(source).items()}


def criteria_of_tests(workdir: Path, tests: set[str]) -> list[str]:
    """The `criterion` marks of the given test node ids (read from the test files, not run)."""
    found: set[str] = set()
    for node_id in tests:
        path, _, name = node_id.partition("::")
        name = name.split("[")[0]
        file = workdir / path
        if not file.exists():
            continue
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                for decorator in node.decorator_list:
                    text = ast.unparse(decorator)
                    if match := re.match(r"pytest\.mark\.criterion\(['\"]([^'\"]+)", text):
                        found.add(match.group(1))
    return sorted(found)


def collect(exercise: Exercise, workdir: Path, seconds: float, exit_code: int) -> dict:
    stats_file = workdir / "mutants" / "mutmut-stats.json"
    stats = json.loads(stats_file.read_text()) if stats_file.exists() else {}
    tests_by_function = {k: set(v) for k, v in stats.get("tests_by_mangled_function_name", {}).items()}
    mutants = []
    for relative, task_of_file in [(f"solutions/{exercise.module}.py", None)] + [
            (f"solutions/dags/{name}", task) for name, task in exercise.dags.items()]:
        meta = workdir / "mutants" / f"{relative}.meta"
        if not meta.exists():
            continue
        source = (workdir / relative).read_text()
        sections, defs = task_of_lines(source), function_lines(source)
        starter = workdir / relative.replace("solutions/", "starters/", 1)
        given = given_functions(starter.read_text(), source) if starter.exists() else set()
        module_prefix = relative.removesuffix(".py").replace("/", ".") + "."
        for name, code in sorted(json.loads(meta.read_text()).get("exit_code_by_key", {}).items()):
            function = name.removeprefix(module_prefix).rsplit("__mutmut_", 1)[0]
            line = defs.get(function, 0)
            task = task_of_file or [t for start, t in sections if start <= line][-1]
            covering = tests_by_function.get(f"{module_prefix}{function}", set())
            status = "given" if function in given else STATUS.get(code, "suspicious")
            mutants.append({"name": name, "file": relative, "function": function, "line": line, "task": task,
                            "status": status, "exit_code": code,
                            "criteria_that_ran_it": criteria_of_tests(workdir, covering) if code == 0 else []})
    return {"exercise": exercise.name, "module": exercise.module, "tests": exercise.tests,
            "killing_suite": f"the exercise's unit tests (pytest -m '{MARKERS}')",
            "seconds": round(seconds, 1), "mutmut_exit_code": exit_code, "mutants": mutants}


def diffs_of(workdir: Path, relative: str) -> dict[str, str]:
    """Mutant name -> its change as a diff of the function, read from mutmut's mutated copy of the file
    (what `mutmut show` prints, without a process per mutant)."""
    mutated = workdir / "mutants" / relative
    if not mutated.exists():
        return {}
    source = mutated.read_text()
    lines = source.splitlines()
    bodies = {node.name: lines[node.lineno - 1:node.end_lineno] for node in ast.walk(ast.parse(source))
              if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    prefix = relative.removesuffix(".py").replace("/", ".") + "."
    found = {}
    for name, body in bodies.items():
        base, marker, _ = name.rpartition("__mutmut_")
        if not marker or name.endswith("__mutmut_orig") or base + "__mutmut_orig" not in bodies:
            continue
        before = [line.replace(base + "__mutmut_orig", base) for line in bodies[base + "__mutmut_orig"]]
        after = [line.replace(name, base) for line in body]
        found[prefix + name] = "\n".join(difflib.unified_diff(before, after, lineterm="", n=1))
    return found


def refresh_suite(exercise: Exercise, workdir: Path) -> None:
    """The repo's tests and chapters as they are now, into an earlier run's scratch copy (its mutants stay:
    the solution must not have changed)."""
    for relative in [f"solutions/{exercise.module}.py"] + [f"solutions/dags/{name}" for name in exercise.dags]:
        if (REPO / relative).read_bytes() != (workdir / relative).read_bytes():
            raise SystemExit(f"{relative} changed since the run in {workdir}: run `make mutation` again")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z", "tests", "exercises"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")
    for folder in ("tests", "exercises"):
        shutil.rmtree(workdir / folder, ignore_errors=True)
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (workdir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, workdir / name)


def survivors_of(workdir: Path) -> list[str]:
    names = []
    for meta in (workdir / "mutants").rglob("*.meta"):
        names += [name for name, code in json.loads(meta.read_text()).get("exit_code_by_key", {}).items() if code == 0]
    return sorted(names)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("exercises", nargs="*", metavar="EXERCISE", help=f"some of {', '.join(EXERCISES)}")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--collect-only", action="store_true",
                        help="only read the results of an earlier (or interrupted) run in build/mutation/")
    parser.add_argument("--survivors", action="store_true",
                        help="run the survivors of the earlier run in build/mutation/ again, against the tests and "
                             "chapters as they are now (the solution must be unchanged)")
    args = parser.parse_args()
    if unknown := [name for name in args.exercises if name not in EXERCISES]:
        parser.error(f"unknown exercise(s) {unknown}: choose from {', '.join(EXERCISES)}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in args.exercises or list(EXERCISES):
        exercise = EXERCISES[name]
        if args.collect_only:
            workdir = REPO / "build" / "mutation" / exercise.name
            earlier = RESULTS / f"{name}.json"  # mutmut's exit code, if this run's results were collected before
            code = json.loads(earlier.read_text()).get("mutmut_exit_code", -1) if earlier.exists() else -1
            seconds = elapsed_so_far(workdir)
        elif args.survivors:
            workdir = REPO / "build" / "mutation" / exercise.name
            refresh_suite(exercise, workdir)
            names = survivors_of(workdir)
            print(f"{name}: {len(names)} survivors again, against the suite as it is now ...", flush=True)
            earlier = RESULTS / f"{name}.json"
            first_run = json.loads(earlier.read_text())["seconds"] if earlier.exists() else elapsed_so_far(workdir)
            code, again = run_mutmut(workdir, args.max_children, names) if names else (0, 0.0)
            seconds = first_run + again  # the whole measurement: the first run, then the survivors again
        else:
            workdir = scratch_copy(exercise)
            print(f"{name}: mutating {exercise.module} in {workdir} ...", flush=True)
            code, seconds = run_mutmut(workdir, args.max_children)
        result = collect(exercise, workdir, seconds, code)
        diffs = {}
        for relative in {mutant["file"] for mutant in result["mutants"]}:
            diffs.update(diffs_of(workdir, relative))
        given_defaults = set()
        for relative in {mutant["file"] for mutant in result["mutants"]}:
            given_defaults |= given_signature_mutants(workdir, relative)
        for mutant in result["mutants"]:
            if mutant["status"] == "survived" and mutant["name"] in given_defaults:
                mutant["status"] = "given"
            if mutant["status"] == "survived":
                mutant["diff"] = diffs.get(mutant["name"], "")
        out = RESULTS / f"{name}.json"
        with tempfile.NamedTemporaryFile("w", dir=RESULTS, delete=False, suffix=".tmp") as tmp:
            json.dump(result, tmp, indent=1, ensure_ascii=False)
        os.replace(tmp.name, out)
        counts = {}
        for mutant in result["mutants"]:
            counts[mutant["status"]] = counts.get(mutant["status"], 0) + 1
        print(f"{name}: {counts} in {seconds:.0f} s (mutmut exit {code}; log {workdir / 'mutmut.log'})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
