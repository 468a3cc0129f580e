"""Off-policy estimators over arrays of logged exposures: replay, IPS, SNIPS, doubly robust.

The estimand is **per exposure** (one item shown at one position of one request): the target
policy's expected reward per exposure on the logged requests — CTR when the reward is the
click, watch time per exposure when it is the watch time. For logged exposure i (request x,
position k, logged item a) we have

* ``r``  the reward,
* ``mu`` the logging policy's probability of showing a at k given x (the log's
  ``propensity`` column, an exact position-wise marginal),
* ``pi`` the target policy's probability of showing a at k given x.

Because the reward of an exposure depends only on (x, a, k), E_mu[(pi/mu) r] =
sum_a pi_k(a|x) E[r | x, a, k]: the target's expected reward at that slot.

Every estimator here is a ratio of sums over exposures, sum(num) / sum(den), and its standard
error comes from **per-cluster sums** (delta method for a ratio estimator, Deng et al. 2018):
exposures of one request (or one user) are correlated, so they are summed within their
cluster first; with clusters g the linearised contributions are
e_g = (N_g - est * D_g) / sum(D), var = G / (G - 1) * sum(e_g^2). Confidence intervals are
95% normal intervals. Passing ``clusters=None`` treats every exposure as its own cluster.

:func:`paired_lift` compares two policies on the same logged exposures: the relative lift
est_a / est_b - 1 with a delta-method CI that uses the per-cluster covariance of the two.

Bad input (mismatched lengths, propensities outside (0, 1] or missing, target probabilities
outside [0, 1], non-finite rewards) raises :class:`core.errors.UserError`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from core.errors import UserError

Z95 = 1.959963984540054

# Diagnostic thresholds (see :func:`diagnostics`).
MIN_MATCHES = 100  # replay: fewer matched events than this is flagged
MIN_ESS = 100.0  # weighted estimators: effective sample size below this is flagged ...
MIN_ESS_FRACTION = 0.01  # ... or below this share of the exposures
MAX_WEIGHT = 100.0  # largest importance weight above this is flagged


@dataclass(frozen=True)
class OPEResult:
    """One estimate with its 95% CI. ``n``: events used (replay: matched events);
    ``ess``: effective sample size of the weights; ``max_weight``: the largest importance
    weight before clipping; ``clipped``: how many weights were clipped."""

    estimate: float
    ci_low: float
    ci_high: float
    se: float
    n: int
    ess: float
    max_weight: float
    clipped: int

    def to_dict(self) -> dict:
        return {
            "estimate": _num(self.estimate),
            "ci_low": _num(self.ci_low),
            "ci_high": _num(self.ci_high),
            "se": _num(self.se),
            "n": int(self.n),
            "ess": _num(self.ess),
            "max_weight": _num(self.max_weight),
            "clipped": int(self.clipped),
        }


@dataclass(frozen=True)
class PairedLift:
    """Relative lift policy / baseline - 1 on the same exposures, with its 95% CI."""

    lift: float
    ci_low: float
    ci_high: float
    se: float
    policy: float
    baseline: float
    n: int

    def to_dict(self) -> dict:
        return {
            "lift": _num(self.lift),
            "ci_low": _num(self.ci_low),
            "ci_high": _num(self.ci_high),
            "se": _num(self.se),
            "policy": _num(self.policy),
            "baseline": _num(self.baseline),
            "n": int(self.n),
        }


@dataclass(frozen=True)
class Terms:
    """Per-exposure numerator and denominator of a ratio estimator, plus its diagnostics."""

    num: np.ndarray
    den: np.ndarray
    n: int  # events that count (replay: matches; otherwise all exposures)
    ess: float
    max_weight: float
    clipped: int

    def __len__(self) -> int:
        return int(self.num.shape[0])


def _num(x: float) -> float | None:
    """JSON-friendly: NaN and inf become None."""
    x = float(x)
    return x if math.isfinite(x) else None


# ---------------------------------------------------------------------------- validation


def _array(name: str, x, n: int | None) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise UserError(f"{name} must be a 1-D array, got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise UserError(f"{name} has length {a.shape[0]}, expected {n} (mismatched lengths)")
    return a


def _rewards(r) -> np.ndarray:
    r = _array("reward", r, None)
    if r.shape[0] == 0:
        raise UserError("no logged events to estimate from")
    if not np.isfinite(r).all():
        raise UserError(f"reward has non-finite values at rows {_first(~np.isfinite(r))}")
    return r


def _first(mask: np.ndarray, limit: int = 5) -> str:
    idx = np.flatnonzero(mask)
    more = f" and {idx.size - limit} more" if idx.size > limit else ""
    return ", ".join(str(i) for i in idx[:limit]) + more


def _propensity(mu, n: int) -> np.ndarray:
    mu = _array("propensity", mu, n)
    if np.isnan(mu).any():
        raise UserError(
            f"missing propensity (null/NaN) at rows {_first(np.isnan(mu))}: "
            "IPS, SNIPS and DR need the logging policy's propensity of every event"
        )
    bad = ~((mu > 0) & (mu <= 1))
    if bad.any():
        raise UserError(f"propensity must be in (0, 1]; bad rows {_first(bad)}")
    return mu


def _target(pi, n: int) -> np.ndarray:
    pi = _array("target probability", pi, n)
    bad = ~((pi >= 0) & (pi <= 1))
    if bad.any():
        raise UserError(f"target probability must be in [0, 1]; bad rows {_first(bad)}")
    return pi


def _clusters(clusters, n: int) -> np.ndarray:
    """Cluster codes 0..G-1 (each event its own cluster when None)."""
    if clusters is None:
        return np.arange(n)
    c = np.asarray(clusters)
    if c.ndim != 1 or c.shape[0] != n:
        got = c.shape[0] if c.ndim else 0
        raise UserError(f"clusters has length {got}, expected {n} (mismatched lengths)")
    return np.unique(c, return_inverse=True)[1].ravel()


def _clip(clip: float | None) -> float | None:
    if clip is None:
        return None
    if not (math.isfinite(clip) and clip > 0):
        raise UserError(f"clip must be a positive number, got {clip}")
    return float(clip)


def ess(w) -> float:
    """Kish effective sample size of importance weights: (sum w)^2 / sum w^2."""
    w = np.asarray(w, dtype=np.float64)
    s2 = float(np.dot(w, w))
    return float(w.sum()) ** 2 / s2 if s2 > 0 else 0.0


def _weights(pi, mu, clip: float | None) -> tuple[np.ndarray, float, int]:
    raw = pi / mu
    clip = _clip(clip)
    if clip is None:
        return raw, float(raw.max()), 0
    return np.minimum(raw, clip), float(raw.max()), int((raw > clip).sum())


# ---------------------------------------------------------------------------- terms


def replay_terms(r, matched) -> Terms:
    """Replay (Li et al. 2011): the rewards of the events where the target's choice matches."""
    r = _rewards(r)
    m = _array("matched", matched, r.shape[0])
    if not np.isin(m, (0.0, 1.0)).all():
        raise UserError("matched must be boolean (0/1)")
    k = int(m.sum())
    return Terms(m * r, m, k, float(k), 1.0, 0)


