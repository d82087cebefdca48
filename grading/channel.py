"""The names the grader and its pytest plugin agree on (kept apart so the grader need not import pytest)."""

CHANNEL_FD_VAR = "WORKBOOK_GRADING_FD"  # the inherited pipe's descriptor number, read once and removed
SANDBOXED_VAR = "WORKBOOK_SANDBOXED"
