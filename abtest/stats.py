"""The statistics engine: pure functions over mergeable aggregates, typed frozen results.

Every test works on :class:`Moments` (user count, column means and the matrix of centred
co-moments), never on event rows, so per-shard or per-day aggregates merge exactly and the
same numbers come out however the data was split.

- :func:`mean_test`: Welch t for the difference of per-user means (optionally CUPED).
- :func:`ratio_test`: ratio metrics such as CTR = sum(clicks) / sum(impressions),
  randomised by user and analysed by impression, with the delta-method variance
  (Deng et al. 2018) and optional CUPED on the linearised ratio.
- Both give a :class:`LiftResult` with the relative lift and its delta-method CI.
- :func:`srm_test`: sample-ratio mismatch (chi-square goodness of fit).
- :func:`adjust_p_values`: Benjamini-Hochberg and Holm across a family of tests.
- :func:`bootstrap_lift_ci`: percentile bootstrap of the lift, as a cross-check.
- :func:`msprt_p_values`: always-valid p-values for repeated looks (Johari et al. 2017).
- :func:`mde`, :func:`power_at`, :func:`required_users`: power analysis.

Degenerate data (an empty arm, zero variance, a control mean of 0) gives NaN fields rather
than exceptions; bad arguments raise :class:`~core.errors.UserError` with a message of the
form ``"<what>: must be <condition>, got <value>"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

from core.errors import UserError

SRM_THRESHOLD = 0.001
NAN = float("nan")


def _require(ok: bool, what: str, must: str, got: object) -> None:
    """The one input check: raise ``UserError("<what>: must be <must>, got <got>")``."""
    if not ok:
        raise UserError(f"{what}: must be {must}, got {got}")


def _check_prob(value: float, what: str) -> None:
    _require(
        isinstance(value, int | float | np.floating) and 0 < value < 1,
        what,
        "a number in (0, 1)",
        repr(value),
    )


def _div(a: float, b: float) -> float:
    """a / b as a float; NaN when b is 0 or not finite (no warnings, no ZeroDivisionError)."""
    a, b = float(a), float(b)
    if b == 0 or not math.isfinite(b):
        return NAN
    return a / b


def _sqrt(v: float) -> float:
    return math.sqrt(v) if v >= 0 else NAN  # NaN >= 0 is False, so NaN stays NaN


# --------------------------------------------------------------------------- aggregates


@dataclass(frozen=True, eq=False)
class Moments:
    """n users; column means (k,) and the k x k matrix of co-moments (sums of centred products).

    Exactly mergeable (Chan et al. parallel update), so shards, days or segments can be
    aggregated separately and combined with :meth:`merge` (or ``+``).
    """

    n: int
    mean: np.ndarray
    comoment: np.ndarray

    def __post_init__(self) -> None:
        n = self.n
        _require(
            isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 0,
            "n",
            "an integer >= 0",
            repr(n),
        )
        mean = np.array(self.mean, dtype=float)
        _require(
            mean.ndim == 1 and mean.size >= 1,
            "mean",
            "a 1-D array with at least one column",
            f"shape {mean.shape}",
        )
        k = mean.size
        comoment = np.array(self.comoment, dtype=float)
        _require(comoment.shape == (k, k), "comoment", f"a {k} x {k} matrix", comoment.shape)
        mean.flags.writeable = False
        comoment.flags.writeable = False
        object.__setattr__(self, "n", int(n))
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "comoment", comoment)

    @property
    def k(self) -> int:
        """Number of columns."""
        return self.mean.size

    @classmethod
    def empty(cls, k: int) -> Moments:
        """No users yet, k columns: the identity of :meth:`merge`."""
        _require(isinstance(k, int | np.integer) and k >= 1, "k", "an integer >= 1", repr(k))
        return cls(0, np.zeros(k), np.zeros((k, k)))

    @classmethod
    def from_array(cls, x: np.ndarray) -> Moments:
        """Moments of an (n, k) array: one row per user, one column per quantity."""
        x = np.asarray(x, dtype=float)
        _require(
            x.ndim == 2 and x.shape[1] >= 1, "x", "an (n, k) array with k >= 1", f"shape {x.shape}"
        )
        if x.shape[0] == 0:
            return cls.empty(x.shape[1])
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: inf, no warning
            mean = x.mean(axis=0)
            centred = x - mean
            # a plain reduction over users, not BLAS: BLAS rounding depends on the arrays'
            # memory alignment, and the same data must give the same report bit for bit
            comoment = (centred[:, :, None] * centred[:, None, :]).sum(axis=0)
            return cls(x.shape[0], mean, comoment)

    @classmethod
    def from_columns(cls, *cols: np.ndarray) -> Moments:
        """Moments of per-user columns of equal length, e.g. ``(clicks, impressions)``."""
        _require(len(cols) >= 1, "columns", "at least one array", len(cols))
        arrays = [np.asarray(c, dtype=float) for c in cols]
        shapes = [a.shape for a in arrays]
        _require(
            all(a.ndim == 1 for a in arrays) and len(set(shapes)) == 1,
            "columns",
            "1-D arrays of the same length",
            f"shapes {shapes}",
        )
        return cls.from_array(np.column_stack(arrays))

    def merge(self, other: Moments) -> Moments:
        """The moments of the union of both user sets (exact up to rounding)."""
        _require(isinstance(other, Moments), "other", "a Moments", type(other).__name__)
        _require(other.k == self.k, "moments", f"of {self.k} columns to merge", f"{other.k}")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: inf, no warning
            delta = other.mean - self.mean
            mean = self.mean + delta * (other.n / n)
            outer = np.outer(delta, delta) * (self.n * other.n / n)
            comoment = self.comoment + other.comoment + outer
        return Moments(n, mean, comoment)

    __add__ = merge

    def take(self, columns: Sequence[int]) -> Moments:
        """The moments of a subset of the columns (in the given order)."""
        idx = list(columns)
        _require(
            len(idx) >= 1 and all(-self.k <= i < self.k for i in idx),
            "columns",
            f"indices into {self.k} columns",
            idx,
        )
        return Moments(self.n, self.mean[idx], self.comoment[np.ix_(idx, idx)])

    def cov(self) -> np.ndarray:
        """Sample covariance matrix (ddof=1); all NaN when n < 2."""
        if self.n < 2:
            return np.full((self.k, self.k), NAN)
        return self.comoment / (self.n - 1)


@dataclass(frozen=True)
class Estimate:
    """A per-arm point estimate and the variance of that estimate (se**2)."""

    value: float
    variance: float
    n: int

    @property
    def se(self) -> float:
        return _sqrt(self.variance)


def mean_estimate(m: Moments, column: int = 0) -> Estimate:
    """Mean of one column per user and the variance of that mean, s² / n."""
    one = m.take([column])
    if one.n == 0:
        return Estimate(NAN, NAN, 0)
    return Estimate(float(one.mean[0]), _div(one.cov()[0, 0], one.n), one.n)


def ratio_estimate(m: Moments, num: int = 0, den: int = 1) -> Estimate:
    """sum(num) / sum(den) and its delta-method variance (users are the independent units)."""
    pair = m.take([num, den])
    value, grad = _ratio_gradient(pair, 0, 1)
    return Estimate(value, _quad(grad, pair.cov(), pair.n), pair.n)


def _ratio_gradient(m: Moments, num: int, den: int) -> tuple[float, np.ndarray]:
    """Ratio of means and its gradient with respect to all k column means."""
    grad = np.zeros(m.k)
    if m.n == 0:
        return NAN, grad + NAN
    mu_num, mu_den = float(m.mean[num]), float(m.mean[den])
    value = _div(mu_num, mu_den)
    grad[num] = _div(1.0, mu_den)
    grad[den] = -_div(value, mu_den)
    return value, grad


def _quad(a: np.ndarray, cov: np.ndarray, n: int, b: np.ndarray | None = None) -> float:
    """a' cov b / n: the (co)variance of two linearised estimates."""
    b = a if b is None else b
    with np.errstate(invalid="ignore", over="ignore"):
        return _div(float(sum(a[i] * cov[i, j] * b[j] for i in range(a.size)
                                  for j in range(b.size))), n)  # fmt: skip


