"""Per-arm point estimates and their delta-method variances, from :class:`Moments`.

:func:`mean_estimate` and :func:`ratio_estimate` give an :class:`Estimate`;
:func:`ratio_gradient` and :func:`quad_form` are the linearisation the two-arm tests build
on (an estimate is a function of the column means; its variance is g' Σ g / n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from abtest.stats.guards import NAN, safe_div, safe_sqrt
from abtest.stats.moments import Moments


@dataclass(frozen=True)
class Estimate:
    """A per-arm point estimate and the variance of that estimate (se**2)."""

    value: float
    variance: float
    n: int

    @property
    def se(self) -> float:
        return safe_sqrt(self.variance)


def mean_estimate(m: Moments, column: int = 0) -> Estimate:
    """Mean of one column per user and the variance of that mean, s² / n."""
    one = m.take([column])
    if one.n == 0:
        return Estimate(NAN, NAN, 0)
    return Estimate(float(one.mean[0]), safe_div(one.cov()[0, 0], one.n), one.n)


def ratio_estimate(m: Moments, num: int = 0, den: int = 1) -> Estimate:
    """sum(num) / sum(den) and its delta-method variance (users are the independent units)."""
    pair = m.take([num, den])
    value, grad = ratio_gradient(pair, 0, 1)
    return Estimate(value, quad_form(grad, pair.cov(), pair.n), pair.n)


def ratio_gradient(m: Moments, num: int, den: int) -> tuple[float, np.ndarray]:
    """Ratio of means and its gradient with respect to all k column means."""
    grad = np.zeros(m.k)
    if m.n == 0:
        return NAN, grad + NAN
    mu_num, mu_den = float(m.mean[num]), float(m.mean[den])
    value = safe_div(mu_num, mu_den)
    grad[num] = safe_div(1.0, mu_den)
    grad[den] = -safe_div(value, mu_den)
    return value, grad


def quad_form(a: np.ndarray, cov: np.ndarray, n: int, b: np.ndarray | None = None) -> float:
    """a' cov b / n: the (co)variance of two linearised estimates."""
    b = a if b is None else b
    with np.errstate(invalid="ignore", over="ignore"):
        total = sum(a[i] * cov[i, j] * b[j] for i in range(a.size) for j in range(b.size))
        return safe_div(float(total), n)
