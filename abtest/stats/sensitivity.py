"""Users needed per design, by re-randomisation: A/B, A/B with CUPED, interleaving.

How many users does each design need to detect the true effect with a given power? The
answer is measured by simulating the experiment many times on a known population, and
cross-checked against the normal-approximation formula.

- :class:`PotentialOutcomes`: per user of a scenario, a metric's numerator and denominator
  under control (y0, n0) and under treatment (y1, n1), e.g. from the truth twin (every user
  served by each arm), and the pre-period covariate for CUPED. The true effect is the
  population relative lift (Σy1 / Σn1) / (Σy0 / Σn0) - 1; for a per-user mean metric the
  denominators are 1 and this is mean(y1) / mean(y0) - 1.
- :func:`ab_power`: draw ``n_users`` users, split them into two random arms of n // 2 and
  n - n // 2, give each user its arm's outcome, and run the analysis's own test
  (:func:`~abtest.stats.lift.ratio_test` for a ratio, :func:`~abtest.stats.lift.mean_test`
  for a mean, on :class:`~abtest.stats.moments.Moments`, CUPED as the analysis does it).
  The users are drawn without replacement when n_users <= the population (at n_users = N
  only the split is random: the randomisation distribution), with replacement beyond it.
- :func:`interleaving_power`: resample ``n_users`` users with replacement from one
  interleaved run's per-user credits (t, c) and run
  :func:`~abtest.stats.preference.preference_share` on each resample.
- :func:`users_needed`: the smallest n in [lo, hi] whose power reaches the target, on a
  geometric grid, interpolated on log n; :func:`ab_users_needed` and
  :func:`interleaving_users_needed` run it with the analytic cross-check
  (:func:`analytic_users`, :func:`analytic_interleaving_users`) attached.

Power is the share of simulated experiments that are significant at ``alpha`` *with the
sign of the true effect* (a significant result of the wrong sign is not a detection). When
the true effect is exactly 0 there is nothing to detect and every significant result is
counted: the "power" is then the false-positive rate, about alpha.

Interleaving estimates a different estimand: the preference, whether users engage more
with the treatment's items when both are shown side by side, not the lift an A/B test
measures. Its power is counted for agreeing with the true A/B lift's sign (``sign``); where
the preference and the lift disagree, interleaving never "detects" the effect, however
many users it has.

All user counts are totals over the experiment: both A/B arms together (so twice
:func:`~abtest.stats.power.required_users`, which is per arm), and all interleaved users.
Randomness comes only from the ``rng`` passed in.

Sampling: as n_users approaches N, A/B draws without replacement see less variation than
the test's variance assumes (Neyman's finite-population term), so their power there is a
little above the analytic formula's; interleaving always resamples with replacement (with
one run there is no split to re-randomise), which has no such gain. The analytic formulas
ignore the finite population and use z for Welch's t.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from abtest.stats.guards import NAN, check_prob, require, safe_div
from abtest.stats.lift import LiftResult, mean_test, ratio_test
from abtest.stats.moments import Moments
from abtest.stats.preference import check_credits, share_from_moments

# index matrices of about this many entries per batch keep memory flat for large draws
_BATCH = 2_000_000


@dataclass(frozen=True, eq=False)
class PotentialOutcomes:
    """Per user: a metric under control (y0 / n0) and treatment (y1 / n1), and a covariate.

    ``ratio``: the metric is sum(y) / sum(n) tested by the delta method (e.g. CTR: clicks
    over impressions); otherwise it is the per-user mean of y tested by Welch's t, and the
    denominators are all 1. ``x`` is the pre-period value of the same metric (the CUPED
    covariate: per user, 0 without pre-period traffic), with ``x_den`` its denominator for a
    ratio (pre-period impressions). Build one with :meth:`ratio_metric` or
    :meth:`mean_metric`.
    """

    y0: np.ndarray
    n0: np.ndarray
    y1: np.ndarray
    n1: np.ndarray
    ratio: bool
    x: np.ndarray | None = None
    x_den: np.ndarray | None = None

    @classmethod
    def ratio_metric(
        cls,
        y0: object,
        n0: object,
        y1: object,
        n1: object,
        *,
        x: object | None = None,
        x_den: object | None = None,
    ) -> PotentialOutcomes:
        """A ratio metric sum(y) / sum(n); CUPED covariate x / x_den (both or neither)."""
        return cls(y0, n0, y1, n1, ratio=True, x=x, x_den=x_den)

    @classmethod
    def mean_metric(cls, y0: object, y1: object, *, x: object | None = None) -> PotentialOutcomes:
        """A per-user mean metric (denominators 1); CUPED covariate x."""
        ones = np.ones(np.shape(y0))
        return cls(y0, ones, y1, ones, ratio=False, x=x)

    def __post_init__(self) -> None:
        names = ("y0", "n0", "y1", "n1", "x", "x_den")
        given = [k for k in names if k in names[:4] or getattr(self, k) is not None]
        arrays = {k: np.array(getattr(self, k), dtype=float) for k in given}
        shapes = {k: a.shape for k, a in arrays.items()}
        require(
            len(set(shapes.values())) == 1 and arrays["y0"].ndim == 1 and arrays["y0"].size >= 2,
            "potential outcomes",
            "1-D arrays of the same length >= 2",
            f"shapes {shapes}",
        )
        for k, a in arrays.items():
            bad = a[~np.isfinite(a)]
            require(bad.size == 0, k, "finite numbers", bad[:3].tolist())
        if self.ratio:
            require(
                (self.x is None) == (self.x_den is None),
                "x and x_den",
                "both given or both None for a ratio metric",
                f"x {'None' if self.x is None else 'given'}, "
                f"x_den {'None' if self.x_den is None else 'given'}",
            )
            for k in ("n0", "n1", "x_den"):
                if k in arrays:
                    neg = arrays[k][arrays[k] < 0]
                    require(neg.size == 0, k, "denominators >= 0", neg[:3].tolist())
        else:
            require(self.x_den is None, "x_den", "None for a mean metric", "an array")
            for k in ("n0", "n1"):
                require(bool((arrays[k] == 1).all()), k, "1 for a mean metric", "other values")
        for k, a in arrays.items():
            a.flags.writeable = False
            object.__setattr__(self, k, a)
        object.__setattr__(self, "ratio", bool(self.ratio))

    @property
    def population(self) -> int:
        """N, the number of users."""
        return int(self.y0.size)

    @property
    def control_value(self) -> float:
        """The metric with everyone on the control: Σy0 / Σn0."""
        return safe_div(self.y0.sum(), self.n0.sum())

    @property
    def treatment_value(self) -> float:
        """The metric with everyone on the treatment: Σy1 / Σn1."""
        return safe_div(self.y1.sum(), self.n1.sum())

    @property
    def true_diff(self) -> float:
        """treatment_value - control_value: what the test's difference estimates."""
        return self.treatment_value - self.control_value

    @property
    def true_lift(self) -> float:
        """The population relative lift treatment_value / control_value - 1 (NaN if 0/0)."""
        return safe_div(self.treatment_value, self.control_value) - 1

    def columns(self, arm: int, *, cuped: bool) -> np.ndarray:
        """N x k per-user columns of one arm (0 control, 1 treatment) as the analysis builds
        them: (y, n[, x, x_den]) for a ratio, (y[, x]) for a mean."""
        y, n = (self.y0, self.n0) if arm == 0 else (self.y1, self.n1)
        cols = [y, n] if self.ratio else [y]
        if cuped:
            require(self.x is not None, "x", "a covariate for CUPED", None)
            cols += [self.x, self.x_den] if self.ratio else [self.x]
        return np.column_stack(cols)


