"""abtest.stats.sensitivity: re-randomised power is the analysis's own test on each draw;
users needed agree with the closed form, reach the target power by independent simulation,
shrink by 1 - rho² with CUPED; no effect, determinism, argument checks."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from scipy import stats as sps

from abtest.stats.lift import mean_test, ratio_test
from abtest.stats.moments import Moments
from abtest.stats.power import required_users
from abtest.stats.preference import preference_share
from abtest.stats.sensitivity import (
    PotentialOutcomes,
    UsersNeeded,
    _draws,
    ab_power,
    ab_users_needed,
    analytic_interleaving_users,
    analytic_users,
    interleaving_power,
    interleaving_users_needed,
    users_needed,
)
from core.errors import UserError
from tests.abtest.stats.generators import ALPHA, binomial_tol, mean_users

Z = sps.norm.ppf(1 - ALPHA / 2) + sps.norm.ppf(0.8)
REPS = 400

# A per-user mean metric: y0 has sd 1 and corr(y0, x) = RHO; the treatment adds EFFECT to
# every user, so sd(y1) = 1 too and the closed form is n = 2 z² (1 + 1) / EFFECT² (total).
POP, EFFECT, RHO = 20_000, 0.125, 0.8
CLOSED_FORM = 4 * Z**2 / EFFECT**2  # about 2010 users


def mean_population(rng, n: int = POP, *, effect: float = EFFECT) -> PotentialOutcomes:
    d = mean_users(rng, n, rho=RHO)
    return PotentialOutcomes.mean_metric(d[:, 0], d[:, 0] + effect, x=d[:, 1])


def ratio_population(rng, n: int, *, lift: float) -> PotentialOutcomes:
    """CTR potential outcomes: the treatment multiplies every user's click propensity by
    (1 + lift); the pre-period shares the users' activity and propensity."""
    activity = rng.gamma(2.0, 10.0, n)
    ctr = rng.beta(1.0, 14.0, n)
    imps = 1 + rng.poisson(activity)
    pre_imps = rng.poisson(activity)
    return PotentialOutcomes.ratio_metric(
        rng.binomial(imps, ctr),
        imps,
        rng.binomial(imps, ctr * (1 + lift)),
        imps,
        x=rng.binomial(pre_imps, ctr),
        x_den=pre_imps,
    )


