# The fixture workbook and submissions are graded in temp copies by tests/workbook/test_grading*.py;
# they are not part of this repo's suite.
collect_ignore_glob = ["workbook/*", "submissions/*"]
