"""What every stage of grading shares: the manifest, errors, atomic writes, stopping processes, speed classes, verdicts, reading a commit, the grader's variable names."""
