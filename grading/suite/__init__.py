"""Running the graded suite in a test process (sandboxed or not) and reading back what it recorded."""
