"""Numbers as the report prints them: percents, p-values, counts, CIs, a mean ± s.e. over
seeds; "—" for unknown. And JSON text that is strict JSON (NaN and infinities as null)."""

from __future__ import annotations

import json
import math
from typing import Any

from abtest.online.results import MetricLift, PerArm
from abtest.zoo_studies.estimates import MeanSe

DASH = "—"
MINUS = "−"  # U+2212, as the tables print a negative difference
# a difference whose 95% Student-t interval over the seeds lies above / below zero
ABOVE, BELOW = "▲", "▼"
CLEAR_RULE = "the 95% t-interval over the seeds (n − 1 df) lies above / below zero"


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


def mean_se(x: MeanSe, signed: bool = False) -> str:
    """A mean over seeds as "0.1234 ± 0.0012" ("+0.0123 ± 0.0031" if `signed`); no "±"
    without an s.e., "—" if unknown."""
    if not x.known:
        return DASH
    mean = f"{x.mean:+.4f}" if signed else f"{x.mean:.4f}"
    return mean.replace("-", MINUS) + (f" ± {x.se:.4f}" if x.se is not None else "")


def clear_mark(d: MeanSe) -> str:
    """ABOVE / BELOW when the difference `d` is clearly away from zero (CLEAR_RULE), else ""."""
    if d.clearly_above_zero():
        return ABOVE
    return BELOW if d.clearly_below_zero() else ""


def difference(d: MeanSe) -> str:
    """A paired difference: "+0.0123 ± 0.0031 ▲" (the mark when clearly away from zero)."""
    mark = clear_mark(d)
    return mean_se(d, signed=True) + (f" {mark}" if mark else "")


def json_safe(obj: Any) -> Any:
    """`obj` with every NaN or infinite float as None and tuples as lists (strict JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def strict_json_text(obj: Any) -> str:
    """`obj` as indented strict JSON: what cannot be a JSON number is null."""
    return json.dumps(json_safe(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"
