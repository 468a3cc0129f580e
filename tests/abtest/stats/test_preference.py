"""abtest.stats.preference: interleaving's share and wins against slow references and closed
forms, A/A calibration by simulation, a known preference, degenerate data, argument checks."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats as sps

from abtest.stats.preference import WINS_CI_METHOD, preference_share, preference_wins
from core.errors import UserError
from tests.abtest.stats.generators import ALPHA, binomial_tol
from tests.conftest import FAST

Z = sps.norm.ppf(1 - ALPHA / 2)


def credits(rng, n: int, *, boost: float = 1.0, scale: float = 1.0) -> tuple[np.ndarray, ...]:
    """Per-user clicks credited to (treatment, control): users differ in activity (many have
    none), each team's clicks are Poisson around it, the treatment's times `boost`."""
    activity = rng.gamma(0.8, 1.5, n) * scale
    return rng.poisson(activity * boost).astype(float), rng.poisson(activity).astype(float)


# ------------------------------------------------------------------- slow references


def brute_force_share(t: list[float], c: list[float]) -> tuple[float, float]:
    """share and its delta-method se with plain loops: a numerical gradient of
    f(mean t, mean s) = mean t / mean s and the sample covariance (ddof 1) over users with
    credit, Var = g' Σ g / n."""
    pairs = [(ti, ti + ci) for ti, ci in zip(t, c, strict=True) if ti + ci > 0]
    n = len(pairs)
    mu = [sum(p[j] for p in pairs) / n for j in (0, 1)]
    cov = [
        [sum((p[i] - mu[i]) * (p[j] - mu[j]) for p in pairs) / (n - 1) for j in (0, 1)]
        for i in (0, 1)
    ]

    def f(a, b):
        return a / b

    h = 1e-6
    grad = [
        (f(mu[0] + h, mu[1]) - f(mu[0] - h, mu[1])) / (2 * h),
        (f(mu[0], mu[1] + h) - f(mu[0], mu[1] - h)) / (2 * h),
    ]
    var = sum(grad[i] * cov[i][j] * grad[j] for i in (0, 1) for j in (0, 1)) / n
    return f(mu[0], mu[1]), math.sqrt(var)


