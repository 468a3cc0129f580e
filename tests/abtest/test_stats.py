"""abtest.stats: exactness against reference implementations, and calibration by simulation.

Simulation tests use fixed seeds; their tolerances are a few binomial (or chi-square)
standard deviations of the Monte-Carlo error, so they fail only when the method is wrong.
"""

from __future__ import annotations

import functools
import itertools
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as sps
from statsmodels.stats import proportion
from statsmodels.stats.multitest import multipletests

from abtest.stats import (
    Moments,
    adjust_p_values,
    bootstrap_lift_ci,
    mde,
    mean_estimate,
    mean_test,
    msprt_p_values,
    msprt_tau2,
    power_at,
    ratio_estimate,
    ratio_test,
    required_users,
    srm_test,
)
from core.errors import UserError
from tests.conftest import FAST

ALPHA = 0.05


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


# --------------------------------------------------------------------------- Moments


def test_merge_of_shards_equals_moments_of_concatenation():
    rng = np.random.default_rng(1)
    # A large offset makes naive sum-of-squares formulas lose digits; Chan's update does not.
    x = rng.normal(1e4, 3.0, (1000, 4)) + rng.poisson(2.0, (1000, 4))
    cuts = [0, 1, 137, 137, 600, 999, 1000]  # includes an empty and single-row shards
    shards = [Moments.from_array(x[a:b]) for a, b in itertools.pairwise(cuts)]
    merged = functools.reduce(Moments.merge, shards)
    summed = sum(shards[1:], shards[0])
    whole = Moments.from_array(x)
    for m in (merged, summed):
        assert m.n == whole.n == 1000
        np.testing.assert_allclose(m.mean, whole.mean, rtol=1e-12)
        np.testing.assert_allclose(m.comoment, whole.comoment, rtol=1e-9)
    np.testing.assert_allclose(whole.cov(), np.cov(x, rowvar=False), rtol=1e-9)


def test_moments_are_frozen_and_take_selects_columns():
    m = Moments.from_columns(np.arange(5.0), np.arange(5.0) ** 2, np.ones(5))
    with pytest.raises(ValueError):
        m.mean[0] = 1.0
    sub = m.take([2, 0])
    np.testing.assert_allclose(sub.mean, [1.0, 2.0])
    np.testing.assert_allclose(sub.comoment, m.comoment[np.ix_([2, 0], [2, 0])])


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


@pytest.mark.parametrize("method", ["bh", "holm"])
def test_adjust_p_values_match_statsmodels_and_skip_nans(method):
    rng = np.random.default_rng(4)
    p = np.concatenate([rng.uniform(0, 1, 30), rng.uniform(0, 0.01, 10)])
    p[[3, 17, 33]] = np.nan
    rng.shuffle(p)
    ok = ~np.isnan(p)
    ref = multipletests(p[ok], method={"bh": "fdr_bh", "holm": "holm"}[method])[1]
    adjusted = adjust_p_values(p, method)
    assert np.isnan(adjusted[~ok]).all()
    np.testing.assert_allclose(adjusted[ok], ref, rtol=1e-12)
    assert adjust_p_values([np.nan, np.nan], method).tolist() == pytest.approx(
        [np.nan, np.nan], nan_ok=True
    )


# --------------------------------------------------------------------------- calibration


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


# --------------------------------------------------------------------------- SRM


def test_srm_flags_48_52_at_100k_but_not_an_exact_split_or_a_holdout():
    flagged = srm_test({"control": 48_000, "treatment": 52_000}, {"control": 0.5, "treatment": 0.5})
    assert flagged.flagged
    assert flagged.statistic == pytest.approx(160.0)
    fine = srm_test({"control": 50_000, "treatment": 50_000}, {"control": 0.5, "treatment": 0.5})
    assert not fine.flagged
    assert fine.p_value == pytest.approx(1.0)
    # 10% holdout: arms own 45% each, which is still an even split between them.
    holdout = srm_test({"a": 45_000, "b": 45_000}, {"a": 0.45, "b": 0.45})
    assert not holdout.flagged
    assert holdout.expected_share == pytest.approx({"a": 0.5, "b": 0.5})
    uneven = srm_test({"a": 20_000, "b": 60_000}, {"a": 0.2, "b": 0.6})
    assert not uneven.flagged
    assert srm_test({"a": 20_000, "b": 60_000}, {"a": 0.3, "b": 0.6}).flagged


