"""release (instructor only): the learner repo, built from a policy and templates, searched for solution code."""