def sign_test_p(wins: int, losses: int) -> float:
    """Exact two-sided sign test by the binomial sum: 2 P(X <= min(w, l)), X ~ Bin(w + l, 1/2)."""
    n = wins + losses
    tail = sum(math.comb(n, k) for k in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize(("n", "seed"), [(6, 0), (15, 1), (40, 2)])
def test_share_matches_a_brute_force_delta_method(n, seed):
    rng = np.random.default_rng(seed)
    t, c = credits(rng, n, boost=1.3, scale=3.0)
    t[0] = c[0] = 0.0  # a user without credit is left out
    t[1], c[1] = 4.0, 1.0  # at least two users with credit and a varying share
    t[2], c[2] = 0.0, 3.0
    share, se = brute_force_share(list(t), list(c))
    r = preference_share(t, c)
    assert r.reason is None
    assert r.share == pytest.approx(share, rel=1e-12)
    assert r.share_se == pytest.approx(se, rel=1e-6)  # the numerical gradient's accuracy
    assert (r.ci_low, r.ci_high) == pytest.approx((share - Z * se, share + Z * se), rel=1e-6)
    # the test is the sign-flip one: z = sum(d) / sqrt(sum(d^2)), d = t - c
    d = [ti - ci for ti, ci in zip(t, c, strict=True) if ti + ci > 0]
    z = sum(d) / math.sqrt(sum(x * x for x in d))
    assert r.statistic == pytest.approx(z, rel=1e-9)
    assert r.p_value == pytest.approx(2 * sps.norm.sf(abs(z)), rel=1e-9)
    assert r.delta == pytest.approx(2 * share - 1, abs=1e-12)
    assert r.delta_se == pytest.approx(2 * se, rel=1e-6)
    assert (r.delta_ci_low, r.delta_ci_high) == pytest.approx(
        (2 * r.ci_low - 1, 2 * r.ci_high - 1), abs=1e-12
    )
    credited = int(((t + c) > 0).sum())
    assert (r.n_users, r.n_excluded) == (credited, n - credited)
    assert (r.total_treatment, r.total_control) == pytest.approx((t.sum(), c.sum()), rel=1e-12)


def test_share_with_one_unit_of_credit_per_user_is_the_wald_proportion():
    """With t + c = 1 per user the linearisation is t_i - p, so Var = p (1 - p) / (n - 1)."""
    rng = np.random.default_rng(3)
    n = 500
    t = rng.binomial(1, 0.55, n).astype(float)
    r = preference_share(t, 1 - t)
    p = t.mean()
    assert r.share == pytest.approx(p, rel=1e-14)
    assert r.share_se == pytest.approx(math.sqrt(p * (1 - p) / (n - 1)), rel=1e-10)


def test_share_is_antisymmetric_in_the_teams():
    rng = np.random.default_rng(4)
    t, c = credits(rng, 300, boost=1.2)
    a, b = preference_share(t, c), preference_share(c, t)
    assert b.share == pytest.approx(1 - a.share, rel=1e-12)
    assert b.delta == pytest.approx(-a.delta, rel=1e-12)
    assert b.share_se == pytest.approx(a.share_se, rel=1e-9)
    assert b.p_value == pytest.approx(a.p_value, rel=1e-9)


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_wins_match_a_counting_loop_and_the_exact_sign_test(seed):
    rng = np.random.default_rng(seed)
    n = 60
    t, c = credits(rng, n, boost=1.4)
    exposed = (t + c > 0) | (rng.random(n) < 0.5)  # some users without credit saw slates
    wins = losses = ties = 0
    scores = []
    for ti, ci, ei in zip(t, c, exposed, strict=True):
        if not ei:
            continue
        s = 1 if ti > ci else -1 if ti < ci else 0
        wins, losses, ties = wins + (s == 1), losses + (s == -1), ties + (s == 0)
        scores.append(s)
    r = preference_wins(t, c, exposed=exposed)
    assert (r.wins, r.losses, r.ties) == (wins, losses, ties)
    assert (r.n_users, r.n_excluded) == (len(scores), n - len(scores))
    assert r.p_value == pytest.approx(sign_test_p(wins, losses), rel=1e-9)
    assert r.win_share == pytest.approx(wins / (wins + losses))
    delta_ab = (wins - losses) / (wins + losses + ties)
    se = statistics.stdev(scores) / math.sqrt(len(scores))
    assert r.delta_ab == pytest.approx(delta_ab, rel=1e-12)
    assert r.delta_ab_se == pytest.approx(se, rel=1e-12)
    assert (r.ci_low, r.ci_high) == pytest.approx((delta_ab - Z * se, delta_ab + Z * se))
    assert r.ci_method == WINS_CI_METHOD
    # without a mask every user given is exposed: the users without credit become ties
    everyone = preference_wins(t, c)
    assert (everyone.wins, everyone.losses) == (wins, losses)
    assert everyone.ties == n - wins - losses


# --------------------------------------------------------------------------- calibration


def test_aa_false_positive_rate_is_alpha_for_both_statistics():
    """Credits drawn alike for both teams: each test rejects in about alpha of 1000 runs
    (the exact sign test is discrete, so at most alpha, but close at this size)."""
    rng = np.random.default_rng(8)
    sims, n = 1000, 300
    share_hits = wins_hits = 0
    for _ in range(sims):
        t, c = credits(rng, n)
        share_hits += preference_share(t, c).p_value < ALPHA
        wins_hits += preference_wins(t, c).p_value < ALPHA
    band = binomial_tol(ALPHA, sims, sds=4.0)
    assert abs(share_hits / sims - ALPHA) < band
    assert abs(wins_hits / sims - ALPHA) < band


def test_a_known_preference_is_detected_and_estimated():
    """The treatment earns 1.25 times the control's clicks: the share is 1.25 / 2.25."""
    rng = np.random.default_rng(9)
    t, c = credits(rng, 4000, boost=1.25)
    r = preference_share(t, c)
    true_share = 1.25 / 2.25
    assert r.significant and r.delta > 0
    assert abs(r.share - true_share) < 4 * r.share_se
    assert r.ci_low < true_share < r.ci_high
    w = preference_wins(t, c)
    assert w.significant and w.delta_ab > 0 and w.ci_low > 0
    assert w.wins > w.losses


# --------------------------------------------------------------------------- edge cases


@pytest.mark.usefixtures("no_warnings")
def test_degenerate_inputs_give_nan_and_a_reason_not_exceptions():
    cases = {
        "no credited engagement": ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0]),
        "one user with credited engagement: no variance": ([0.0, 2.0], [0.0, 1.0]),
        "constant credit share: no variance": ([0.3, 0.6, 3.0], [0.7, 1.4, 7.0]),
    }
    for reason, (t, c) in cases.items():
        r = preference_share(t, c)
        assert r.reason == reason
        for v in (r.share_se, r.ci_low, r.ci_high, r.delta_ci_low, r.statistic, r.p_value):
            assert math.isnan(v)
        assert not r.significant
    assert math.isnan(preference_share([], []).share)
    assert preference_share([1.0, 2.0], [0.0, 0.0]).share == 1.0  # all credit to one team

    w = preference_wins([1.0, 1.0], [1.0, 1.0])
    assert w.reason == "only ties: no wins or losses"
    assert math.isnan(w.p_value) and math.isnan(w.ci_low) and w.delta_ab == 0.0
    w = preference_wins([2.0, 1.0, 5.0], [0.0, 0.0, 1.0])
    assert w.reason == "every user scores alike: no variance, CI withheld"
    assert w.p_value == pytest.approx(0.25) and w.delta_ab == 1.0 and math.isnan(w.ci_low)
    w = preference_wins([1.0], [0.0])
    assert w.reason == "one user: no variance, CI withheld"
    w = preference_wins([0.0], [0.0], exposed=np.array([False]))
    assert w.reason == "no exposed users" and w.n_excluded == 1 and math.isnan(w.delta_ab)