def test_srm_with_no_users_is_nan_not_flagged():
    r = srm_test({"a": 0, "b": 0}, {"a": 0.5, "b": 0.5})
    assert math.isnan(r.p_value)
    assert not r.flagged


# --------------------------------------------------------------------------- sequential


def _daily_looks(rng, sims: int, days: int, per_day: int, effect: float):
    """Cumulative (diff, variance) of per-user means at each daily look, vectorised."""
    looks = []
    for shift in (0.0, effect):
        y = rng.exponential(1.0, (sims, days, per_day)) + shift
        n = per_day * np.arange(1, days + 1)
        s1 = np.cumsum(y.sum(axis=2), axis=1)
        s2 = np.cumsum((y**2).sum(axis=2), axis=1)
        mean = s1 / n
        looks.append((mean, (s2 - n * mean**2) / (n - 1) / n))
    (mc, vc), (mt, vt) = looks
    return mt - mc, vc + vt


def test_msprt_controls_type_one_error_under_daily_peeking():
    rng = np.random.default_rng(10)
    sims, days = 1000, 14
    diffs, variances = _daily_looks(rng, sims, days, 100, effect=0.0)
    naive_p = 2 * sps.norm.sf(np.abs(diffs) / np.sqrt(variances))
    naive_rate = np.mean((naive_p < ALPHA).any(axis=1))
    tau2 = msprt_tau2(float(np.median(variances[:, -1])))
    always = np.array(
        [msprt_p_values(d, v, tau2=tau2) for d, v in zip(diffs, variances, strict=True)]
    )
    assert (np.diff(always, axis=1) <= 0).all()  # always-valid p-values never go back up
    always_rate = np.mean(always[:, -1] < ALPHA)
    assert always_rate <= ALPHA + binomial_tol(ALPHA, sims)
    assert naive_rate > ALPHA + 2 * binomial_tol(ALPHA, sims)  # peeking inflates ~4x here
    # The fixed-horizon test at the final look alone is still calibrated.
    assert abs(np.mean(naive_p[:, -1] < ALPHA) - ALPHA) < binomial_tol(ALPHA, sims)


def test_msprt_detects_a_true_effect():
    rng = np.random.default_rng(11)
    diffs, variances = _daily_looks(rng, 200, 14, 100, effect=0.2)
    tau2 = msprt_tau2(float(np.median(variances[:, -1])))
    final = [msprt_p_values(d, v, tau2=tau2)[-1] for d, v in zip(diffs, variances, strict=True)]
    assert np.mean(np.array(final) < ALPHA) > 0.9


def test_msprt_formula_and_missing_looks():
    d, v, tau2 = np.array([0.0, 0.3, 0.1]), np.array([np.nan, 0.01, 0.005]), 0.04
    p = msprt_p_values(d, v, tau2=tau2)
    lam = math.sqrt(0.01 / 0.05) * math.exp(tau2 * 0.09 / (2 * 0.01 * 0.05))
    assert p[0] == 1.0
    assert p[1] == pytest.approx(min(1.0, 1 / lam))
    assert p[2] <= p[1]
    assert msprt_tau2(0.01, expected_effect=0.2) == pytest.approx(0.04)


# --------------------------------------------------------------------------- bootstrap, power


@pytest.mark.parametrize("ratio", [False, True])
def test_bootstrap_ci_agrees_with_delta_method_on_a_large_sample(ratio):
    rng = np.random.default_rng(12)
    n = 5000
    if ratio:
        c, t = ratio_users(rng, n)[:, :2], ratio_users(rng, n, lift=0.05)[:, :2]
        r = ratio_test(Moments.from_array(c), Moments.from_array(t))
    else:
        c, t = mean_users(rng, n)[:, :1], mean_users(rng, n, effect=0.1)[:, :1]
        r = mean_test(Moments.from_array(c), Moments.from_array(t))
    # Rows are users; a list of per-user columns is accepted too.
    low, high = bootstrap_lift_ci(c, list(t.T), ratio=ratio, n_boot=1000, rng=rng)
    width = r.ci_high - r.ci_low
    assert abs(low - r.ci_low) < 0.1 * width
    assert abs(high - r.ci_high) < 0.1 * width