@dataclass(frozen=True)
class UsersNeeded:
    """The users (in total) a design needs to reach ``target`` power, by re-randomisation.

    ``n`` is the smallest n whose power reaches ``target``, interpolated on log n between
    the grid points around the crossing of the monotone (isotonic) fit of the measured
    powers; None when even ``hi`` is not enough. ``status`` is ``"found"``,
    ``"at most lo"`` (``lo`` already reaches the target: n = lo) or ``"beyond hi"``;
    ``reason`` says more when it is not ``"found"``. ``grid`` and ``powers`` are the points
    measured (ascending; the search stops once two consecutive points reach the target),
    each from ``reps`` simulated experiments. ``analytic`` is the normal-
    approximation cross-check from the full population's variance (None without an effect
    to detect, or when not given).
    """

    n: float | None
    status: str
    reason: str | None
    grid: tuple[int, ...]
    powers: tuple[float, ...]
    target: float
    reps: int
    lo: int
    hi: int
    analytic: float | None


# ------------------------------------------------------------------------------- draws


def _check_int(value: object, what: str, low: int) -> int:
    require(
        isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= low,
        what,
        f"an integer >= {low}",
        repr(value),
    )
    return int(value)


def _check_outcomes(outcomes: object) -> None:
    require(
        isinstance(outcomes, PotentialOutcomes),
        "outcomes",
        "a PotentialOutcomes",
        type(outcomes).__name__,
    )