# --------------------------------------------------------------------------- two-arm tests


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


def _compare(
    control: Moments, treatment: Moments, *, ratio: bool, cuped: bool, alpha: float
) -> LiftResult:
    _check_prob(alpha, "alpha")
    need = (2 if ratio else 1) * (2 if cuped else 1)
    for name, m in (("control", control), ("treatment", treatment)):
        _require(isinstance(m, Moments), name, "a Moments", type(m).__name__)
        _require(
            m.k >= need,
            f"{name} columns",
            f">= {need} for {'ratio' if ratio else 'mean'}_test(cuped={cuped})",
            m.k,
        )
    with np.errstate(all="ignore"):  # degenerate or huge data: NaN/inf fields, no warnings
        arms = [m.take(range(need)) for m in (control, treatment)]
        covs = [m.cov() for m in arms]
        values, grads, pres, pre_grads = [], [], [], []
        for m in arms:
            if ratio:
                value, grad = _ratio_gradient(m, 0, 1)
            else:
                value = float(m.mean[0]) if m.n else NAN
                grad = np.eye(m.k)[0]
            values.append(value)
            grads.append(grad)
            if cuped:
                pre, pre_grad = (
                    _ratio_gradient(m, 2, 3) if ratio else (float(m.mean[1]), np.eye(m.k)[1])
                )
                pres.append(pre)
                pre_grads.append(pre_grad)

        theta = 0.0
        if cuped:
            theta = _pooled_theta(arms, covs, grads, pre_grads)
            if theta != 0.0:
                n_total = arms[0].n + arms[1].n
                if ratio:
                    pre_pooled = _div(
                        sum(m.n * m.mean[2] for m in arms), sum(m.n * m.mean[3] for m in arms)
                    )
                else:
                    pre_pooled = _div(sum(m.n * m.mean[1] for m in arms), n_total)
                values = [v - theta * (p - pre_pooled) for v, p in zip(values, pres, strict=True)]
                grads = [g - theta * h for g, h in zip(grads, pre_grads, strict=True)]

        var_c, var_t = (
            np.float64(_quad(g, s, m.n)) for g, s, m in zip(grads, covs, arms, strict=True)
        )
        c, t = (np.float64(v) for v in values)  # overflow gives inf, never OverflowError
        n_c, n_t = arms[0].n, arms[1].n
        diff = t - c
        diff_se = _sqrt(var_c + var_t)
        statistic = _div(diff, diff_se) if diff_se > 0 else NAN
        if ratio:
            df = math.inf
            crit = float(sps.norm.ppf(1 - alpha / 2))
            p_value = float(2 * sps.norm.sf(abs(statistic)))
        else:
            df = _div((var_c + var_t) ** 2, _div(var_c**2, n_c - 1) + _div(var_t**2, n_t - 1))
            crit = float(sps.t.ppf(1 - alpha / 2, df)) if df > 0 else NAN
            p_value = float(2 * sps.t.sf(abs(statistic), df)) if df > 0 else NAN
        lift = _div(t, c) - 1
        lift_se = _sqrt(_div(var_t, c**2) + _div(t**2 * var_c, c**4))
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
        num += (m.n - 1) * _quad(g, s, 1, h)
        den += (m.n - 1) * _quad(h, s, 1)
    theta = _div(num, den) if den > 0 else NAN
    # No usable covariate (no pre-period data, constant covariate): fall back to no adjustment.
    return theta if math.isfinite(theta) else 0.0


