"""The pytest plugin every graded test process loads: its record, its hardening and its failure messages."""
