# `make check` (your progress), `make watch`, `make hint`, `make test` (the workbook's own tests).
