"""Percentile bootstrap CI of the relative lift, resampling per-user rows within each arm."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from abtest.stats.guards import NAN, check_prob, require


def bootstrap_lift_ci(
    control_cols: Sequence[np.ndarray] | np.ndarray,
    treatment_cols: Sequence[np.ndarray] | np.ndarray,
    *,
    ratio: bool,
    n_boot: int = 1000,
    alpha: float = 0.05,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the relative lift, resampling users within each arm.

    Each arm is a sequence of per-user columns, or an (n, k) array with one row per user;
    columns as for the tests: ``(y,)`` for a mean, ``(num, den)`` for a ratio (extra columns
    are ignored; no CUPED). A cross-check of the delta-method CI, not a replacement: it needs
    the per-user rows rather than aggregates.
    """
    require(isinstance(rng, np.random.Generator), "rng", "a numpy Generator", type(rng).__name__)
    require(isinstance(n_boot, int) and n_boot >= 1, "n_boot", "an integer >= 1", repr(n_boot))
    check_prob(alpha, "alpha")
    need = 2 if ratio else 1
    arms = [
        _stack(control_cols, "control_cols", need),
        _stack(treatment_cols, "treatment_cols", need),
    ]
    c, t = (_boot_metric(x, ratio, n_boot, rng) for x in arms)
    with np.errstate(divide="ignore", invalid="ignore"):
        lifts = t / c - 1
    lifts = lifts[np.isfinite(lifts)]
    if lifts.size == 0:
        return NAN, NAN
    low, high = np.quantile(lifts, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _stack(cols: Sequence[np.ndarray] | np.ndarray, what: str, need: int) -> np.ndarray:
    if isinstance(cols, np.ndarray) and cols.ndim == 2:
        x = cols.astype(float)
    else:
        arrays = [np.asarray(c, dtype=float) for c in cols]
        shapes = [a.shape for a in arrays]
        require(
            all(a.ndim == 1 for a in arrays) and len(set(shapes)) <= 1,
            what,
            "1-D arrays of the same length",
            f"shapes {shapes}",
        )
        x = np.column_stack(arrays) if arrays else np.empty((0, 0))
    require(x.shape[1] >= need, what, f"at least {need} column(s)", x.shape[1])
    return x[:, :need]


def _boot_metric(x: np.ndarray, ratio: bool, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n = x.shape[0]
    if n == 0:
        return np.full(n_boot, NAN)
    out = np.empty(n_boot)
    # Index matrices of about 2M entries keep memory flat for large arms.
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        sums = x[rng.integers(0, n, size=(b, n))].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start : start + b] = sums[:, 0] / sums[:, 1] if ratio else sums[:, 0] / n
    return out
