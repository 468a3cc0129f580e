"""abtest.stats.lift: exactness against scipy/statsmodels, calibration by simulation (CI
coverage, A/A false positives, CUPED), degenerate data and argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as sps
from statsmodels.stats import proportion

from abtest.stats.lift import mean_test, ratio_test
from abtest.stats.moments import Moments
from core.errors import UserError
from tests.abtest.stats.generators import (
    ALPHA,
    FLOATS,
    binomial_tol,
    mean_users,
    moments_of,
    ratio_users,
)
from tests.conftest import FAST

# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize(("n_c", "n_t", "seed"), [(50, 80, 0), (1000, 1000, 1), (3, 7, 2)])
def test_mean_test_equals_scipy_welch(n_c, n_t, seed):
    rng = np.random.default_rng(seed)
    c = rng.exponential(1.0, n_c)
    t = rng.exponential(1.3, n_t) + 0.1
    r = mean_test(Moments.from_columns(c), Moments.from_columns(t))
    ref = sps.ttest_ind(t, c, equal_var=False)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-10)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.df == pytest.approx(ref.df, rel=1e-10)
    ci = ref.confidence_interval(1 - ALPHA)
    assert (r.abs_ci_low, r.abs_ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9)
    assert r.lift == pytest.approx(t.mean() / c.mean() - 1)


def test_ratio_test_with_one_impression_per_user_is_the_unpooled_two_proportion_z():
    """With den = 1 for everyone the delta-method variance is the sample variance of a
    Bernoulli, n p(1-p)/(n-1), over n: the unpooled (Wald) two-proportion variance with
    n-1 for n. So z equals statsmodels' Wald z times sqrt((n-1)/n) for equal arms.
    (`proportions_ztest` pools p under H0 and is a different, slightly smaller, variance.)"""
    rng = np.random.default_rng(3)
    n = 4000
    c = rng.binomial(1, 0.10, n).astype(float)
    t = rng.binomial(1, 0.11, n).astype(float)
    ones = np.ones(n)
    r = ratio_test(Moments.from_columns(c, ones), Moments.from_columns(t, ones))
    pc, pt = c.mean(), t.mean()
    closed_se = math.sqrt(pc * (1 - pc) / (n - 1) + pt * (1 - pt) / (n - 1))
    assert r.diff == pytest.approx(pt - pc, rel=1e-12)
    assert r.diff_se == pytest.approx(closed_se, rel=1e-10)
    wald = proportion.test_proportions_2indep(t.sum(), n, c.sum(), n, method="wald", compare="diff")
    assert r.statistic == pytest.approx(wald.statistic * math.sqrt((n - 1) / n), rel=1e-10)
    assert r.p_value == pytest.approx(2 * sps.norm.sf(abs(r.statistic)), rel=1e-12)
    assert math.isinf(r.df)


# --------------------------------------------------------------------------- calibration


def _simulate(kind: str, rng, sims: int, n: int, *, effect: float, rho: float = 0.7):
    """Run `sims` A/B tests; returns (plain results, CUPED results)."""
    if kind == "mean":
        test = mean_test
        c = mean_users(rng, (sims, n), rho=rho)
        t = mean_users(rng, (sims, n), effect=effect, rho=rho)
    else:
        test = ratio_test
        c = ratio_users(rng, (sims, n))
        t = ratio_users(rng, (sims, n), lift=effect)
    plain, cuped = [], []
    for dc, dt in zip(c, t, strict=True):
        mc, mt = Moments.from_array(dc), Moments.from_array(dt)
        plain.append(test(mc, mt))
        cuped.append(test(mc, mt, cuped=True))
    return plain, cuped


# True relative lifts: mean 2 -> 2.2 is +10%; CTR x 1.05 is +5%.
CASES = {"mean": (0.2, 0.10), "ratio": (0.05, 0.05)}


@pytest.mark.parametrize("kind", ["mean", "ratio"])
def test_lift_ci_coverage_and_cuped_unbiased_with_lower_variance(kind):
    effect, true_lift = CASES[kind]
    rng = np.random.default_rng(6)
    sims = 400
    plain, cuped = _simulate(kind, rng, sims, 600, effect=effect)
    for results in (plain, cuped):
        covered = np.mean([r.ci_low <= true_lift <= r.ci_high for r in results])
        assert abs(covered - (1 - ALPHA)) < binomial_tol(1 - ALPHA, sims)
    d_plain = np.array([r.diff for r in plain])
    d_cuped = np.array([r.diff for r in cuped])
    true_diff = effect if kind == "mean" else effect / 15  # E[Beta(1, 14)] = 1/15
    assert abs(d_cuped.mean() - true_diff) < 4 * d_cuped.std(ddof=1) / math.sqrt(sims)
    # Empirical variance ratio of the two estimators across experiments, and the reported one.
    se_ratio = np.mean([c.diff_se**2 / p.diff_se**2 for p, c in zip(plain, cuped, strict=True)])
    emp_ratio = d_cuped.var(ddof=1) / d_plain.var(ddof=1)
    assert emp_ratio < 0.8
    assert emp_ratio == pytest.approx(se_ratio, rel=4 * math.sqrt(2 / (sims - 1)))


@pytest.mark.parametrize("kind", ["mean", "ratio"])
def test_aa_false_positive_rate_is_alpha(kind):
    rng = np.random.default_rng(7)
    sims = 1000
    plain, cuped = _simulate(kind, rng, sims, 300, effect=0.0)
    for results in (plain, cuped):
        rate = np.mean([r.p_value < ALPHA for r in results])
        assert abs(rate - ALPHA) < binomial_tol(ALPHA, sims)


def test_cuped_variance_reduction_is_one_minus_rho_squared():
    rng = np.random.default_rng(8)
    n, rho = 20_000, 0.8
    c, t = mean_users(rng, n, rho=rho), mean_users(rng, n, effect=0.1, rho=rho)
    mc, mt = Moments.from_array(c), Moments.from_array(t)
    reduction = mean_test(mc, mt, cuped=True).diff_se ** 2 / mean_test(mc, mt).diff_se ** 2
    assert reduction == pytest.approx(1 - rho**2, rel=0.05)

    # Ratios: rho is the correlation of the linearised metric with the linearised covariate.
    c, t = ratio_users(rng, n), ratio_users(rng, n, lift=0.05)
    lin_rho = []
    for d in (c, t):
        r, r_pre = d[:, 0].sum() / d[:, 1].sum(), d[:, 2].sum() / d[:, 3].sum()
        lin_rho.append(np.corrcoef(d[:, 0] - r * d[:, 1], d[:, 2] - r_pre * d[:, 3])[0, 1])
    rho2 = np.mean(lin_rho) ** 2
    assert rho2 > 0.2  # the scenario must give CUPED something to do
    mc, mt = Moments.from_array(c), Moments.from_array(t)
    reduction = ratio_test(mc, mt, cuped=True).diff_se ** 2 / ratio_test(mc, mt).diff_se ** 2
    assert reduction == pytest.approx(1 - rho2, rel=0.05)


def test_cuped_without_pre_period_data_is_the_plain_test():
    rng = np.random.default_rng(9)
    c, t = ratio_users(rng, 500), ratio_users(rng, 500)
    c[:, 2:] = 0.0
    t[:, 2:] = 0.0
    mc, mt = Moments.from_array(c), Moments.from_array(t)
    adj, plain = ratio_test(mc, mt, cuped=True), ratio_test(mc, mt)
    assert adj.theta == 0.0
    assert (adj.diff, adj.diff_se, adj.p_value) == pytest.approx(
        (plain.diff, plain.diff_se, plain.p_value), rel=1e-12
    )


# --------------------------------------------------------------------------- edge cases


def test_degenerate_inputs_give_nan_not_exceptions():
    ones = np.ones(10)
    some = Moments.from_columns(np.arange(10.0), ones, ones, ones)
    for test in (mean_test, ratio_test):
        for cuped in (False, True):
            empty = test(Moments.empty(4), some, cuped=cuped)
            assert empty.n_control == 0
            assert math.isnan(empty.p_value) and math.isnan(empty.lift)
            single = test(Moments.from_columns(*([np.ones(1)] * 4)), some, cuped=cuped)
            assert math.isnan(single.p_value) and math.isnan(single.ci_low)
    flat = Moments.from_columns(np.full(20, 3.0), np.ones(20))
    r = mean_test(flat, flat, cuped=True)
    assert math.isnan(r.p_value) and math.isnan(r.statistic)
    assert r.diff == 0.0 and r.lift == 0.0
    zero = Moments.from_columns(np.zeros(20), np.ones(20))
    r = mean_test(zero, Moments.from_columns(np.arange(20.0), np.ones(20)))
    assert math.isnan(r.lift) and math.isnan(r.ci_low)
    assert 0 <= r.p_value < 1
    no_imps = Moments.from_columns(np.zeros(5), np.zeros(5))
    r = ratio_test(no_imps, some)
    assert math.isnan(r.control) and math.isnan(r.p_value)
    assert not r.significant


BAD_INPUTS = [
    (
        lambda: mean_test(moments_of(1), moments_of(2), cuped=True),
        r"^control columns: must be >= 2",
    ),
    (lambda: ratio_test(moments_of(2), moments_of(1)), r"^treatment columns: must be >= 2"),
    (
        lambda: ratio_test(moments_of(4), moments_of(3), cuped=True),
        r"^treatment columns: must be >= 4",
    ),
    (
        lambda: mean_test(moments_of(1), moments_of(1), alpha=1.5),
        r"^alpha: must be a number in \(0",
    ),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUTS)
def test_bad_inputs_raise_user_error_naming_the_problem(call, message):
    with pytest.raises(UserError, match=message):
        call()


# ---------------------------------------------------------------- properties (hypothesis)
# on degenerate data the tests raise nothing but UserError, emit no warnings, return
# p-values in [0, 1] (or NaN) and CIs with low <= high


@st.composite
def arm(draw, k: int, ratio: bool) -> np.ndarray:
    """Per-user rows of one arm: 0, 1 or a few users; all-equal, zero or huge values."""
    n = draw(st.sampled_from([0, 1, 1, 2, 3, 7]))
    mode = draw(st.sampled_from(["equal", "zeros", "random"]))
    if mode == "equal":
        x = np.full((n, k), draw(FLOATS))
    elif mode == "zeros":
        x = np.zeros((n, k))
    else:
        x = draw(hnp.arrays(np.float64, (n, k), elements=FLOATS))
    if ratio:  # (clicks, impressions, pre clicks, pre impressions): counts, clicks <= shown
        x = np.abs(x)
        for num, den in ((0, 1), (2, 3))[: k // 2]:
            x[:, num] = np.minimum(x[:, num], x[:, den])
        if draw(st.booleans()):
            x[:, 0::2] = 0.0  # zero clicks
    return x


def _check_lift(res, n_c: int, n_t: int) -> None:
    assert (0.0 <= res.p_value <= 1.0) or math.isnan(res.p_value), res
    for lo, hi in ((res.ci_low, res.ci_high), (res.abs_ci_low, res.abs_ci_high)):
        if math.isfinite(lo) and math.isfinite(hi):
            assert lo <= hi, res
    assert (res.n_control, res.n_treatment) == (n_c, n_t)
    assert isinstance(res.significant, bool)


@pytest.mark.usefixtures("no_warnings")
@FAST
@given(st.booleans(), st.data())
def test_mean_test_on_degenerate_data(cuped, data):
    k = 2 if cuped else 1
    c, t = data.draw(arm(k, False)), data.draw(arm(k, False))
    res = mean_test(Moments.from_array(c), Moments.from_array(t), cuped=cuped)
    _check_lift(res, len(c), len(t))


@pytest.mark.usefixtures("no_warnings")
@FAST
@given(st.booleans(), st.data())
def test_ratio_test_on_degenerate_data(cuped, data):
    k = 4 if cuped else 2
    c, t = data.draw(arm(k, True)), data.draw(arm(k, True))
    res = ratio_test(Moments.from_array(c), Moments.from_array(t), cuped=cuped)
    _check_lift(res, len(c), len(t))
