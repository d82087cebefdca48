"""grade-submission (instructor only): grading one learner's copy, trusting nothing in it, as a declared list of steps."""