def _check_rng(rng: object) -> None:
    require(isinstance(rng, np.random.Generator), "rng", "a numpy Generator", type(rng).__name__)


def _draws(
    rng: np.random.Generator, population: int, n: int, reps: int, *, replace: bool, width: int
) -> Iterator[np.ndarray]:
    """The users of each simulated experiment: (b, n) index arrays, b reps at a time.

    Without replacement each row is a uniformly random ordered sample, so splitting a row
    at any position gives uniformly random arms.
    """
    batch = max(1, _BATCH // (n * width))
    for start in range(0, reps, batch):
        b = min(batch, reps - start)
        if replace:
            yield rng.integers(0, population, size=(b, n))
        else:
            yield np.stack([rng.choice(population, size=n, replace=False) for _ in range(b)])


def _batch_moments(x: np.ndarray, mask: np.ndarray | None = None) -> list[Moments]:
    """The :class:`Moments` of each of b samples, x of shape (b, m, k) (rows with a False
    ``mask`` left out). Centred co-moments as :meth:`Moments.from_array`, but summed by BLAS
    (matmul), so the last bits may differ from it."""
    b, m, k = x.shape
    if mask is None:
        counts = np.full(b, m)
    else:
        counts = mask.sum(axis=1)
        x = x * mask[..., None]
    mean = (np.ones(m) @ x) / np.maximum(counts, 1)[:, None]
    centred = x - mean[:, None, :]
    if mask is not None:
        centred *= mask[..., None]
    comoment = np.matmul(centred.transpose(0, 2, 1), centred)
    return [
        Moments(int(n), mean[r], comoment[r]) if n else Moments.empty(k)
        for r, n in enumerate(counts)
    ]


def _detected(significant: bool, estimate: float, sign: int) -> bool:
    """Significant with the sign of the true effect (any sign when the truth is 0)."""
    return bool(significant and (sign == 0 or np.sign(estimate) == sign))


def _sign_of(value: float) -> int:
    return int(np.sign(value)) if math.isfinite(value) else 0


# -------------------------------------------------------------------------------- A/B


def ab_power(
    outcomes: PotentialOutcomes,
    n_users: int,
    *,
    cuped: bool,
    reps: int = 400,
    alpha: float = 0.05,
    rng: np.random.Generator,
) -> float:
    """Power of an A/B test of ``n_users`` users (two random arms) to detect the true lift.

    Per simulated experiment: draw the users (without replacement when n_users <= N, with
    replacement beyond), control = the first n // 2, treatment = the rest, each user with
    its arm's potential outcome; then the analysis's test: :func:`ratio_test` (delta method)
    for a ratio metric, :func:`mean_test` (Welch) for a mean, with ``cuped`` as the analysis
    applies it (pooled theta on the same metric's pre-period value, and the plain test when
    the drawn users' covariate is constant). Power = the share of the ``reps`` experiments
    significant at ``alpha`` with the sign of the true lift (any sign when it is 0).
    """
    _check_outcomes(outcomes)
    n = _check_int(n_users, "n_users", 4)
    reps = _check_int(reps, "reps", 1)
    check_prob(alpha, "alpha")
    _check_rng(rng)
    cols = [outcomes.columns(a, cuped=bool(cuped)) for a in (0, 1)]
    test: Callable[..., LiftResult] = ratio_test if outcomes.ratio else mean_test
    sign = _sign_of(outcomes.true_diff)
    half = n // 2
    width = cols[0].shape[1]
    population = outcomes.population
    hits = 0
    for idx in _draws(rng, population, n, reps, replace=n > population, width=width):
        # np.take: much faster than fancy indexing for (b, n) index arrays
        ctrl, trt = np.take(cols[0], idx[:, :half], axis=0), np.take(cols[1], idx[:, half:], axis=0)
        if cuped:  # the analysis's rule: CUPED only when the covariate varies
            top = np.maximum(ctrl[..., -1].max(axis=1), trt[..., -1].max(axis=1))
            bottom = np.minimum(ctrl[..., -1].min(axis=1), trt[..., -1].min(axis=1))
            use_cuped = top > bottom
        else:
            use_cuped = np.zeros(idx.shape[0], dtype=bool)
        arms = zip(_batch_moments(ctrl), _batch_moments(trt), use_cuped, strict=True)
        for mc, mt, adj in arms:
            res = test(mc, mt, cuped=bool(adj), alpha=alpha)
            hits += _detected(res.significant, res.diff, sign)
    return hits / reps


def _linearised(y: np.ndarray, n: np.ndarray, ratio: bool) -> np.ndarray:
    """Per user, a ratio's linearisation (y - R·n) / mean(n); a mean's values y."""
    if not ratio:
        return y
    mean_n = n.mean()
    return (y - safe_div(y.sum(), n.sum()) * n) / mean_n if mean_n > 0 else y * NAN


def _z(alpha: float, power: float) -> float:
    return float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))