def test_mde_and_power_are_consistent():
    se, control = 0.012, 0.8
    effect = mde(control, se, alpha=0.05, power=0.8)
    assert effect == pytest.approx((1.959964 + 0.841621) * se / control, rel=1e-6)
    # The wrong-sign rejection tail (Φ(-4.76) ≈ 1e-6) is the only difference.
    assert power_at(effect, control, se, alpha=0.05) == pytest.approx(0.8, abs=1e-5)
    assert power_at(0.0, control, se, alpha=0.05) == pytest.approx(0.05)
    assert power_at(-effect, control, se) == pytest.approx(power_at(effect, control, se))
    sd = 1.5
    n = required_users(effect, control, sd)
    assert mde(control, sd * math.sqrt(2 / n)) <= effect
    assert mde(control, sd * math.sqrt(2 / (n - 1))) > effect


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
    low, high = bootstrap_lift_ci(
        [np.zeros(0)], [np.ones(5)], ratio=False, n_boot=10, rng=np.random.default_rng(0)
    )
    assert math.isnan(low) and math.isnan(high)
    assert math.isnan(mean_estimate(Moments.empty(1)).value)
    assert math.isnan(mde(0.0, 0.1))


def _moments(k: int, n: int = 5) -> Moments:
    return Moments.from_array(np.arange(n * k, dtype=float).reshape(n, k) ** 1.5)


BAD_INPUTS = [
    (lambda: Moments(-1, [0.0], [[0.0]]), r"^n: must be an integer >= 0, got -1"),
    (lambda: Moments(2, [0.0, 0.0], np.zeros((3, 3))), r"^comoment: must be a 2 x 2 matrix"),
    (lambda: Moments.from_columns(np.ones(3), np.ones(4)), r"^columns: must be 1-D arrays"),
    (lambda: _moments(2).merge(_moments(3)), r"^moments: must be of 2 columns to merge, got 3"),
    (lambda: mean_test(_moments(1), _moments(2), cuped=True), r"^control columns: must be >= 2"),
    (lambda: ratio_test(_moments(2), _moments(1)), r"^treatment columns: must be >= 2"),
    (lambda: ratio_test(_moments(4), _moments(3), cuped=True), r"^treatment columns: must be >= 4"),
    (lambda: mean_test(_moments(1), _moments(1), alpha=1.5), r"^alpha: must be a number in \(0"),
    (lambda: adjust_p_values([0.1], "bonferroni"), r"^method: must be 'bh' or 'holm'"),
    (lambda: adjust_p_values([0.1, 1.2]), r"^p: must be p-values in \[0, 1\] or NaN, got \[1.2"),
    (lambda: srm_test({"a": 1}, {"a": 0.5, "b": 0.5}), r"^users: must be counts for the same"),
    (lambda: srm_test({"a": -1, "b": 2}, {"a": 1, "b": 1}), r"^users\['a'\]: must be an integer"),
    (lambda: srm_test({"a": 1, "b": 2}, {"a": 1, "b": 0}), r"^expected\['b'\]: must be a number"),
    (lambda: msprt_p_values([0.1], [0.1], tau2=0.0), r"^tau2: must be a number > 0, got 0.0"),
    (lambda: msprt_p_values([0.1, 0.2], [0.1], tau2=1.0), r"^diffs and variances: must be"),
    (lambda: msprt_tau2(-1.0), r"^final_variance: must be a number > 0"),
    (
        lambda: bootstrap_lift_ci([np.ones(3)], [np.ones(3)], ratio=False, rng=0),
        r"^rng: must be a numpy Generator, got int",
    ),
    (
        lambda: bootstrap_lift_ci(
            [np.ones(3)], [np.ones(3)], ratio=True, rng=np.random.default_rng(0)
        ),
        r"^control_cols: must be at least 2 column",
    ),
    (lambda: mde(1.0, 0.1, power=1.0), r"^power: must be a number in \(0, 1\), got 1.0"),
    (lambda: mde(1.0, -0.1), r"^diff_se: must be >= 0"),
    (lambda: required_users(0.0, 1.0, 1.0), r"^effect_rel \* control_mean: must be non-zero"),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUTS)
