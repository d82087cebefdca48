"""Imported by Python at start-up, before any test."""
import builtins

builtins.GRADED = True
