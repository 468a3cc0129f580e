"""abtest.stats.estimates: the delta-method variance of a ratio, checked by simulation."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from abtest.stats.estimates import mean_estimate, ratio_estimate
from abtest.stats.moments import Moments
from tests.abtest.stats.generators import ratio_users


def test_delta_method_variance_of_ctr_matches_simulation():
    """Across M simulated experiments the sample variance S² of the CTR estimate satisfies
    (M-1) S² / σ² ~ χ²(M-1) when σ² is the true variance; accept if the delta-method σ²
    (averaged over experiments) lies within the central 99.9% of that distribution."""
    rng = np.random.default_rng(5)
    m_exp, n = 2000, 400
    data = ratio_users(rng, (m_exp, n))[..., :2]
    estimates = [ratio_estimate(Moments.from_array(d)) for d in data]
    ctr = np.array([e.value for e in estimates])
    delta_var = np.mean([e.variance for e in estimates])
    ratio = (m_exp - 1) * ctr.var(ddof=1) / delta_var
    lo, hi = sps.chi2.ppf([0.0005, 0.9995], m_exp - 1)
    assert lo < ratio < hi
    # The naive binomial variance over impressions ignores per-user clustering: far too small.
    naive = np.mean(ctr * (1 - ctr) / data[..., 1].sum(axis=1))
    assert naive < 0.8 * delta_var


def test_mean_of_no_users_is_nan():
    assert math.isnan(mean_estimate(Moments.empty(1)).value)
