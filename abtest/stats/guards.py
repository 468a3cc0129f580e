"""Input checks and NaN-safe arithmetic shared by the statistics modules.

:func:`require` is the one input check: every bad argument raises
:class:`~core.errors.UserError` with a message ``"<what>: must be <condition>, got <value>"``.
:func:`safe_div` and :func:`safe_sqrt` turn degenerate arithmetic (a zero or non-finite
divisor, a negative variance) into NaN instead of an exception or a warning.
"""

from __future__ import annotations

import math

import numpy as np

from core.errors import UserError

NAN = float("nan")


def require(ok: bool, what: str, must: str, got: object) -> None:
    """The one input check: raise ``UserError("<what>: must be <must>, got <got>")``."""
    if not ok:
        raise UserError(f"{what}: must be {must}, got {got}")


def check_prob(value: float, what: str) -> None:
    """``value`` must be a number strictly between 0 and 1 (a level, a power, a threshold)."""
    require(
        isinstance(value, int | float | np.floating) and 0 < value < 1,
        what,
        "a number in (0, 1)",
        repr(value),
    )


def safe_div(a: float, b: float) -> float:
    """a / b as a float; NaN when b is 0 or not finite (no warnings, no ZeroDivisionError)."""
    a, b = float(a), float(b)
    if b == 0 or not math.isfinite(b):
        return NAN
    return a / b


def safe_sqrt(v: float) -> float:
    """sqrt(v); NaN for a negative (or NaN) v."""
    return math.sqrt(v) if v >= 0 else NAN  # NaN >= 0 is False, so NaN stays NaN
