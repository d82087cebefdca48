"""A submission's verdict: what its grade can be trusted for."""

from __future__ import annotations

GRADED = "graded"  # the points stand
TAMPERED = "tampered"  # the run was interfered with: no points
REFUSED = "refused"  # the submission was not graded (what it holds cannot be graded safely)
COULD_NOT_GRADE = "could_not_grade"  # the machine failed, not the submission: grade it again
VERDICTS = (GRADED, TAMPERED, REFUSED, COULD_NOT_GRADE)
# How a gradebook and a summary name a verdict that is not "graded".
VERDICT_FLAG = {TAMPERED: "tampered", REFUSED: "refused", COULD_NOT_GRADE: "could not grade"}
