"""Loaded by pytest when it collects from starters/."""
