"""Sequential testing: always-valid p-values for repeated looks (mixture SPRT).

:func:`msprt_p_values` turns the cumulative difference and its variance at each look into
p-values that stay valid however often one peeks (Johari et al. 2017); :func:`msprt_tau2`
picks the mixing variance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as sps

from abtest.stats.guards import check_prob, require


def msprt_p_values(
    diffs: Sequence[float] | np.ndarray, variances: Sequence[float] | np.ndarray, *, tau2: float
) -> np.ndarray:
    """Always-valid p-values for looks k = 1..K (mixture SPRT, Johari et al. 2017).

    At look k, with estimated difference d_k and its variance V_k, the mixture likelihood
    ratio against a N(0, tau2) prior on the effect is
    Λ_k = sqrt(V_k / (V_k + τ²)) · exp(τ² d_k² / (2 V_k (V_k + τ²))), and
    p_k = min(p_{k-1}, 1 / Λ_k) with p_0 = 1. Rejecting when p_k < alpha at any look keeps
    the type-I error at most alpha however often one peeks. A look whose variance is not a
    positive number (no data yet) leaves the p-value unchanged.
    """
    d = np.asarray(diffs, dtype=float)
    v = np.asarray(variances, dtype=float)
    require(
        d.ndim == 1 and d.shape == v.shape,
        "diffs and variances",
        "1-D sequences of the same length",
        f"shapes {d.shape} and {v.shape}",
    )
    require(
        isinstance(tau2, int | float | np.floating) and math.isfinite(tau2) and tau2 > 0,
        "tau2",
        "a number > 0",
        repr(tau2),
    )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_lr = 0.5 * np.log(v / (v + tau2)) + tau2 * d**2 / (2 * v * (v + tau2))
        inv_lr = np.exp(-log_lr)
    usable = (v > 0) & np.isfinite(inv_lr)
    return np.minimum.accumulate(np.where(usable, np.minimum(inv_lr, 1.0), 1.0))


def msprt_tau2(
    final_variance: float,
    *,
    expected_effect: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """A default mixing variance τ² for :func:`msprt_p_values`.

    With an ``expected_effect`` (absolute difference) τ² = expected_effect², i.e. the prior's
    spread is the effect one hopes to see. Otherwise the effect is taken to be the MDE of
    the planned final look, d* = (z_{1-α/2} + z_power)·sqrt(V_N), and τ² = d*² - V_N, the
    value that maximises Λ_N at d = d* (so the test is tuned to be most sensitive where the
    fixed-horizon design has its power).
    """
    if expected_effect is not None:
        require(
            math.isfinite(expected_effect) and expected_effect != 0,
            "expected_effect",
            "a finite non-zero number",
            repr(expected_effect),
        )
        return float(expected_effect) ** 2
    require(
        isinstance(final_variance, int | float | np.floating)
        and math.isfinite(final_variance)
        and final_variance > 0,
        "final_variance",
        "a number > 0",
        repr(final_variance),
    )
    check_prob(alpha, "alpha")
    check_prob(power, "power")
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return float((z**2 - 1) * final_variance)
