# The workbook's own machinery (harness, simulators, rubric) and the linter; your exercises: `make check`.
test: $(INSTALLED)
	$(BIN)/python -m pytest tests/workbook
	$(BIN)/ruff check .
