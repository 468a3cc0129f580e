"""Per-user data generators and hypothesis strategies shared by the statistics tests.

Simulation tests use fixed seeds; their tolerances are a few binomial (or chi-square)
standard deviations of the Monte-Carlo error (:func:`binomial_tol`), so they fail only when
the method is wrong.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from abtest.stats.moments import Moments

ALPHA = 0.05

# finite floats including zero, tiny and huge values (degenerate-data property tests)
FLOATS = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0, 1e-300, 1e150, 1e300, -1e300]),
    st.floats(-1e6, 1e6, allow_nan=False),
)


def binomial_tol(p: float, n: int, sds: float = 3.0) -> float:
    return sds * math.sqrt(p * (1 - p) / n)


def ratio_users(rng, shape, *, lift: float = 0.0) -> np.ndarray:
    """Per-user (clicks, impressions, pre_clicks, pre_impressions), stacked on the last axis.

    Users differ in activity (impressions) and in click propensity; the treatment multiplies
    every user's CTR by (1 + lift), so the true relative lift of sum(clicks)/sum(imps) is
    exactly `lift` (activity is independent of propensity). The pre-period shares both, which
    is what makes it a useful CUPED covariate; some users have no pre-period impressions.
    """
    activity = rng.gamma(2.0, 10.0, shape)
    ctr = rng.beta(1.0, 14.0, shape)
    imps = 1 + rng.poisson(activity)
    clicks = rng.binomial(imps, ctr * (1 + lift))
    pre_imps = rng.poisson(activity)
    pre_clicks = rng.binomial(pre_imps, ctr)
    return np.stack([clicks, imps, pre_clicks, pre_imps], axis=-1).astype(float)


def mean_users(rng, shape, *, effect: float = 0.0, rho: float = 0.0) -> np.ndarray:
    """Per-user (y, x_pre): skewed y with mean 2 + effect, corr(y, x) = rho."""
    x = rng.gamma(4.0, 0.5, shape)  # mean 2, sd 1
    noise = rng.gamma(4.0, 0.5, shape) - 2.0
    y = 2.0 + effect + rho * (x - 2.0) + math.sqrt(1 - rho**2) * noise
    return np.stack([y, x], axis=-1)


def moments_of(k: int, n: int = 5) -> Moments:
    """Moments of n users and k columns of distinct values (for argument checks)."""
    return Moments.from_array(np.arange(n * k, dtype=float).reshape(n, k) ** 1.5)
