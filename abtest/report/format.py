"""Numbers as the report prints them: percents, p-values, counts, CIs; "—" for unknown."""

from __future__ import annotations

import math
from typing import Any

from abtest.online.results import MetricLift, PerArm

DASH = "—"


def as_float(x: Any) -> float | None:
    """A finite number as a float; None for None, NaN, inf, booleans and non-numbers."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def percent(x: Any, signed: bool = True) -> str:
    x = as_float(x)
    if x is None:
        return DASH
    x *= 100
    digits = 2 if 0 < abs(x) < 0.1 else 1
    return f"{x:+.{digits}f}%" if signed else f"{x:.{digits}f}%"


def p_value(x: Any) -> str:
    x = as_float(x)
    if x is None:
        return DASH
    return f"{x:.1e}" if x < 1e-3 else f"{x:.3f}"


def four_digits(x: Any) -> str:
    x = as_float(x)
    return DASH if x is None else f"{x:.4g}"


def one_decimal(x: Any) -> str:
    x = as_float(x)
    return DASH if x is None else f"{x:.1f}"


def thousands(x: Any) -> str:
    x = as_float(x)
    return DASH if x is None else f"{round(x):,}"


def yes_no(x: Any) -> str:
    return {True: "yes", False: "no"}.get(x, DASH) if isinstance(x, bool) else DASH


def ci(m: MetricLift) -> str:
    lo, hi = as_float(m.ci_low), as_float(m.ci_high)
    return DASH if lo is None or hi is None else f"[{percent(lo)}, {percent(hi)}]"


def lift_ci(m: MetricLift, marker: bool = False) -> str:
    """Lift and CI, with " *" when `marker` and the test is significant."""
    lift, interval = percent(m.lift), ci(m)
    text = DASH if lift == interval == DASH else f"{lift} {interval}"
    return text + (" *" if marker and m.significant is True else "")


def users(p: PerArm | None) -> str:
    """Users per arm as "control / treatment"."""
    return DASH if p is None else f"{thousands(p.control)} / {thousands(p.treatment)}"
