"""Two-arm tests of one metric: Welch t for means, delta-method z for ratios, with CUPED.

- :func:`mean_test`: Welch t for the difference of per-user means (optionally CUPED).
- :func:`ratio_test`: ratio metrics such as CTR = sum(clicks) / sum(impressions),
  randomised by user and analysed by impression, with the delta-method variance
  (Deng et al. 2018) and optional CUPED on the linearised ratio.

Both give a :class:`LiftResult` with the difference, the relative lift and its
delta-method CI. Degenerate data (an empty arm, zero variance, a control mean of 0) gives
NaN fields rather than exceptions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from abtest.stats.estimates import quad_form, ratio_gradient
from abtest.stats.guards import NAN, check_prob, require, safe_div, safe_sqrt
from abtest.stats.moments import Moments


@dataclass(frozen=True)
class LiftResult:
    """Treatment versus control for one metric.

    ``control`` and ``treatment`` are the (CUPED-adjusted when ``cuped``) point estimates;
    ``diff`` = treatment - control with CI [abs_ci_low, abs_ci_high]; ``lift`` =
    treatment / control - 1 with delta-method CI [ci_low, ci_high]; ``p_value`` is the
    two-sided test of diff = 0 with test ``statistic`` (t for means with Welch ``df``, z with
    ``df`` = inf for ratios); ``theta`` is the CUPED coefficient (0 without CUPED).
    """

    control: float
    treatment: float
    diff: float
    diff_se: float
    lift: float
    lift_se: float
    ci_low: float
    ci_high: float
    abs_ci_low: float
    abs_ci_high: float
    statistic: float
    df: float
    p_value: float
    cuped: bool
    theta: float
    n_control: int
    n_treatment: int
    alpha: float

    @property
    def significant(self) -> bool:
        """p < alpha (False when the p-value is NaN)."""
        return bool(self.p_value < self.alpha)


def mean_test(
    control: Moments, treatment: Moments, *, cuped: bool = False, alpha: float = 0.05
) -> LiftResult:
    """Welch t-test for the difference of per-user means of column 0.

    With ``cuped``, column 1 is the pre-period covariate x: theta = cov(y, x) / var(x) from
    the within-arm co-moments of both arms pooled, and each arm's mean becomes
    mean(y) - theta * (mean(x) in the arm - mean(x) over both arms). The degrees of freedom
    are Welch-Satterthwaite's on the adjusted per-arm variances.
    """
    return _compare(control, treatment, ratio=False, cuped=cuped, alpha=alpha)


def ratio_test(
    control: Moments, treatment: Moments, *, cuped: bool = False, alpha: float = 0.05
) -> LiftResult:
    """z-test for a ratio metric sum(col 0) / sum(col 1), e.g. CTR = clicks / impressions.

    Users are the randomisation unit, so the variance of each arm's ratio comes from the
    delta method over per-user (num, den) pairs (Deng et al. 2018), not from a binomial
    over impressions. With ``cuped``, columns 2 and 3 are the pre-period num and den: both
    the metric and the pre-period ratio are linearised per arm and theta is the pooled
    regression coefficient of one on the other (Deng's CUPED for ratio metrics).
    """
    return _compare(control, treatment, ratio=True, cuped=cuped, alpha=alpha)


@dataclass
class _Linearised:
    """Per arm: the metric and its gradient; with CUPED, the covariate and its gradient."""

    values: list[float]
    grads: list[np.ndarray]
    pres: list[float]
    pre_grads: list[np.ndarray]


def _compare(
    control: Moments, treatment: Moments, *, ratio: bool, cuped: bool, alpha: float
) -> LiftResult:
    check_prob(alpha, "alpha")
    need = (2 if ratio else 1) * (2 if cuped else 1)
    for name, m in (("control", control), ("treatment", treatment)):
        require(isinstance(m, Moments), name, "a Moments", type(m).__name__)
        require(
            m.k >= need,
            f"{name} columns",
            f">= {need} for {'ratio' if ratio else 'mean'}_test(cuped={cuped})",
            m.k,
        )
    with np.errstate(all="ignore"):  # degenerate or huge data: NaN/inf fields, no warnings
        arms = [m.take(range(need)) for m in (control, treatment)]
        covs = [m.cov() for m in arms]
        lin = _linearise(arms, ratio=ratio, cuped=cuped)
        theta = _cuped_adjust(arms, covs, lin, ratio=ratio) if cuped else 0.0
        var_c, var_t = (
            np.float64(quad_form(g, s, m.n)) for g, s, m in zip(lin.grads, covs, arms, strict=True)
        )
        c, t = (np.float64(v) for v in lin.values)  # overflow gives inf, never OverflowError
        n_c, n_t = arms[0].n, arms[1].n
        return _lift_result(
            c, t, var_c, var_t, n_c, n_t, ratio=ratio, cuped=cuped, theta=theta, alpha=alpha
        )


def _linearise(arms: list[Moments], *, ratio: bool, cuped: bool) -> _Linearised:
    lin = _Linearised([], [], [], [])
    for m in arms:
        if ratio:
            value, grad = ratio_gradient(m, 0, 1)
        else:
            value = float(m.mean[0]) if m.n else NAN
            grad = np.eye(m.k)[0]
        lin.values.append(value)
        lin.grads.append(grad)
        if cuped:
            pre, pre_grad = ratio_gradient(m, 2, 3) if ratio else (float(m.mean[1]), np.eye(m.k)[1])
            lin.pres.append(pre)
            lin.pre_grads.append(pre_grad)
    return lin


def _cuped_adjust(
    arms: list[Moments], covs: list[np.ndarray], lin: _Linearised, *, ratio: bool
) -> float:
    """Adjust ``lin``'s values and gradients in place by the pooled theta; returns theta."""
    theta = _pooled_theta(arms, covs, lin.grads, lin.pre_grads)
    if theta != 0.0:
        n_total = arms[0].n + arms[1].n
        if ratio:
            pre_pooled = safe_div(
                sum(m.n * m.mean[2] for m in arms), sum(m.n * m.mean[3] for m in arms)
            )
        else:
            pre_pooled = safe_div(sum(m.n * m.mean[1] for m in arms), n_total)
        pairs = zip(lin.values, lin.pres, strict=True)
        lin.values = [v - theta * (p - pre_pooled) for v, p in pairs]
        lin.grads = [g - theta * h for g, h in zip(lin.grads, lin.pre_grads, strict=True)]
    return theta


def _pooled_theta(
    arms: list[Moments],
    covs: list[np.ndarray],
    grads: list[np.ndarray],
    pre_grads: list[np.ndarray],
) -> float:
    """cov(metric, covariate) / var(covariate) of the linearised per-user values, pooled
    within arms (so the treatment effect does not leak into theta); 0 when undefined."""
    num = den = 0.0
    for m, s, g, h in zip(arms, covs, grads, pre_grads, strict=True):
        if m.n < 2:
            continue
        num += (m.n - 1) * quad_form(g, s, 1, h)
        den += (m.n - 1) * quad_form(h, s, 1)
    theta = safe_div(num, den) if den > 0 else NAN
    # No usable covariate (no pre-period data, constant covariate): fall back to no adjustment.
    return theta if math.isfinite(theta) else 0.0


def _lift_result(
    c: np.float64,
    t: np.float64,
    var_c: np.float64,
    var_t: np.float64,
    n_c: int,
    n_t: int,
    *,
    ratio: bool,
    cuped: bool,
    theta: float,
    alpha: float,
) -> LiftResult:
    """The test of diff = t - c given both arms' estimates and variances, and the lift."""
    diff = t - c
    diff_se = safe_sqrt(var_c + var_t)
    statistic = safe_div(diff, diff_se) if diff_se > 0 else NAN
    if ratio:
        df = math.inf
        crit = float(sps.norm.ppf(1 - alpha / 2))
        p_value = float(2 * sps.norm.sf(abs(statistic)))
    else:
        welch_den = safe_div(var_c**2, n_c - 1) + safe_div(var_t**2, n_t - 1)
        df = safe_div((var_c + var_t) ** 2, welch_den)
        crit = float(sps.t.ppf(1 - alpha / 2, df)) if df > 0 else NAN
        p_value = float(2 * sps.t.sf(abs(statistic), df)) if df > 0 else NAN
    lift = safe_div(t, c) - 1
    lift_se = safe_sqrt(safe_div(var_t, c**2) + safe_div(t**2 * var_c, c**4))
    return LiftResult(
        control=float(c),
        treatment=float(t),
        diff=float(diff),
        diff_se=diff_se,
        lift=lift,
        lift_se=lift_se,
        ci_low=lift - crit * lift_se,
        ci_high=lift + crit * lift_se,
        abs_ci_low=diff - crit * diff_se,
        abs_ci_high=diff + crit * diff_se,
        statistic=statistic,
        df=df,
        p_value=p_value,
        cuped=cuped,
        theta=float(theta),
        n_control=n_c,
        n_treatment=n_t,
        alpha=float(alpha),
    )
