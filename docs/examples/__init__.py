"""Runnable examples of the documentation (docs/outside_models.md)."""
