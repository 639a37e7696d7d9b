"""Inspect tasks; each lives in its own folder with its scorer, solver and README."""

# ruff: noqa: F401
