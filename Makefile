# Two commands do everything: `make check` (your progress) and `make test` (the reference solutions).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: check test lint install lock clean notebooks mutation

# Re-installs only when the declared dependencies or their pins change.
$(INSTALLED): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e .
	@touch $@

install: $(INSTALLED)

# Your progress: per exercise and task, then the first criterion to work on with a hint
# (`make check EXERCISE=ex04` for one exercise). Exits 0 whenever the check itself ran.
check: $(INSTALLED)
	@$(BIN)/python -m grading check $(EXERCISE)

# The whole suite against the reference solutions, the walkthrough notebooks and the linter: all must pass.
test: $(INSTALLED)
	$(BIN)/python -m pytest --target=solution $(PYTEST_ARGS)
	WORKBOOK_TARGET=solution $(BIN)/python -m pytest --nbval notebooks/ --nbval-sanitize-with notebooks/sanitize.cfg
	$(BIN)/ruff check .

# Re-runs every walkthrough and saves its outputs (commit them: learners read them rendered).
notebooks: $(INSTALLED)
	cd notebooks && WORKBOOK_TARGET=solution ../$(BIN)/jupyter nbconvert --to notebook --execute --inplace *.ipynb

# Mutation testing of the suite against solutions/ (a measurement, not part of `make test`): mutmut per
# exercise with its unit and integration tests, under nice, results in benchmarks/mutation/ and the report
# benchmarks/mutation.md (`make mutation EXERCISE=ex04` for one; tens of minutes per exercise on 2 cores).
MUTATION_INSTALLED := $(VENV)/.installed-mutation
$(MUTATION_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[mutation]'
	@touch $@

mutation: $(MUTATION_INSTALLED)
	nice -n 19 $(BIN)/python benchmarks/mutation.py $(EXERCISE)
	$(BIN)/python benchmarks/mutation_report.py

lint: $(INSTALLED)
	$(BIN)/ruff check .

# Regenerates constraints.txt from a clean environment (needs the package registry).
lock:
	rm -rf build/lock-venv && $(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install --quiet -e '.[mutation]'
	build/lock-venv/bin/python -m pip freeze --exclude-editable | sort -f > constraints.txt
	rm -rf build/lock-venv

clean:
	rm -rf $(VENV) .cache
