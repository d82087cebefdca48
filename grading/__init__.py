"""Grading tools for the workbook: rubric, reports, submissions and the learner release."""