BAD_INPUTS = [
    (lambda: preference_share([1.0, -1.0], [0.0, 1.0]), r"^t: must be credits >= 0, got \[-1.0\]"),
    (lambda: preference_wins([1.0], [-2.0]), r"^c: must be credits >= 0, got \[-2.0\]"),
    (
        lambda: preference_share([1.0, 2.0], [1.0]),
        r"^t and c: must be 1-D arrays of the same length, got shapes \(2,\) and \(1,\)",
    ),
    (
        lambda: preference_wins(np.ones((2, 2)), np.ones((2, 2))),
        r"^t and c: must be 1-D arrays of the same length",
    ),
    (lambda: preference_share([1.0, math.nan], [0.0, 1.0]), r"^t: must be finite credits, got"),
    (lambda: preference_wins([1.0], [math.inf]), r"^c: must be finite credits, got \[inf\]"),
    (lambda: preference_share([1.0], [1.0], alpha=1.0), r"^alpha: must be a number in \(0, 1\)"),
    (lambda: preference_wins([1.0], [1.0], alpha=0), r"^alpha: must be a number in \(0, 1\)"),
    (
        lambda: preference_wins([1.0, 0.0], [0.0, 0.0], exposed=[1, 0]),
        r"^exposed: must be a boolean array of the credits' shape \(2,\), got int64",
    ),
    (
        lambda: preference_wins([1.0, 0.0], [0.0, 0.0], exposed=np.array([True])),
        r"^exposed: must be a boolean array",
    ),
    (
        lambda: preference_wins([1.0, 0.0], [0.0, 0.0], exposed=np.array([False, True])),
        r"^exposed: must be True for every user with credit, got 1 users",
    ),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUTS)
def test_bad_inputs_raise_user_error_naming_the_problem(call, message):
    with pytest.raises(UserError, match=message):
        call()


# ---------------------------------------------------------------- properties (hypothesis)


CREDITS = st.one_of(st.sampled_from([0.0, 1.0, 1e-300, 1e150]), st.floats(0, 1e6))


@pytest.mark.usefixtures("no_warnings")
@FAST
@given(
    st.integers(0, 8).flatmap(lambda n: st.tuples(*[hnp.arrays(float, n, elements=CREDITS)] * 2))
)
def test_any_credits_give_valid_fields_without_warnings(tc):
    t, c = tc
    r = preference_share(t, c)
    assert (0 <= r.p_value <= 1) or math.isnan(r.p_value)
    assert (0 <= r.share <= 1) or math.isnan(r.share)
    assert (r.reason is None) == math.isfinite(r.p_value)
    w = preference_wins(t, c)
    assert w.wins + w.losses + w.ties == len(t)
    assert (0 <= w.p_value <= 1) or math.isnan(w.p_value)
    assert (-1 <= w.delta_ab <= 1) or math.isnan(w.delta_ab)
