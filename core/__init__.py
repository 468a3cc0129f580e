"""core: what every layer shares, and nothing else.

Config dataclasses and their loading (:mod:`core.config`), the one user-facing error type
(:mod:`core.errors`), atomic file I/O (:mod:`core.fileio`) and randomness keyed by identity
(:mod:`core.keyed`).

Layer 1 of ``core → simulator → models → abtest → benchmarks``: imports only the standard
library and third-party packages, never another package of this project.
"""