def ips_terms(r, pi, mu, clip: float | None = None) -> Terms:
    r = _rewards(r)
    n = r.shape[0]
    w, wmax, clipped = _weights(_target(pi, n), _propensity(mu, n), clip)
    return Terms(w * r, np.ones(n), n, ess(w), wmax, clipped)


def snips_terms(r, pi, mu, clip: float | None = None) -> Terms:
    r = _rewards(r)
    n = r.shape[0]
    w, wmax, clipped = _weights(_target(pi, n), _propensity(mu, n), clip)
    return Terms(w * r, w, n, ess(w), wmax, clipped)


def dr_terms(r, pi, mu, q_logged, q_target_expected, clip: float | None = None) -> Terms:
    r = _rewards(r)
    n = r.shape[0]
    q_log = _array("q_logged", q_logged, n)
    q_tgt = _array("q_target_expected", q_target_expected, n)
    if not (np.isfinite(q_log).all() and np.isfinite(q_tgt).all()):
        raise UserError("the reward model's predictions must be finite")
    w, wmax, clipped = _weights(_target(pi, n), _propensity(mu, n), clip)
    return Terms(q_tgt + w * (r - q_log), np.ones(n), n, ess(w), wmax, clipped)


# ---------------------------------------------------------------------------- estimates


def _cluster_sums(x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    return np.bincount(codes, weights=x, minlength=int(codes.max()) + 1 if codes.size else 0)


def estimate(terms: Terms, clusters=None) -> OPEResult:
    """sum(num) / sum(den) with its cluster-robust (delta-method) 95% CI."""
    codes = _clusters(clusters, len(terms))
    total_den = float(terms.den.sum())
    nan = float("nan")
    if total_den <= 0:
        return OPEResult(nan, nan, nan, nan, terms.n, terms.ess, terms.max_weight, terms.clipped)
    est = float(terms.num.sum()) / total_den
    g_num, g_den = _cluster_sums(terms.num, codes), _cluster_sums(terms.den, codes)
    # clusters without any event that counts (replay: no match) add e_g = 0; they do not
    # count in the small-sample factor G / (G - 1)
    g = int((g_den != 0).sum())
    e = (g_num - est * g_den) / total_den
    se = math.sqrt(g / (g - 1) * float(np.dot(e, e))) if g > 1 else nan
    ci = (est - Z95 * se, est + Z95 * se)
    return OPEResult(est, *ci, se, terms.n, terms.ess, terms.max_weight, terms.clipped)


def replay_estimate(r, matched, clusters=None) -> OPEResult:
    """Replay (Li et al. 2011): mean reward over the events whose logged item is the target
    policy's (deterministic) choice. Unbiased when the logged items are uniformly random
    (use the log's uniform slice); ``n`` is the number of matches."""
    return estimate(replay_terms(r, matched), clusters)


def ips_estimate(r, pi, mu, clusters=None, clip: float | None = None) -> OPEResult:
    """Inverse propensity scoring: mean of w * r with w = pi / mu.

    Unbiased with exact propensities and pi > 0 only where mu > 0. With ``clip``, weights
    above it are set to it (``clipped`` counts them): this trades variance for bias, and
    since rewards are non-negative the clipped estimate is biased **downward**.
    """
    return estimate(ips_terms(r, pi, mu, clip), clusters)


def snips_estimate(r, pi, mu, clusters=None, clip: float | None = None) -> OPEResult:
    """Self-normalised IPS: sum(w r) / sum(w). Slightly biased (consistent), usually much
    lower variance than IPS under heavy weights; SE by the delta method over clusters."""
    return estimate(snips_terms(r, pi, mu, clip), clusters)


def dr_estimate(
    r, pi, mu, q_logged, q_target_expected, clusters=None, clip: float | None = None
) -> OPEResult:
    """Doubly robust: mean of q_hat(x, pi) + w (r - q_hat(x, a_logged)).

    ``q_logged`` is the reward model's prediction for the logged item at its position and
    ``q_target_expected`` = sum_a pi(a | x, k) q_hat(x, a, k) at that slot. Unbiased if either
    the propensities or the reward model are right; with an exact reward model and
    deterministic rewards the error is zero whatever the weights.
    """
    return estimate(dr_terms(r, pi, mu, q_logged, q_target_expected, clip), clusters)


def paired_lift(policy: Terms, baseline: Terms, clusters=None) -> PairedLift:
    """Relative lift est(policy) / est(baseline) - 1 computed on the same logged exposures.

    Both estimates are ratios of per-exposure sums; the delta method linearises the lift per
    cluster, e_g = (A_g - a D_g) / (sum D_a b) - a (B_g - b E_g) / (sum E_b b^2), so the
    covariance of the two estimates (same users, same events) enters the variance.
    """
    n = len(policy)
    if len(baseline) != n:
        raise UserError(
            f"paired lift: the two policies' terms have lengths {n} and {len(baseline)} "
            "(mismatched lengths)"
        )
    codes = _clusters(clusters, n)
    nan = float("nan")
    da, db = float(policy.den.sum()), float(baseline.den.sum())
    if da <= 0 or db <= 0:
        return PairedLift(nan, nan, nan, nan, nan, nan, n)
    a, b = float(policy.num.sum()) / da, float(baseline.num.sum()) / db
    if b == 0:
        return PairedLift(nan, nan, nan, nan, a, b, n)
    ea = (_cluster_sums(policy.num, codes) - a * _cluster_sums(policy.den, codes)) / da
    eb = (_cluster_sums(baseline.num, codes) - b * _cluster_sums(baseline.den, codes)) / db
    e = ea / b - a * eb / b**2
    used = (_cluster_sums(policy.den, codes) != 0) | (_cluster_sums(baseline.den, codes) != 0)
    g = int(used.sum())
    se = math.sqrt(g / (g - 1) * float(np.dot(e, e))) if g > 1 else nan
    lift = a / b - 1
    return PairedLift(lift, lift - Z95 * se, lift + Z95 * se, se, a, b, n)


# ---------------------------------------------------------------------------- diagnostics


def diagnostics(name: str, result: OPEResult, n_events: int | None = None) -> list[str]:
    """Human-readable warnings about an estimate (thresholds: the module constants)."""
    out = []
    if name == "replay":
        if result.n < MIN_MATCHES:
            out.append(f"replay: only {result.n:,} matched events")
    else:
        total = n_events if n_events is not None else result.n
        if result.ess < MIN_ESS or result.ess < MIN_ESS_FRACTION * total:
            out.append(f"{name}: effective sample size {result.ess:,.0f} of {total:,}")
        if result.max_weight > MAX_WEIGHT:
            out.append(f"{name}: max weight {result.max_weight:,.0f}")
        if result.clipped:
            out.append(f"{name}: {result.clipped:,} weights clipped (estimate biased downward)")
    if not math.isfinite(result.estimate):
        out.append(f"{name}: no estimate (no usable events)")
    elif not math.isfinite(result.se):
        out.append(f"{name}: no standard error (fewer than two clusters)")
    return out