def analytic_users(
    outcomes: PotentialOutcomes, *, cuped: bool = False, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """Total users (both arms) by the normal approximation, from the full population.

    n = 2 · (z_{1-α/2} + z_power)² · (σ0² + σ1²) / Δ², with Δ the true difference and σa²
    the per-user variance under arm a of the metric's linearisation ((y - R_a·n) / mean(n)
    for a ratio, y for a mean), CUPED-adjusted by the pooled theta when ``cuped``
    (σa² = var(l_a - θ·h), h the covariate's linearisation). With sd² = (σ0² + σ1²) / 2
    this is 2 · :func:`~abtest.stats.power.required_users` (per arm), before rounding up.
    None when there is no effect (Δ = 0 or undefined).
    """
    _check_outcomes(outcomes)
    check_prob(alpha, "alpha")
    check_prob(power, "power")
    o = outcomes
    diff = o.true_diff
    if not (math.isfinite(diff) and diff != 0):
        return None
    lin = [_linearised(o.y0, o.n0, o.ratio), _linearised(o.y1, o.n1, o.ratio)]
    if cuped:
        require(o.x is not None, "x", "a covariate for CUPED", None)
        h = _linearised(o.x, o.x_den, True) if o.ratio else o.x
        var_h = float(np.var(h, ddof=1))
        if var_h > 0 and math.isfinite(var_h):
            theta = sum(float(np.cov(la, h)[0, 1]) for la in lin) / (2 * var_h)
            lin = [la - theta * h for la in lin]
    total_var = sum(float(np.var(la, ddof=1)) for la in lin)
    return 2 * _z(alpha, power) ** 2 * total_var / diff**2


# ------------------------------------------------------------------------ interleaving


def interleaving_power(
    t: object,
    c: object,
    n_users: int,
    *,
    sign: int,
    reps: int = 400,
    alpha: float = 0.05,
    rng: np.random.Generator,
) -> float:
    """Power of an interleaved experiment of ``n_users`` users to agree with the true lift.

    ``t``, ``c``: per user of one interleaved run (every user active in the scenario, also
    those with no credit), the engagement credited to the treatment and to the control.
    Per simulated experiment: resample ``n_users`` users with replacement and run
    :func:`~abtest.stats.preference.preference_share`. Power = the share of the ``reps``
    experiments significant at ``alpha`` whose preference has the sign ``sign`` (+1 the
    treatment, -1 the control: the true A/B lift's sign; 0: any significant result).
    """
    t_arr, c_arr = check_credits(t, c)
    require(t_arr.size >= 1, "t and c", "credits of at least one user", t_arr.size)
    n = _check_int(n_users, "n_users", 2)
    reps = _check_int(reps, "reps", 1)
    check_prob(alpha, "alpha")
    _check_rng(rng)
    require(sign in (-1, 0, 1), "sign", "-1, 0 or 1", repr(sign))
    x = np.column_stack([t_arr, t_arr + c_arr])
    hits = 0
    for idx in _draws(rng, t_arr.size, n, reps, replace=True, width=2):
        sample = np.take(x, idx, axis=0)
        credited = sample[..., 1] > 0
        for m in _batch_moments(sample, credited):
            res = share_from_moments(m, alpha=alpha, n_excluded=n - m.n)
            hits += _detected(res.significant, res.delta, sign)
    return hits / reps


def analytic_interleaving_users(
    t: object, c: object, *, sign: int, alpha: float = 0.05, power: float = 0.8
) -> float | None:
    """Interleaved users by the normal approximation, from the full run.

    n = (z_{1-α/2} + z_power)² · σ² / (share - 1/2)², with share = Σt / Σ(t + c) and σ² the
    per-user variance of its linearisation (t_i - share·s_i) / mean(s) over all users
    (s = t + c; users without credit count, as they do in a sample of n users). None when
    the preference is 1/2 or undefined, or its direction is not ``sign`` (when non-zero).
    """
    t_arr, c_arr = check_credits(t, c)
    require(sign in (-1, 0, 1), "sign", "-1, 0 or 1", repr(sign))
    check_prob(alpha, "alpha")
    check_prob(power, "power")
    s = t_arr + c_arr
    if t_arr.size < 2 or not s.sum() > 0:
        return None
    share = float(t_arr.sum() / s.sum())
    effect = share - 0.5
    if effect == 0 or (sign != 0 and np.sign(effect) != sign):
        return None
    lin = (t_arr - share * s) / s.mean()
    return _z(alpha, power) ** 2 * float(np.var(lin, ddof=1)) / effect**2


# ---------------------------------------------------------------------------- search


def _isotonic(y: list[float]) -> list[float]:
    """The non-decreasing least-squares fit of y (pool adjacent violators, equal weights)."""
    blocks: list[list[float]] = []  # [mean, size]
    for v in y:
        blocks.append([v, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m1, w1), (m2, w2) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2])
    return [m for m, w in blocks for _ in range(int(w))]