# --------------------------------------------------------------------------- SRM


@dataclass(frozen=True)
class SRMResult:
    """Chi-square goodness of fit of observed users per arm against the allocation."""

    statistic: float
    p_value: float
    flagged: bool
    observed_share: Mapping[str, float]
    expected_share: Mapping[str, float]


def srm_test(
    users: Mapping[str, int], expected: Mapping[str, float], *, threshold: float = SRM_THRESHOLD
) -> SRMResult:
    """Sample-ratio mismatch: flagged when p < threshold (0.001).

    ``expected`` holds each arm's allocation; it is normalised to sum to 1, since the arms
    may leave part of the traffic to a holdout.
    """
    _require(
        set(users) == set(expected) and len(users) >= 2,
        "users",
        f"counts for the same >= 2 arms as expected ({sorted(expected)})",
        sorted(users),
    )
    arms = sorted(expected)
    for arm in arms:
        count = users[arm]
        _require(
            isinstance(count, int | np.integer) and not isinstance(count, bool) and count >= 0,
            f"users[{arm!r}]",
            "an integer >= 0",
            repr(count),
        )
        share = expected[arm]
        _require(
            isinstance(share, int | float | np.number) and math.isfinite(share) and share > 0,
            f"expected[{arm!r}]",
            "a number > 0",
            repr(share),
        )
    _check_prob(threshold, "threshold")
    observed = np.array([users[a] for a in arms], dtype=float)
    shares = np.array([expected[a] for a in arms], dtype=float)
    shares /= shares.sum()
    total = observed.sum()
    expected_share = dict(zip(arms, shares.tolist(), strict=True))
    if total == 0:
        return SRMResult(NAN, NAN, False, dict.fromkeys(arms, NAN), expected_share)
    statistic, p_value = sps.chisquare(observed, shares * total)
    return SRMResult(
        float(statistic),
        float(p_value),
        bool(p_value < threshold),
        dict(zip(arms, (observed / total).tolist(), strict=True)),
        expected_share,
    )


