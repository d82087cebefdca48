"""grade-class, gradebook and class-status (instructor only): a whole class graded into a gradebook."""