def test_bad_inputs_raise_user_error_naming_the_problem(call, message):
    with pytest.raises(UserError, match=message):
        call()


# ---------------------------------------------------------------- properties (hypothesis)
# the statistics on degenerate data raise nothing but UserError, emit no warnings, return
# p-values in [0, 1] (or NaN) and CIs with low <= high


FLOATS = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0, 1e-300, 1e150, 1e300, -1e300]),
    st.floats(-1e6, 1e6, allow_nan=False),
)


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


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["control", "treatment", "holdout"]),
        st.one_of(st.integers(0, 3), st.integers(0, 10**15)),
        min_size=2,
    ),
    st.lists(st.floats(1e-9, 1.0), min_size=3, max_size=3),
)
@pytest.mark.usefixtures("no_warnings")
def test_srm_test_on_degenerate_counts(users, shares):
    expected = dict(zip(["control", "treatment", "holdout"], shares, strict=True))
    expected = {a: expected[a] for a in users}
    res = srm_test(users, expected)
    assert (0.0 <= res.p_value <= 1.0) or math.isnan(res.p_value)
    assert isinstance(res.flagged, bool)
    assert not (res.flagged and math.isnan(res.p_value))


@FAST
@given(
    st.dictionaries(st.sampled_from(["control", "treatment"]), st.integers(0, 5), min_size=2),
    st.sampled_from([0.0, -0.5, float("nan"), float("inf")]),
)
@pytest.mark.usefixtures("no_warnings")
def test_srm_test_rejects_bad_shares_with_user_error(users, share):
    with pytest.raises(UserError, match=r"expected\["):
        srm_test(users, {"control": share, "treatment": 0.5})


P_VALUES = st.one_of(st.floats(0.0, 1.0), st.just(float("nan")), st.sampled_from([0.0, 1.0]))


@pytest.mark.usefixtures("no_warnings")
@FAST
@given(st.lists(P_VALUES, max_size=20), st.sampled_from(["bh", "holm"]))
def test_adjusted_p_values_stay_in_range(p, method):
    out = adjust_p_values(p, method)
    raw = np.array(p, dtype=float)
    assert out.shape == raw.shape
    assert np.array_equal(np.isnan(out), np.isnan(raw))
    ok = ~np.isnan(out)
    assert ((out[ok] >= 0) & (out[ok] <= 1)).all()
    assert (out[ok] >= raw[ok] - 1e-12).all()


@pytest.mark.usefixtures("no_warnings")
@FAST
@given(st.lists(st.one_of(P_VALUES, st.sampled_from([-0.1, 1.1, float("inf")])), min_size=1))
def test_adjust_p_values_rejects_bad_input_with_user_error(p):
    if all(math.isnan(x) or 0 <= x <= 1 for x in p):
        adjust_p_values(p)
        return
    with pytest.raises(UserError, match=r"^p: must be p-values in \[0, 1\]"):
        adjust_p_values(p)


@FAST
@given(
    st.lists(
        st.tuples(
            st.one_of(FLOATS, st.just(float("nan"))),
            st.one_of(FLOATS, st.sampled_from([0.0, -1.0, float("nan"), float("inf")])),
        ),
        max_size=10,
    ),
    st.one_of(st.sampled_from([1e-300, 1e-12, 1.0, 1e300]), st.floats(1e-6, 1e6)),
)
@pytest.mark.usefixtures("no_warnings")
def test_msprt_p_values_are_always_valid_p_values(looks, tau2):
    d = np.array([x[0] for x in looks], dtype=float)
    v = np.array([x[1] for x in looks], dtype=float)
    p = msprt_p_values(d, v, tau2=tau2)
    assert p.shape == d.shape
    assert ((p >= 0) & (p <= 1)).all()  # never NaN: a look without data keeps the last p
    assert (np.diff(p) <= 0).all()


@pytest.mark.usefixtures("no_warnings")
@FAST
@given(st.sampled_from([0.0, -1.0, float("nan"), float("inf"), "1", None]))
def test_msprt_rejects_bad_tau2_with_user_error(tau2):
    with pytest.raises(UserError, match=r"^tau2: must be a number > 0"):
        msprt_p_values([0.1], [1.0], tau2=tau2)
