# Two commands do everything: `make check` (your progress) and `make test` (the reference solutions).
# While you work: `make watch` (re-runs your task's fast tests on every save) and `make hint`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: check watch hint test lint dev-check install lock clean notebooks lab mutation load-check mistakes airflow \
	playground-check

# Re-installs only when the declared dependencies or their pins change.
$(INSTALLED): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e .
	@touch $@

install: $(INSTALLED)

# Your progress: per exercise and task, then the first criterion to work on with a hint
# (`make check EXERCISE=ex04` for one exercise, `make check EXERCISE=ex04 TASK=t1` for one task).
# Exits 0 whenever the check itself ran.
check: $(INSTALLED)
	@$(BIN)/python -m grading check $(EXERCISE) $(if $(EXERCISE),$(TASK))

# Re-runs the fast tests of the task you are on whenever you save a starter or DAG file (Ctrl-C stops);
# `make watch EXERCISE=ex04` for one exercise.
watch: $(INSTALLED)
	@$(BIN)/python -m grading watch $(EXERCISE)

# The hints of a task, one level more each time: `make hint EXERCISE=ex04 TASK=t1`.
hint: $(INSTALLED)
	@test -n "$(EXERCISE)" -a -n "$(TASK)" || { echo "usage: make hint EXERCISE=ex04 TASK=t1"; exit 2; }
	@$(BIN)/python -m grading hint $(EXERCISE) $(TASK)

# The whole suite against the reference solutions, the walkthrough notebooks and the linter: all must pass.
# The suite runs on TEST_WORKERS pytest-xdist workers (its tests mostly wait on processes and servers);
# TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: $(INSTALLED)
	$(BIN)/python -m pytest --target=solution $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)
	WORKBOOK_TARGET=solution $(BIN)/python -m pytest -p nbval --nbval notebooks/ --nbval-sanitize-with notebooks/sanitize.cfg
	$(BIN)/ruff check .

# Re-runs every walkthrough and saves its outputs (commit them: learners read them rendered).
notebooks: $(INSTALLED)
	cd notebooks && WORKBOOK_TARGET=solution ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace *.ipynb

# JupyterLab on the walkthroughs (`make lab WORKBOOK_TARGET=starter` to walk through your own code). It lives in
# .venv-lab, not .venv: what it needs would slow every `import airflow` in .venv by seconds. Its notebooks run
# on .venv's Python, installed into .venv-lab as the "python3" kernel.
LAB_VENV := .venv-lab
LAB_INSTALLED := $(LAB_VENV)/.installed
$(LAB_INSTALLED): constraints.txt $(INSTALLED)
	@test -x $(LAB_VENV)/bin/python || $(PYTHON) -m venv $(LAB_VENV)
	$(LAB_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt jupyterlab
	$(BIN)/python -m ipykernel install --prefix $(LAB_VENV) --name python3 --display-name "Python 3 (workbook .venv)"
	@touch $@

lab: $(LAB_INSTALLED)
	cd notebooks && ../$(LAB_VENV)/bin/jupyter lab

# Real Airflow with your DAGs and every simulator they wait on: the UI on http://127.0.0.1:8080 (login admin /
# admin), api-server, scheduler, dag-processor and triggerer on loopback. `make airflow EXERCISE=ex11_3` starts
# one exercise's simulators; WORKBOOK_TARGET=solution shows the reference DAGs. Steer the simulators from a
# second terminal with `.venv/bin/workbook steer ...`; Ctrl-C stops everything.
airflow: $(INSTALLED)
	@$(BIN)/python -m grading airflow $(EXERCISE)

# The playground in a real browser: starts it on free ports, signs in with headless Chromium (Debian's chromium
# and chromium-driver), triggers ex11_3_http_polling from the UI, sees it deferred then successful, stops it.
# Screenshots go to $(PLAYGROUND_SCREENSHOTS). Not part of `make test`.
BROWSER_INSTALLED := $(VENV)/.installed-browser
PLAYGROUND_SCREENSHOTS ?= build/playground
$(BROWSER_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[browser]'
	@touch $@

playground-check: $(BROWSER_INSTALLED)
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { echo "needs Debian's chromium and chromium-driver: sudo apt-get install -y chromium chromium-driver"; exit 2; }
	WORKBOOK_SCREENSHOTS=$(PLAYGROUND_SCREENSHOTS) $(BIN)/python -m pytest --target=$(or $(WORKBOOK_TARGET),solution) -s \
		tests/workbook/playground_browser_check.py

# The integration and e2e tests 10 times against the solutions with every core busy (not part of `make test`;
# about 10 x the suite's e2e time). LOAD_CHECK_ARGS="--runs 2" for fewer.
load-check: $(INSTALLED)
	$(BIN)/python benchmarks/load_check.py $(LOAD_CHECK_ARGS)

# Mutation testing of the suite against solutions/ (a measurement, not part of `make test`): mutmut per
# exercise with its unit tests, under nice, results in benchmarks/mutation/ and the report
# benchmarks/mutation.md (`make mutation EXERCISE=ex04` for one; tens of minutes per exercise on 2 cores).
MUTATION_INSTALLED := $(VENV)/.installed-mutation
$(MUTATION_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[mutation]'
	@touch $@

mutation: $(MUTATION_INSTALLED)
	nice -n 19 $(BIN)/python benchmarks/mutation.py $(EXERCISE)
	$(BIN)/python benchmarks/mutation_report.py

# The catalogue of plausible wrong solutions (tests/workbook/mistakes/, each must be caught by the criterion it
# breaks) and correct alternatives (tests/workbook/alternatives/, each must earn its whole task), graded like
# submissions: results in benchmarks/mistakes/, the report benchmarks/mistakes.md (`make mistakes EXERCISE=ex04`).
mistakes: $(INSTALLED)
	$(BIN)/python -m grading mistakes $(EXERCISE)

lint: $(INSTALLED)
	$(BIN)/ruff check .

# Every exercise the rubric declares has its chapter (hint blocks current), starter and solution, tests (one
# per criterion, files named per task), notebook and DAG files (`workbook dev new` scaffolds a new one).
dev-check: $(INSTALLED)
	$(BIN)/python -m grading dev check

# Regenerates constraints.txt from a clean environment (needs the package registry); it pins `make lab`'s
# JupyterLab too, which .venv never installs.
lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet -e '.[mutation,browser]' jupyterlab
	build/lock-venv/bin/python -m pip freeze --exclude-editable | sort -f > constraints.txt
	rm -rf build/lock-venv

clean:
	rm -rf $(VENV) $(LAB_VENV) .cache