# --------------------------------------------------------------------------- multiplicity


def adjust_p_values(
    p: Sequence[float] | np.ndarray, method: Literal["bh", "holm"] = "bh"
) -> np.ndarray:
    """Adjusted p-values (Benjamini-Hochberg FDR or Holm FWER) in the input order.

    NaN entries (tests that could not be computed) stay NaN and are not counted in the
    family size.
    """
    _require(method in ("bh", "holm"), "method", "'bh' or 'holm'", repr(method))
    p = np.array(p, dtype=float)
    _require(p.ndim == 1, "p", "a 1-D sequence", f"shape {p.shape}")
    ok = ~np.isnan(p)
    bad = p[ok][(p[ok] < 0) | (p[ok] > 1)]
    _require(bad.size == 0, "p", "p-values in [0, 1] or NaN", bad[:3].tolist())
    out = np.full(p.shape, NAN)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    ranked = q[order]
    i = np.arange(1, m + 1)
    if method == "bh":
        adjusted = np.minimum.accumulate((ranked * m / i)[::-1])[::-1]
    else:
        adjusted = np.maximum.accumulate(ranked * (m - i + 1))
    result = np.empty(m)
    result[order] = np.clip(adjusted, 0.0, 1.0)
    out[ok] = result
    return out


# --------------------------------------------------------------------------- bootstrap


