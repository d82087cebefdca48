"""From a graded run's record to a grade, and the grade written for people and machines."""
