"""Off-policy estimators (abtest/offline/ope.py): hand-computed values, unbiasedness,
coverage, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from abtest.offline import ope
from core.errors import UserError

# ---------------------------------------------------------------------------- by hand

# Six exposures in three clusters (users): rewards, target and logging probabilities.
R = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
PI = np.array([0.5, 0.2, 0.1, 0.4, 0.9, 0.3])
MU = np.array([0.25, 0.4, 0.5, 0.2, 0.3, 0.6])  # w = 2, .5, .2, 2, 3, .5
CL = np.array([7, 7, 8, 8, 9, 9])


def _cluster_se(e):
    e = np.asarray(e, dtype=float)
    g = e.size
    return math.sqrt(g / (g - 1) * float((e**2).sum()))


def test_ips_by_hand():
    res = ope.ips_estimate(R, PI, MU, clusters=CL)
    # w r = 2, 0, .2, 0, 3, 0 -> mean 5.2 / 6
    est = 5.2 / 6
    assert res.estimate == pytest.approx(est)
    # per cluster: sums of w r (2, .2, 3), 2 exposures each: e_g = (N_g - est * 2) / 6
    se = _cluster_se([(2 - 2 * est) / 6, (0.2 - 2 * est) / 6, (3 - 2 * est) / 6])
    assert res.se == pytest.approx(se)
    assert res.ci_low == pytest.approx(est - 1.959964 * se, abs=1e-6)
    assert res.ci_high == pytest.approx(est + 1.959964 * se, abs=1e-6)
    assert (res.n, res.clipped, res.max_weight) == (6, 0, pytest.approx(3.0))
    w = PI / MU
    assert res.ess == pytest.approx(w.sum() ** 2 / (w**2).sum())


def test_snips_by_hand():
    res = ope.snips_estimate(R, PI, MU, clusters=CL)
    est = 5.2 / 8.2  # sum w r / sum w
    assert res.estimate == pytest.approx(est)
    # cluster sums of w: 2.5, 2.2, 3.5
    se = _cluster_se([(2 - est * 2.5) / 8.2, (0.2 - est * 2.2) / 8.2, (3 - est * 3.5) / 8.2])
    assert res.se == pytest.approx(se)


def test_dr_by_hand():
    q_log = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    q_tgt = np.array([0.4, 0.4, 0.6, 0.6, 0.2, 0.2])
    res = ope.dr_estimate(R, PI, MU, q_log, q_tgt, clusters=CL)
    terms = q_tgt + (PI / MU) * (R - q_log)  # .4+1, .4-.25, .6+.1, .6-1, .2+1.5, .2-.25
    assert res.estimate == pytest.approx(terms.mean())
    assert res.estimate == pytest.approx((1.4 + 0.15 + 0.7 - 0.4 + 1.7 - 0.05) / 6)


def test_replay_by_hand():
    matched = np.array([True, False, True, True, False, False])
    res = ope.replay_estimate(R, matched, clusters=CL)
    assert res.estimate == pytest.approx(2 / 3)
    assert res.n == 3 and res.ess == 3
    # clusters 7 (1 match, reward 1) and 8 (2 matches, reward 1); cluster 9 has none
    se = _cluster_se([(1 - 2 / 3 * 1) / 3, (1 - 2 / 3 * 2) / 3])
    assert res.se == pytest.approx(se)


def test_clipping_counts_and_caps():
    res = ope.ips_estimate(R, PI, MU, clusters=CL, clip=1.0)
    # raw weights 2, .5, .2, 2, 3, .5: three above 1
    assert res.clipped == 3 and res.max_weight == pytest.approx(3.0)
    assert res.estimate == pytest.approx((1 + 0.2 + 1) / 6)
    assert res.estimate < ope.ips_estimate(R, PI, MU, clusters=CL).estimate


def test_no_clusters_means_independent_events():
    a = ope.ips_estimate(R, PI, MU)
    b = ope.ips_estimate(R, PI, MU, clusters=np.arange(6))
    assert a.se == pytest.approx(b.se)
    x = PI / MU * R
    assert a.se == pytest.approx(math.sqrt(6 / 5 * ((x - x.mean()) ** 2).sum()) / 6)


def test_ess_and_diagnostics():
    assert ope.ess(np.ones(40)) == pytest.approx(40)
    assert ope.ess(np.r_[np.zeros(39), 5.0]) == pytest.approx(1)
    res = ope.OPEResult(0.1, 0.0, 0.2, 0.05, 40_000, 35.0, 800.0, 0)
    warns = ope.diagnostics("ips", res)
    assert "ips: effective sample size 35 of 40,000" in warns
    assert "ips: max weight 800" in warns
    rep = ope.OPEResult(0.1, 0.0, 0.2, 0.05, 12, 12.0, 1.0, 0)
    assert ope.diagnostics("replay", rep) == ["replay: only 12 matched events"]
    fine = ope.OPEResult(0.1, 0.09, 0.11, 0.005, 10_000, 5_000.0, 3.0, 0)
    assert ope.diagnostics("snips", fine) == []
    clipped = ope.OPEResult(0.1, 0.09, 0.11, 0.005, 10_000, 5_000.0, 3.0, 7)
    assert any("7 weights clipped" in w for w in ope.diagnostics("ips", clipped))


def test_replay_with_no_match_is_nan_not_an_error():
    res = ope.replay_estimate(R, np.zeros(6, dtype=bool))
    assert res.n == 0 and math.isnan(res.estimate)
    assert any("no estimate" in w for w in ope.diagnostics("replay", res))
    assert res.to_dict()["estimate"] is None


def test_paired_lift_by_hand_and_identity():
    a = ope.ips_terms(R, PI, MU)
    same = ope.paired_lift(a, a, CL)
    assert same.lift == pytest.approx(0) and same.se == pytest.approx(0)
    pi_b = np.full(6, 0.2)
    b = ope.ips_terms(R, pi_b, MU)
    lift = ope.paired_lift(a, b, CL)
    est_a, est_b = 5.2 / 6, float((pi_b / MU * R).mean())
    assert lift.lift == pytest.approx(est_a / est_b - 1)
    assert (lift.policy, lift.baseline) == (pytest.approx(est_a), pytest.approx(est_b))
    # delta method by hand: e_g = ea_g / b - a eb_g / b^2
    na, nb = np.array([2, 0.2, 3]), np.bincount([0, 0, 1, 1, 2, 2], weights=pi_b / MU * R)
    e = (na - 2 * est_a) / 6 / est_b - est_a * (nb - 2 * est_b) / 6 / est_b**2
    assert lift.se == pytest.approx(_cluster_se(e))


# ---------------------------------------------------------------------------- bad input

GOOD = {"r": R, "pi": PI, "mu": MU}


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"r": R[:5]}, "mismatched lengths"),
        ({"mu": MU[:4]}, "mismatched lengths"),
        ({"pi": PI[:3]}, "mismatched lengths"),
        ({"mu": np.r_[MU[:5], 0.0]}, r"propensity must be in \(0, 1\]"),
        ({"mu": np.r_[MU[:5], 1.5]}, r"propensity must be in \(0, 1\]"),
        ({"mu": np.r_[MU[:5], -0.1]}, r"propensity must be in \(0, 1\]"),
        ({"mu": np.r_[MU[:5], np.nan]}, "missing propensity"),
        ({"mu": np.array([0.2, None, 0.3, 0.2, 0.1, 0.5], dtype=object)}, "missing propensity"),
        ({"pi": np.r_[PI[:5], 1.2]}, r"target probability must be in \[0, 1\]"),
        ({"r": np.r_[R[:5], np.inf]}, "reward has non-finite"),
        ({"r": np.array([])}, "no logged events"),
        ({"clip": 0.0}, "clip must be a positive"),
        ({"clusters": CL[:4]}, "mismatched lengths"),
    ],
)
@pytest.mark.parametrize("estimator", [ope.ips_estimate, ope.snips_estimate])
def test_bad_input_is_a_user_error(estimator, changes, match):
    kw = GOOD | changes
    with pytest.raises(UserError, match=match):
        estimator(kw.pop("r"), kw.pop("pi"), kw.pop("mu"), **kw)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((R, PI, MU, R[:5], R), "q_logged has length 5"),
        ((R, PI, MU, R, np.r_[R[:5], np.nan]), "must be finite"),
        ((R, PI, np.r_[MU[:5], np.nan], R, R), "missing propensity"),
    ],
)
def test_dr_bad_input(args, match):
    with pytest.raises(UserError, match=match):
        ope.dr_estimate(*args)


def test_replay_and_lift_bad_input():
    with pytest.raises(UserError, match="mismatched lengths"):
        ope.replay_estimate(R, np.ones(5, dtype=bool))
    with pytest.raises(UserError, match="matched must be boolean"):
        ope.replay_estimate(R, np.full(6, 0.5))
    with pytest.raises(UserError, match="mismatched lengths"):
        ope.paired_lift(ope.ips_terms(R, PI, MU), ope.ips_terms(R[:5], PI[:5], MU[:5]))


# ---------------------------------------------------------------------------- by simulation


def bandit_log(seed: int, n_req: int = 600, n_pos: int = 3, n_act: int = 6, heavy: float = 1.0):
    """A synthetic slate log with known truth.

    Each request x has per-position marginals mu_k(.|x) (softmax with `heavy` sharpness) and
    a target pi_k(.|x); the logged item at each position is drawn from mu_k, the reward is
    Bernoulli(q(x, a, k)). Users own 3 requests each (clusters) and a shared click-logit
    effect, so a user's rewards are correlated. Truth = mean over slots of
    sum_a pi_k(a|x) q(x, a, k).
    """
    rng = np.random.default_rng(seed)
    shape = (n_req, n_pos, n_act)
    user_effect = np.repeat(rng.normal(0.0, 1.5, n_req // 3 + 1), 3)[:n_req, None, None]
    q = 1 / (1 + np.exp(-(rng.normal(-1.0, 1.0, shape) + user_effect)))
    mu = np.exp(heavy * rng.normal(size=shape))
    mu /= mu.sum(axis=2, keepdims=True)
    pi = np.exp(rng.normal(size=shape) + 1.5 * q)
    pi /= pi.sum(axis=2, keepdims=True)
    u = rng.random((n_req, n_pos, 1))
    a = np.minimum((mu.cumsum(axis=2) < u).sum(axis=2), n_act - 1)
    take = lambda m: np.take_along_axis(m, a[:, :, None], axis=2)[:, :, 0].ravel()  # noqa: E731
    r = (rng.random(a.shape) < np.take_along_axis(q, a[:, :, None], axis=2)[:, :, 0]).ravel()
    users = np.repeat(np.arange(n_req) // 3, n_pos)
    truth = float((pi * q).sum(axis=2).mean())
    return {
        "truth_logging": float((mu * q).sum(axis=2).mean()),
        "r": r.astype(float),
        "pi": take(pi),
        "mu": take(mu),
        "q_logged": take(q),
        "q_target": (pi * q).sum(axis=2).ravel(),
        "users": users,
        "truth": truth,
        "q": q,
        "pi_full": pi,
        "a": a,
    }


REPS = 300
# 95% coverage with REPS replications: inside 0.95 +- 3 binomial SDs
BAND = 3 * math.sqrt(0.95 * 0.05 / REPS)


def _replicate(fn, reps=REPS, **kw):
    return [fn(bandit_log(seed, **kw)) for seed in range(reps)]


def _check_unbiased_and_covering(results, truths):
    est = np.array([r.estimate for r in results])
    err = est - np.array(truths)
    # the mean error is within 4 of its standard errors of zero
    assert abs(err.mean()) < 4 * err.std(ddof=1) / math.sqrt(len(err)), err.mean()
    cover = np.mean([r.ci_low <= t <= r.ci_high for r, t in zip(results, truths, strict=True)])
    assert abs(cover - 0.95) <= BAND, cover
    return err


def test_ips_is_unbiased_and_its_ci_covers():
    logs = [bandit_log(s) for s in range(REPS)]
    res = [ope.ips_estimate(d["r"], d["pi"], d["mu"], clusters=d["users"]) for d in logs]
    _check_unbiased_and_covering(res, [d["truth"] for d in logs])


def test_dr_is_unbiased_and_its_ci_covers_with_a_wrong_reward_model():
    logs = [bandit_log(s) for s in range(REPS)]
    res = []
    for d in logs:
        q_log, q_tgt = 0.5 * d["q_logged"] + 0.1, 0.5 * d["q_target"] + 0.1  # biased model
        res.append(ope.dr_estimate(d["r"], d["pi"], d["mu"], q_log, q_tgt, clusters=d["users"]))
    _check_unbiased_and_covering(res, [d["truth"] for d in logs])


def test_snips_ci_covers_and_paired_lift_ci_covers():
    logs = [bandit_log(s) for s in range(REPS)]
    res = [ope.snips_estimate(d["r"], d["pi"], d["mu"], clusters=d["users"]) for d in logs]
    # SNIPS is biased only at order 1/n: the same checks hold at this sample size
    _check_unbiased_and_covering(res, [d["truth"] for d in logs])
    lifts, truths = [], []
    for d in logs:
        # baseline: the logging policy itself (pi = mu), whose truth is sum_a mu q
        base = ope.ips_terms(d["r"], d["mu"], d["mu"])
        pol = ope.ips_terms(d["r"], d["pi"], d["mu"])
        lifts.append(ope.paired_lift(pol, base, d["users"]))
        truths.append(d["truth"] / d["truth_logging"] - 1)
    cover = np.mean([lf.ci_low <= t <= lf.ci_high for lf, t in zip(lifts, truths, strict=True)])
    assert abs(cover - 0.95) <= BAND, cover


def test_snips_has_lower_variance_than_ips_on_heavy_weights():
    logs = [bandit_log(s, heavy=3.0) for s in range(200)]
    ips = np.array([ope.ips_estimate(d["r"], d["pi"], d["mu"]).estimate for d in logs])
    snips = np.array([ope.snips_estimate(d["r"], d["pi"], d["mu"]).estimate for d in logs])
    assert max(ope.ips_estimate(d["r"], d["pi"], d["mu"]).max_weight for d in logs) > 50
    assert snips.var() < 0.5 * ips.var()


def test_dr_is_exact_with_an_exact_reward_model_whatever_the_weights():
    d = bandit_log(1, heavy=3.0)
    q_full = d["q"]
    r_det = d["q_logged"]  # deterministic rewards: r = q(x, a, k) exactly
    rng = np.random.default_rng(5)
    wrong_mu = rng.uniform(0.001, 1.0, r_det.size)  # not even the logging propensities
    res = ope.dr_estimate(r_det, d["pi"], wrong_mu, d["q_logged"], d["q_target"])
    assert res.estimate == pytest.approx(float((d["pi_full"] * q_full).sum(axis=2).mean()), 1e-12)
    assert res.estimate == pytest.approx(d["truth"], abs=1e-12)
    ips = ope.ips_estimate(r_det, d["pi"], wrong_mu).estimate
    assert abs(ips - d["truth"]) > 0.01  # IPS with those weights is far off


def test_replay_equals_the_on_policy_value_on_uniform_logs():
    n_act, ests, truths = 5, [], []
    for seed in range(REPS):
        rng = np.random.default_rng(seed)
        n = 2000
        q = rng.uniform(0.05, 0.6, (n, n_act))
        choice = q.argmax(axis=1) if seed % 2 else rng.integers(0, n_act, n)  # target policy
        logged = rng.integers(0, n_act, n)  # uniformly random traffic
        r = (rng.random(n) < q[np.arange(n), logged]).astype(float)
        res = ope.replay_estimate(r, logged == choice)
        ests.append(res)
        truths.append(float(q[np.arange(n), choice].mean()))
        assert abs(res.n - n / n_act) < 5 * math.sqrt(n / n_act)
    _check_unbiased_and_covering(ests, truths)


def test_clipping_biases_ips_downward():
    logs = [bandit_log(s, heavy=3.0) for s in range(200)]
    raw = np.array([ope.ips_estimate(d["r"], d["pi"], d["mu"]).estimate for d in logs])
    clipped = [ope.ips_estimate(d["r"], d["pi"], d["mu"], clip=5.0) for d in logs]
    est = np.array([c.estimate for c in clipped])
    truth = np.array([d["truth"] for d in logs])
    assert (est <= raw + 1e-12).all()
    for c, d in zip(clipped, logs, strict=True):
        assert c.clipped == int((d["pi"] / d["mu"] > 5).sum())
    bias = (est - truth).mean()
    assert bias < -5 * (est - truth).std(ddof=1) / math.sqrt(len(est))