def _grid(lo: int, hi: int, factor: float) -> list[int]:
    points, k = [], 0
    while True:
        n = round(lo * factor**k)
        if n >= hi:
            break
        if not points or n > points[-1]:
            points.append(n)
        k += 1
    return [*points, hi]


def users_needed(
    power_fn: Callable[..., float],
    *,
    lo: int,
    hi: int,
    target: float = 0.8,
    reps: int = 400,
    rng: np.random.Generator,
    factor: float = math.sqrt(2),
    analytic: float | None = None,
) -> UsersNeeded:
    """The smallest n in [lo, hi] with ``power_fn(n, reps=reps, rng=rng) >= target``.

    Powers are measured at n = lo, lo·factor, lo·factor², ... (rounded) and hi, ascending,
    stopping once two consecutive points reach the target (one point could be a lucky
    draw). The measured powers are made monotone (isotonic fit, pool adjacent violators) and
    n is interpolated linearly in (log n, power) between the last grid point whose fitted
    power is below the target and the next. ``analytic`` is carried into the result as
    given.

    ``power_fn`` is e.g. ``functools.partial(ab_power, outcomes, cuped=True, alpha=0.05)``.
    """
    require(callable(power_fn), "power_fn", "callable", type(power_fn).__name__)
    lo = _check_int(lo, "lo", 1)
    hi = _check_int(hi, "hi", lo)
    check_prob(target, "target")
    reps = _check_int(reps, "reps", 1)
    _check_rng(rng)
    require(
        isinstance(factor, int | float) and math.isfinite(factor) and factor > 1,
        "factor",
        "a number > 1",
        repr(factor),
    )
    grid: list[int] = []
    powers: list[float] = []
    for n in _grid(lo, hi, factor):
        grid.append(n)
        powers.append(float(power_fn(n, reps=reps, rng=rng)))
        if len(powers) >= 2 and min(powers[-2:]) >= target:
            break  # the isotonic fit then reaches the target too: the crossing is found
    fitted = _isotonic(powers)
    first = next((i for i, p in enumerate(fitted) if p >= target), None)
    if first is None:
        n_needed, status = None, "beyond hi"
        reason = f"beyond hi: power {powers[-1]:.3g} at n = hi = {hi}"
    elif first == 0:
        n_needed, status = float(grid[0]), "at most lo"
        reason = f"at most lo: power {powers[0]:.3g} >= {target:g} already at n = lo = {lo}"
    else:
        a, b = first - 1, first
        frac = (target - fitted[a]) / (fitted[b] - fitted[a])
        log_n = math.log(grid[a]) + frac * (math.log(grid[b]) - math.log(grid[a]))
        n_needed, status, reason = math.exp(log_n), "found", None
    return UsersNeeded(
        n=n_needed,
        status=status,
        reason=reason,
        grid=tuple(grid),
        powers=tuple(powers),
        target=float(target),
        reps=reps,
        lo=lo,
        hi=hi,
        analytic=analytic,
    )