def interleaved_credits(rng, n: int, *, boost: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-user clicks credited to (treatment, control); many users have none."""
    activity = rng.gamma(0.8, 1.5, n)
    return rng.poisson(activity * boost).astype(float), rng.poisson(activity).astype(float)


@pytest.fixture(scope="module")
def mean_needed() -> dict[bool, UsersNeeded]:
    """Users needed for the mean metric without and with CUPED (one search each)."""
    outcomes = mean_population(np.random.default_rng(20))
    return {
        cuped: ab_users_needed(
            outcomes, cuped=cuped, lo=400, hi=8000, reps=REPS, rng=np.random.default_rng(21)
        )
        for cuped in (False, True)
    }


# ------------------------------------------------------- the same test as the analysis


def reference_power(outcomes, n, *, cuped, reps, seed) -> float:
    """ab_power with plain loops over the same draws: per experiment, Moments.from_array of
    each arm's columns and the analysis's test, CUPED only when the covariate varies."""
    cols = [outcomes.columns(a, cuped=cuped) for a in (0, 1)]
    test = ratio_test if outcomes.ratio else mean_test
    sign = np.sign(outcomes.true_diff)
    rng = np.random.default_rng(seed)
    draws = _draws(
        rng, outcomes.population, n, reps, replace=n > outcomes.population, width=cols[0].shape[1]
    )
    hits = 0
    for idx in draws:
        for row in idx:
            c, t = cols[0][row[: n // 2]], cols[1][row[n // 2 :]]
            covariate = np.concatenate([c[:, -1], t[:, -1]])
            adj = cuped and bool(np.ptp(covariate) > 0)
            res = test(Moments.from_array(c), Moments.from_array(t), cuped=adj, alpha=ALPHA)
            hits += res.p_value < ALPHA and (sign == 0 or np.sign(res.diff) == sign)
    return hits / reps


@pytest.mark.parametrize("ratio", [False, True])
@pytest.mark.parametrize(("n", "cuped"), [(60, False), (61, True), (400, True), (9, True)])
def test_ab_power_runs_the_analysis_test_on_each_draw(ratio, n, cuped):
    """n = 400 > N = 300 draws with replacement; n = 9 with a covariate that is 0 for all
    but three users often draws a constant covariate, where CUPED falls back to plain."""
    rng = np.random.default_rng(10)
    effect = 0.3 if n < 100 else 0.1  # some power, not all
    outcomes = (
        ratio_population(rng, 300, lift=effect)
        if ratio
        else mean_population(rng, 300, effect=effect)
    )
    if n == 9:
        x = np.zeros(300)
        x[:3] = [1.0, 2.0, 3.0]
        o = outcomes
        outcomes = (
            PotentialOutcomes.ratio_metric(o.y0, o.n0, o.y1, o.n1, x=x, x_den=x)
            if ratio
            else PotentialOutcomes.mean_metric(o.y0, o.y1, x=x)
        )
    got = ab_power(outcomes, n, cuped=cuped, reps=60, rng=np.random.default_rng(11))
    assert got == reference_power(outcomes, n, cuped=cuped, reps=60, seed=11)
    assert 0 < got < 1  # the case tells something


def test_interleaving_power_runs_preference_share_on_each_resample():
    rng = np.random.default_rng(12)
    t, c = interleaved_credits(rng, 500, boost=1.2)
    n, reps = 300, 50
    got = interleaving_power(t, c, n, sign=1, reps=reps, rng=np.random.default_rng(13))
    hits = 0
    for idx in _draws(np.random.default_rng(13), t.size, n, reps, replace=True, width=2):
        for row in idx:
            r = preference_share(t[row], c[row])
            hits += r.p_value < ALPHA and r.share > 0.5
    assert got == hits / reps
    assert 0 < got < 1


# ------------------------------------------------------------------ closed forms


def test_analytic_users_is_the_closed_form_and_twice_required_users_per_arm():
    rng = np.random.default_rng(14)
    outcomes = mean_population(rng)
    n = analytic_users(outcomes)
    sd = float(np.std(outcomes.y0, ddof=1))  # = sd(y1): the effect is additive
    assert n == pytest.approx(4 * Z**2 * sd**2 / EFFECT**2, rel=1e-9)
    assert n == pytest.approx(CLOSED_FORM, rel=0.05)  # the population's sd is about 1
    per_arm = required_users(outcomes.true_lift, outcomes.control_value, sd)
    assert math.ceil(n / 2) == per_arm
    # CUPED removes rho² of the variance
    ratio = analytic_users(outcomes, cuped=True) / n
    assert ratio == pytest.approx(1 - RHO**2, rel=0.05)

    # a ratio metric: sd is that of the linearisation, as required_users documents
    o = ratio_population(rng, POP, lift=0.1)
    n = analytic_users(o)
    lin = [(y - y.sum() / d.sum() * d) / d.mean() for y, d in ((o.y0, o.n0), (o.y1, o.n1))]
    sd = math.sqrt((np.var(lin[0], ddof=1) + np.var(lin[1], ddof=1)) / 2)
    assert math.ceil(n / 2) == required_users(o.true_lift, o.control_value, sd)


def test_users_needed_agrees_with_the_closed_form(mean_needed):
    plain, cuped = mean_needed[False], mean_needed[True]
    assert plain.status == cuped.status == "found"
    assert plain.n == pytest.approx(CLOSED_FORM, rel=0.2)
    assert plain.n == pytest.approx(plain.analytic, rel=0.2)
    assert cuped.n == pytest.approx(cuped.analytic, rel=0.2)
    # the search stops once two consecutive grid points reach the target
    assert min(plain.powers[-2:]) >= 0.8 > plain.powers[0]
    assert list(plain.grid) == sorted(plain.grid) and plain.grid[0] == 400


def test_power_at_the_users_needed_is_the_target_by_independent_simulation(mean_needed):
    """At the n found, Welch tests (scipy) on fresh splits of the same population detect the
    effect in 80% of experiments, within the Monte-Carlo error of both estimates."""
    n = round(mean_needed[False].n)
    outcomes = mean_population(np.random.default_rng(20))  # the fixture's population
    rng = np.random.default_rng(22)
    sims = 2000
    idx = np.stack([rng.choice(POP, n, replace=False) for _ in range(sims)])
    c, t = outcomes.y0[idx[:, : n // 2]], outcomes.y1[idx[:, n // 2 :]]
    res = sps.ttest_ind(t, c, axis=1, equal_var=False)
    power = np.mean((res.pvalue < ALPHA) & (res.statistic > 0))
    tol = 4 * math.sqrt(0.8 * 0.2 / sims + 0.8 * 0.2 / REPS)
    assert power == pytest.approx(0.8, abs=tol)


def test_cuped_needs_fewer_users_by_one_minus_rho_squared(mean_needed):
    ratio = mean_needed[True].n / mean_needed[False].n
    assert ratio == pytest.approx(1 - RHO**2, rel=0.25)


def test_ratio_metric_users_needed_agree_with_the_analytic_formula():
    outcomes = ratio_population(np.random.default_rng(15), POP, lift=0.15)
    got = ab_users_needed(
        outcomes, cuped=False, lo=800, hi=POP, reps=REPS, rng=np.random.default_rng(16)
    )
    assert got.status == "found"
    assert got.n == pytest.approx(got.analytic, rel=0.2)


def test_interleaving_users_needed_agree_with_the_analytic_formula():
    t, c = interleaved_credits(np.random.default_rng(17), POP, boost=1.1)
    got = interleaving_users_needed(
        t, c, sign=1, lo=300, hi=POP, reps=REPS, rng=np.random.default_rng(18)
    )
    assert got.status == "found"
    assert got.analytic == pytest.approx(1300, rel=0.5)  # the case is sized for a fast test
    assert got.n == pytest.approx(got.analytic, rel=0.2)


# ------------------------------------------------------------------ no effect, search


def test_no_effect_is_beyond_hi_and_its_power_is_the_false_positive_rate():
    rng = np.random.default_rng(19)
    outcomes = mean_population(rng, 2000, effect=0.0)
    got = ab_users_needed(outcomes, cuped=True, lo=200, hi=400, reps=REPS, rng=rng)
    assert (got.n, got.status, got.analytic) == (None, "beyond hi", None)
    assert got.reason.startswith("beyond hi: power ")
    assert got.grid == (200, 283, 400)
    assert np.mean(got.powers) == pytest.approx(ALPHA, abs=binomial_tol(ALPHA, 3 * REPS, 4.0))

    t, c = interleaved_credits(rng, 2000, boost=1.0)
    assert analytic_interleaving_users(t, t, sign=0) is None  # share exactly 1/2
    # a clear preference for the control never agrees with a positive lift
    t, c = interleaved_credits(rng, 2000, boost=0.7)
    got = interleaving_users_needed(t, c, sign=1, lo=500, hi=1000, reps=100, rng=rng)
    assert (got.n, got.status, got.analytic) == (None, "beyond hi", None)
    assert max(got.powers) == 0.0
    assert analytic_interleaving_users(t, c, sign=-1) > 0


def norm_power(n: int, *, reps: int, rng: np.random.Generator) -> float:
    """A known power curve, Φ(sqrt(n) / 10 - z): 80% at n = (10 (z + z_0.8))²."""
    return float(sps.norm.cdf(math.sqrt(n) / 10 - sps.norm.ppf(1 - ALPHA / 2)))


def test_users_needed_interpolates_a_known_power_curve():
    rng = np.random.default_rng(0)
    got = users_needed(norm_power, lo=50, hi=10_000, reps=1, rng=rng)
    assert got.status == "found" and got.reason is None
    assert got.n == pytest.approx((10 * Z) ** 2, rel=0.03)
    assert got.grid == (50, 71, 100, 141, 200, 283, 400, 566, 800, 1131)
    assert got.powers == tuple(norm_power(n, reps=1, rng=rng) for n in got.grid)
    at_lo = users_needed(norm_power, lo=1000, hi=10_000, reps=1, rng=rng)
    assert (at_lo.n, at_lo.status) == (1000.0, "at most lo")
    beyond = users_needed(norm_power, lo=50, hi=200, reps=1, rng=rng, analytic=785.0)
    assert (beyond.n, beyond.status, beyond.analytic) == (None, "beyond hi", 785.0)


def test_users_needed_smooths_a_noisy_non_monotone_curve():
    """Measured powers 0.5, 0.85, 0.7, 0.9, 0.95: one point at the target does not stop the
    search, and the isotonic fit pools 0.85 and 0.7 into 0.775 < 0.8, so the crossing is
    between the 3rd and 4th points, not at the 2nd."""
    measured = iter([0.5, 0.85, 0.7, 0.9, 0.95])
    got = users_needed(
        lambda n, *, reps, rng: next(measured),
        lo=100,
        hi=1600,
        factor=2.0,
        reps=1,
        rng=np.random.default_rng(0),
    )
    assert got.grid == (100, 200, 400, 800, 1600)
    frac = (0.8 - 0.775) / (0.9 - 0.775)
    assert got.n == pytest.approx(math.exp(math.log(400) + frac * math.log(2)))


def test_same_seed_same_answer():
    outcomes = mean_population(np.random.default_rng(23), 3000)
    run = functools.partial(
        ab_users_needed, outcomes, cuped=True, lo=300, hi=3000, reps=50, factor=2.0
    )
    a, b = run(rng=np.random.default_rng(1)), run(rng=np.random.default_rng(1))
    assert a == b
    assert run(rng=np.random.default_rng(2)).powers != a.powers
    t, c = interleaved_credits(np.random.default_rng(24), 1000, boost=1.2)
    one = interleaving_power(t, c, 200, sign=1, reps=50, rng=np.random.default_rng(3))
    assert one == interleaving_power(t, c, 200, sign=1, reps=50, rng=np.random.default_rng(3))


# --------------------------------------------------------------------------- bad inputs

_RNG = np.random.default_rng(0)
_ONES = np.ones(10)
_MEAN = PotentialOutcomes.mean_metric(np.arange(10.0), np.arange(10.0) + 1)

BAD_INPUTS = [
    (
        lambda: PotentialOutcomes.mean_metric(_ONES, np.ones(9)),
        r"^potential outcomes: must be 1-D arrays of the same length >= 2, got shapes",
    ),
    (
        lambda: PotentialOutcomes.mean_metric(np.ones(1), np.ones(1)),
        r"^potential outcomes: must be 1-D arrays of the same length >= 2",
    ),
    (
        lambda: PotentialOutcomes.mean_metric(_ONES, np.r_[_ONES[:9], math.nan]),
        r"^y1: must be finite numbers, got \[nan\]",
    ),
    (
        lambda: PotentialOutcomes.ratio_metric(_ONES, -_ONES, _ONES, _ONES),
        r"^n0: must be denominators >= 0, got \[-1.0, -1.0, -1.0\]",
    ),
    (
        lambda: PotentialOutcomes.ratio_metric(_ONES, _ONES, _ONES, _ONES, x=_ONES),
        r"^x and x_den: must be both given or both None for a ratio metric",
    ),
    (
        lambda: PotentialOutcomes(_ONES, 2 * _ONES, _ONES, _ONES, ratio=False),
        r"^n0: must be 1 for a mean metric",
    ),
    (
        lambda: ab_power(_MEAN, 8, cuped=True, rng=_RNG),
        r"^x: must be a covariate for CUPED, got None",
    ),
    (lambda: ab_power(_MEAN, 3, cuped=False, rng=_RNG), r"^n_users: must be an integer >= 4"),
    (lambda: ab_power(_MEAN, 8.0, cuped=False, rng=_RNG), r"^n_users: must be an integer >= 4"),
    (lambda: ab_power(_MEAN, 8, cuped=False, reps=0, rng=_RNG), r"^reps: must be an integer >= 1"),
    (
        lambda: ab_power(_MEAN, 8, cuped=False, alpha=1.5, rng=_RNG),
        r"^alpha: must be a number in \(0, 1\)",
    ),
    (
        lambda: ab_power(_MEAN, 8, cuped=False, rng=0),
        r"^rng: must be a numpy Generator, got int",
    ),
    (
        lambda: ab_power((_ONES, _ONES), 8, cuped=False, rng=_RNG),
        r"^outcomes: must be a PotentialOutcomes, got tuple",
    ),
    (
        lambda: interleaving_power(_ONES, -_ONES, 8, sign=1, rng=_RNG),
        r"^c: must be credits >= 0",
    ),
    (lambda: interleaving_power(_ONES, _ONES, 8, sign=2, rng=_RNG), r"^sign: must be -1, 0 or 1"),
    (lambda: interleaving_power(_ONES, _ONES, 1, sign=1, rng=_RNG), r"^n_users: must be an int"),
    (
        lambda: users_needed(norm_power, lo=100, hi=50, rng=_RNG),
        r"^hi: must be an integer >= 100, got 50",
    ),
    (
        lambda: users_needed(norm_power, lo=10, hi=50, target=1.0, rng=_RNG),
        r"^target: must be a number in \(0, 1\)",
    ),
    (
        lambda: users_needed(norm_power, lo=10, hi=50, factor=1.0, rng=_RNG),
        r"^factor: must be a number > 1, got 1.0",
    ),
    (lambda: users_needed(0.8, lo=10, hi=50, rng=_RNG), r"^power_fn: must be callable, got"),
    (
        lambda: analytic_users(_MEAN, power=0.0),
        r"^power: must be a number in \(0, 1\), got 0.0",
    ),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUTS)
def test_bad_inputs_raise_user_error_naming_the_problem(call, message):
    with pytest.raises(UserError, match=message):
        call()
