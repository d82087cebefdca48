"""verify-suite and mistakes (instructor only): the suite measured as an instrument."""
