"""The names the grader and its pytest plugin agree on (kept apart so the grader need not import pytest)."""

CHANNEL_FD_VAR = "WORKBOOK_GRADING_FD"  # the inherited pipe's descriptor number, read once and removed
SANDBOXED_VAR = "WORKBOOK_SANDBOXED"
SUBJECT_MODE_VAR = "WORKBOOK_SUBJECT"  # "remote": the test process is a judge, the learner's code runs in a subject
SUBJECT_BWRAP_VAR = "WORKBOOK_SUBJECT_BWRAP"  # the bwrap the judge starts its subject in
