"""Budgets checked before work starts: memory of the big arrays, bounds of counts.

A value that is valid on its own can still ask for an impossible amount of work together
with the others (``--days 1000000000`` with 8,000 users asks numpy for 109 TiB). The jobs
call :func:`check_array` with the shape they are about to allocate, and refuse in one line
naming the request and the limit before anything slow runs.

Imports only the standard library, numpy and :mod:`core.errors`.
"""

from __future__ import annotations

import math
import os

import numpy as np

from core.errors import UserError

# never more than this share of the machine's memory for one array
MEMORY_SHARE = 0.5
FALLBACK_MEMORY = 8 << 30  # where the machine's memory cannot be read


def physical_memory() -> int:
    """Bytes of physical memory (`FALLBACK_MEMORY` where it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return FALLBACK_MEMORY


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.1f} {unit}" if unit != "B" else f"{n:,.0f} B"
        n /= 1024
    raise AssertionError


def check_array(what: str, shape: tuple[int, ...], dtype: type = np.float64) -> None:
    """Refuse (one-line `UserError`) if an array of `shape` would exceed the memory budget.

    `what` says what the array is and which settings make its shape, for the message.
    """
    need = math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize
    limit = int(physical_memory() * MEMORY_SHARE)
    if need > limit:
        dims = " x ".join(f"{s:,}" for s in shape)
        raise UserError(
            f"{what} needs {_human(need)} ({dims}), more than the limit of {_human(limit)} "
            f"({MEMORY_SHARE:.0%} of this machine's memory); use fewer users or days"
        )
