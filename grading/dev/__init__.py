"""The instructor's tools for adding an exercise: `workbook dev new`, `dev check` and `dev hints`."""