def ab_users_needed(
    outcomes: PotentialOutcomes,
    *,
    cuped: bool,
    lo: int,
    hi: int,
    target: float = 0.8,
    reps: int = 400,
    alpha: float = 0.05,
    rng: np.random.Generator,
    factor: float = math.sqrt(2),
) -> UsersNeeded:
    """:func:`users_needed` for :func:`ab_power`, with :func:`analytic_users` attached."""
    analytic = analytic_users(outcomes, cuped=cuped, alpha=alpha, power=target)

    def power_fn(n: int, *, reps: int, rng: np.random.Generator) -> float:
        return ab_power(outcomes, n, cuped=cuped, reps=reps, alpha=alpha, rng=rng)

    return users_needed(
        power_fn, lo=lo, hi=hi, target=target, reps=reps, rng=rng, factor=factor, analytic=analytic
    )


def interleaving_users_needed(
    t: object,
    c: object,
    *,
    sign: int,
    lo: int,
    hi: int,
    target: float = 0.8,
    reps: int = 400,
    alpha: float = 0.05,
    rng: np.random.Generator,
    factor: float = math.sqrt(2),
) -> UsersNeeded:
    """:func:`users_needed` for :func:`interleaving_power`, with
    :func:`analytic_interleaving_users` attached."""
    analytic = analytic_interleaving_users(t, c, sign=sign, alpha=alpha, power=target)

    def power_fn(n: int, *, reps: int, rng: np.random.Generator) -> float:
        return interleaving_power(t, c, n, sign=sign, reps=reps, alpha=alpha, rng=rng)

    return users_needed(
        power_fn, lo=lo, hi=hi, target=target, reps=reps, rng=rng, factor=factor, analytic=analytic
    )
