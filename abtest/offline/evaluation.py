"""The evaluation of one policy on one scenario and metric (:func:`evaluate_metric`: every
estimator, the truth, the paired lift over a baseline, the warnings) and the day walker
(:func:`daily`, :func:`running_estimates`): the estimates at each logged day's end, on the
exposures logged so far.

**Clusters.** Standard errors sum exposures per cluster (user or request) first: the
``clusters`` of the :class:`~abtest.offline.estimators.Inputs`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import simpy

from abtest.offline import ope
from abtest.offline.estimators import Estimator, Inputs
from abtest.offline.results import (
    DayEstimate,
    EstimatorResult,
    LiftEstimate,
    Lifts,
    MetricResult,
    RunningEstimate,
    finite,
)

DAY_SECONDS = 86_400.0
# the warning when the target's own choices (Inputs.top_shown) were rarely logged
OVERLAP_MODEL = (
    "overlap: the target's own top-K items were logged at only {n_top:,} of {n_events:,} "
    "exposures; IPS/SNIPS/DR rest on its eps-uniform part and the reward model"
)
OVERLAP_TABLE = (
    "overlap: items the table can show at their slot were logged at only {n_top:,} of "
    "{n_events:,} exposures; IPS/SNIPS/DR rest on those few and the reward model"
)


def mean_or_none(x: np.ndarray) -> float | None:
    return float(x.mean()) if x.size else None


def _true_lift(truth: np.ndarray, truth_base: np.ndarray, mask: np.ndarray) -> float | None:
    tb = float(truth_base[mask].mean())
    return (float(truth[mask].mean()) / tb - 1) if tb > 0 else None


def evaluate_metric(
    estimators: Sequence[Estimator],
    pol: Inputs,
    base: Inputs | None,
    truth: np.ndarray | None,
    truth_base: np.ndarray | None,
    mask: np.ndarray,
    overlap: str = OVERLAP_MODEL,
) -> MetricResult:
    """One scenario and metric: every estimator, the truth, the paired lift and warnings
    (`overlap`: the warning's text when the target's own choices were rarely logged)."""
    estimates: dict[str, EstimatorResult | None] = {}
    lifts: dict[str, LiftEstimate] = {}
    warnings: list[str] = []
    n_events = int(mask.sum())
    n_top = int(pol.top_shown[mask].sum())
    if any(e.weighted for e in estimators) and n_top < ope.MIN_MATCHES:
        warnings.append(overlap.format(n_top=n_top, n_events=n_events))
    for est in estimators:
        t = est.terms(pol, mask)
        if t is None:
            estimates[est.name] = None
            warnings.append(f"{est.name}: not computed ({est.missing})")
            continue
        res = ope.estimate(t, pol.clusters[mask])
        warnings.extend(ope.diagnostics(est.name, res, n_events))
        # An interval computed from a handful of effective events, or from weights that never
        # see the target's own choices, looks precise and is not: keep the point estimate,
        # withhold the interval, and say so.
        why = est.withheld(res, pol, mask)
        estimates[est.name] = EstimatorResult.of(res, withheld=why is not None)
        tb = est.terms(base, mask) if base is not None else None
        if tb is not None:
            pair = ope.paired_lift(t, tb, pol.clusters[mask])
            lifts[est.name] = LiftEstimate.of(pair, withheld=why is not None)
        if why is not None:
            warnings.append(f"{est.name}: CI withheld ({why}: too little to trust an interval)")
    lift = None
    if base is not None:
        exact = truth is not None and truth_base is not None
        true_lift = _true_lift(truth, truth_base, mask) if exact else None
        lift = Lifts(lifts, true_lift, exact)
    true_value = mean_or_none(truth[mask]) if truth is not None else None
    return MetricResult(estimates, true_value, lift, tuple(warnings))


def daily(day: np.ndarray, compute: Callable, n_days: int) -> list[tuple[int, object]]:
    """`compute(mask)` at the end of each logged day, on the exposures logged so far.

    Walk the logged days in time order with simpy; at each day's end, estimate so far."""
    env = simpy.Environment()
    out: list[tuple[int, object]] = []

    def walker(env: simpy.Environment):
        for d in range(n_days):
            yield env.timeout(DAY_SECONDS)  # logged time reaches the end of day d
            out.append((d, compute(day <= d)))

    env.process(walker(env))
    env.run()
    return out


def running_estimates(
    estimators: Sequence[Estimator],
    x: Inputs,
    has: np.ndarray,
    truth: np.ndarray | None,
    day: np.ndarray,
) -> tuple[DayEstimate, ...]:
    """Each estimator's estimate (and the truth) at the end of each logged `day` (0-based, per
    exposure), on the exposures logged so far that have a reward (`has`)."""

    def so_far(m: np.ndarray) -> tuple[dict[str, RunningEstimate | None], float | None]:
        m = m & has
        row: dict[str, RunningEstimate | None] = {}
        for e in estimators:
            t = e.terms(x, m)
            res = ope.estimate(t, x.clusters[m]) if t is not None else None
            row[e.name] = (
                RunningEstimate(finite(res.estimate), finite(res.ci_low), finite(res.ci_high))
                if res is not None
                else None
            )
        value = mean_or_none(truth[m]) if truth is not None else None
        return row, finite(value) if value is not None else None

    days = daily(day, so_far, int(day.max()) + 1)
    return tuple(DayEstimate(d, row, value) for d, (row, value) in days)