def bootstrap_lift_ci(
    control_cols: Sequence[np.ndarray] | np.ndarray,
    treatment_cols: Sequence[np.ndarray] | np.ndarray,
    *,
    ratio: bool,
    n_boot: int = 1000,
    alpha: float = 0.05,
    rng: np.random.Generator,
) -> tuple[float, float]:
    """Percentile bootstrap CI of the relative lift, resampling users within each arm.

    Each arm is a sequence of per-user columns, or an (n, k) array with one row per user;
    columns as for the tests: ``(y,)`` for a mean, ``(num, den)`` for a ratio (extra columns
    are ignored; no CUPED). A cross-check of the delta-method CI, not a replacement: it needs
    the per-user rows rather than aggregates.
    """
    _require(isinstance(rng, np.random.Generator), "rng", "a numpy Generator", type(rng).__name__)
    _require(isinstance(n_boot, int) and n_boot >= 1, "n_boot", "an integer >= 1", repr(n_boot))
    _check_prob(alpha, "alpha")
    need = 2 if ratio else 1
    arms = [
        _stack(control_cols, "control_cols", need),
        _stack(treatment_cols, "treatment_cols", need),
    ]
    c, t = (_boot_metric(x, ratio, n_boot, rng) for x in arms)
    with np.errstate(divide="ignore", invalid="ignore"):
        lifts = t / c - 1
    lifts = lifts[np.isfinite(lifts)]
    if lifts.size == 0:
        return NAN, NAN
    low, high = np.quantile(lifts, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def _stack(cols: Sequence[np.ndarray] | np.ndarray, what: str, need: int) -> np.ndarray:
    if isinstance(cols, np.ndarray) and cols.ndim == 2:
        x = cols.astype(float)
    else:
        arrays = [np.asarray(c, dtype=float) for c in cols]
        shapes = [a.shape for a in arrays]
        _require(
            all(a.ndim == 1 for a in arrays) and len(set(shapes)) <= 1,
            what,
            "1-D arrays of the same length",
            f"shapes {shapes}",
        )
        x = np.column_stack(arrays) if arrays else np.empty((0, 0))
    _require(x.shape[1] >= need, what, f"at least {need} column(s)", x.shape[1])
    return x[:, :need]


def _boot_metric(x: np.ndarray, ratio: bool, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n = x.shape[0]
    if n == 0:
        return np.full(n_boot, NAN)
    out = np.empty(n_boot)
    # Index matrices of about 2M entries keep memory flat for large arms.
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        sums = x[rng.integers(0, n, size=(b, n))].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[start : start + b] = sums[:, 0] / sums[:, 1] if ratio else sums[:, 0] / n
    return out


# --------------------------------------------------------------------------- sequential


def msprt_p_values(
    diffs: Sequence[float] | np.ndarray, variances: Sequence[float] | np.ndarray, *, tau2: float
) -> np.ndarray:
    """Always-valid p-values for looks k = 1..K (mixture SPRT, Johari et al. 2017).

    At look k, with estimated difference d_k and its variance V_k, the mixture likelihood
    ratio against a N(0, tau2) prior on the effect is
    Λ_k = sqrt(V_k / (V_k + τ²)) · exp(τ² d_k² / (2 V_k (V_k + τ²))), and
    p_k = min(p_{k-1}, 1 / Λ_k) with p_0 = 1. Rejecting when p_k < alpha at any look keeps
    the type-I error at most alpha however often one peeks. A look whose variance is not a
    positive number (no data yet) leaves the p-value unchanged.
    """
    d = np.asarray(diffs, dtype=float)
    v = np.asarray(variances, dtype=float)
    _require(
        d.ndim == 1 and d.shape == v.shape,
        "diffs and variances",
        "1-D sequences of the same length",
        f"shapes {d.shape} and {v.shape}",
    )
    _require(
        isinstance(tau2, int | float | np.floating) and math.isfinite(tau2) and tau2 > 0,
        "tau2",
        "a number > 0",
        repr(tau2),
    )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_lr = 0.5 * np.log(v / (v + tau2)) + tau2 * d**2 / (2 * v * (v + tau2))
        inv_lr = np.exp(-log_lr)
    usable = (v > 0) & np.isfinite(inv_lr)
    return np.minimum.accumulate(np.where(usable, np.minimum(inv_lr, 1.0), 1.0))


def msprt_tau2(
    final_variance: float,
    *,
    expected_effect: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """A default mixing variance τ² for :func:`msprt_p_values`.

    With an ``expected_effect`` (absolute difference) τ² = expected_effect², i.e. the prior's
    spread is the effect one hopes to see. Otherwise the effect is taken to be the MDE of
    the planned final look, d* = (z_{1-α/2} + z_power)·sqrt(V_N), and τ² = d*² - V_N, the
    value that maximises Λ_N at d = d* (so the test is tuned to be most sensitive where the
    fixed-horizon design has its power).
    """
    if expected_effect is not None:
        _require(
            math.isfinite(expected_effect) and expected_effect != 0,
            "expected_effect",
            "a finite non-zero number",
            repr(expected_effect),
        )
        return float(expected_effect) ** 2
    _require(
        isinstance(final_variance, int | float | np.floating)
        and math.isfinite(final_variance)
        and final_variance > 0,
        "final_variance",
        "a number > 0",
        repr(final_variance),
    )
    _check_prob(alpha, "alpha")
    _check_prob(power, "power")
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return float((z**2 - 1) * final_variance)


# --------------------------------------------------------------------------- power


def mde(control_mean: float, diff_se: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Relative minimum detectable effect: (z_{1-α/2} + z_power) · se / |control|."""
    _check_prob(alpha, "alpha")
    _check_prob(power, "power")
    _require(not diff_se < 0, "diff_se", ">= 0", repr(diff_se))
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return _div(z * diff_se, abs(control_mean))


def power_at(
    effect_rel: float, control_mean: float, diff_se: float, *, alpha: float = 0.05
) -> float:
    """Power of the two-sided level-alpha z-test to detect a relative lift ``effect_rel``.

    Both rejection tails are counted, so power_at(0) = alpha; at the MDE the wrong-sign tail
    adds under 1e-5 to the nominal power.
    """
    _check_prob(alpha, "alpha")
    _require(not diff_se < 0, "diff_se", ">= 0", repr(diff_se))
    x = _div(abs(effect_rel * control_mean), diff_se)
    z = sps.norm.ppf(1 - alpha / 2)
    return float(sps.norm.cdf(x - z) + sps.norm.cdf(-x - z))


def required_users(
    effect_rel: float, control_mean: float, sd: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Users per arm (two equal arms) to detect a relative lift with the given power.

    ``sd`` is the per-user standard deviation of the metric: for a ratio metric, that of its
    linearisation, i.e. ``sqrt(n) * se`` of :func:`ratio_estimate`.
    """
    _check_prob(alpha, "alpha")
    _check_prob(power, "power")
    _require(math.isfinite(sd) and sd > 0, "sd", "a number > 0", repr(sd))
    effect = abs(effect_rel * control_mean)
    _require(math.isfinite(effect) and effect > 0, "effect_rel * control_mean", "non-zero", effect)
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return math.ceil(2 * (z * sd / effect) ** 2)
