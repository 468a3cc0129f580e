"""A factory module that fails while it is imported (tests/models/test_outside.py)."""

raise RuntimeError("broken on import")
