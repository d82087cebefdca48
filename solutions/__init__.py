"""Reference solutions: same modules and public API as starters/."""
