"""Proof of validity: A/A false-positive rates, CI coverage of the true lift, power / MDE.

All three re-use one simulation. Users do not interact in this simulator (see
:mod:`abtest.online.experiment`), so once every user's outcome is known under both arms (the truth
twin), the A/B result of *any* assignment is a selection from it: re-randomising with a
fresh salt costs an analysis, not a simulation. That is also the design-based view of an
experiment — the population and its potential outcomes are fixed, the assignment is random
— so the false-positive rate and coverage measured here are over re-randomisation.

* :func:`aa_study`: both arms the same model; false-positive rate per scenario × metric and
  the p-values' uniformity (Kolmogorov-Smirnov).
* :func:`coverage_study`: two models; how often each CI contains the twin's true lift.
* :func:`power_table`: MDE per scenario after each day of a control-only run, and the days
  needed for a given lift.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from tqdm import tqdm

from abtest.online.analysis import METRICS, AnalysisOptions, analyse
from abtest.online.assignment import Layer
from abtest.online.experiment import ARMS, ExperimentData
from abtest.online.user_stats import UserStats
from core.budget import check_array


def rerandomise(data: ExperimentData, salt: str, allocation: dict[str, float]) -> ExperimentData:
    """The A/B data an assignment with `salt` would have produced (needs the twin)."""
    if data.truth is None:
        raise ValueError("re-randomisation needs the truth twin")
    layer = Layer(salt, {a: allocation[a] for a in ARMS})
    users = np.arange(data.truth.shape[2])
    assignment = layer.arm_index(users)
    serve = np.where(assignment == 1, 1, 0)
    check_array("a re-randomised experiment's per-user sums", data.truth.shape)
    observed = np.zeros_like(data.truth)
    for p in (0, 1):
        observed[p][:, serve == p] = data.truth[p][:, serve == p]
    return dataclasses.replace(
        data, assignment=assignment, observed=UserStats(observed, data.start_day)
    )


@dataclass(frozen=True)
class StudyResult:
    """An A/A or coverage study; every mapping is scenario (or "overall") -> metric -> value."""

    runs: int
    alpha: float
    rate: dict[str, dict[str, float]]  # rejection (A/A) or coverage rate
    p_values: dict[str, dict[str, list[float]]]  # one per run, NaN where unknown
    ks_pvalue: float  # uniformity of all p-values pooled (A/A); nan for coverage
    true_lift: dict[str, dict[str, float | None]]


@dataclass(frozen=True)
class MdePath:
    """One scenario × metric of the power table."""

    mde_by_day: tuple[float | None, ...]  # relative MDE at 80% power after each day
    days_needed: int | None  # to detect the table's lift; None if never
    decay: float | None  # b in MDE ∝ days^(-b); None if the MDE does not shrink
    extrapolated: bool  # days_needed is beyond the simulated days


@dataclass(frozen=True)
class PowerTable:
    lift: float
    days_simulated: int
    scenarios: dict[str, dict[str, MdePath]]  # scenario (or "overall") -> metric


def _study(
    data: ExperimentData,
    traffic: dict[str, float],
    allocation: dict[str, float],
    runs: int,
    opts: AnalysisOptions,
    salt_prefix: str,
    progress: bool,
    what: str,
) -> tuple[dict, dict, dict]:
    hits: dict[str, dict[str, list]] = {}
    pvals: dict[str, dict[str, list]] = {}
    truth: dict[str, dict[str, float | None]] = {}
    expected = {a: allocation[a] for a in ARMS}
    for r in tqdm(range(runs), desc=what, disable=None if progress else True, leave=False):
        trial = rerandomise(data, f"{salt_prefix}-{r}", allocation)
        res = analyse(trial, traffic, expected, opts, daily=False, extras=False)
        for name, population in {**res.scenarios, "overall": res.overall}.items():
            for m in METRICS:
                b = population.metrics[m]
                truth.setdefault(name, {})[m] = b.true_lift
                pvals.setdefault(name, {}).setdefault(m, []).append(
                    np.nan if b.p_value is None else b.p_value
                )
                hits.setdefault(name, {}).setdefault(m, []).append(b.true_in_ci)
    return hits, pvals, truth


def aa_study(
    data: ExperimentData,
    traffic: dict[str, float],
    allocation: dict[str, float],
    runs: int,
    opts: AnalysisOptions | None = None,
    progress: bool = False,
) -> StudyResult:
    """False-positive rate per scenario × metric over `runs` fresh salts (unadjusted p < α)."""
    opts = opts or AnalysisOptions()
    _, pvals, truth = _study(data, traffic, allocation, runs, opts, "aa", progress, "A/A")
    rate = {s: {m: _rejections(p, opts.alpha) for m, p in per.items()} for s, per in pvals.items()}
    pooled = np.array([p for per in pvals.values() for ps in per.values() for p in ps])
    pooled = pooled[np.isfinite(pooled)]
    ks = float(sps.kstest(pooled, "uniform").pvalue) if pooled.size else float("nan")
    return StudyResult(runs, opts.alpha, rate, pvals, ks, truth)


def coverage_study(
    data: ExperimentData,
    traffic: dict[str, float],
    allocation: dict[str, float],
    runs: int,
    opts: AnalysisOptions | None = None,
    progress: bool = False,
) -> StudyResult:
    """Share of `runs` re-randomised experiments whose CI contains the true lift."""
    opts = opts or AnalysisOptions()
    hits, pvals, truth = _study(data, traffic, allocation, runs, opts, "cov", progress, "coverage")
    rate = {s: {m: _share(hs) for m, hs in per.items()} for s, per in hits.items()}
    return StudyResult(runs, opts.alpha, rate, pvals, float("nan"), truth)


def _decay(mdes: list) -> float | None:
    """b in MDE ∝ days^(-b), fitted on the days with a finite MDE; None if it cannot shrink."""
    pts = [(np.log(d + 1), np.log(v)) for d, v in enumerate(mdes) if v is not None and v > 0]
    if len(pts) < 2:
        return None
    x, y = np.array(pts).T
    b = -float(np.polyfit(x, y, 1)[0])
    return b if b > 0.05 else None


def _rejections(p_values: list[float], alpha: float) -> float:
    """Share of the known p-values below `alpha`; NaN when no run could test (an empty
    scenario), rather than a false-positive rate of 0."""
    known = np.array(p_values, dtype=float)
    known = known[np.isfinite(known)]
    return float(np.mean(known < alpha)) if known.size else float("nan")


def _share(flags: list) -> float:
    known = [bool(f) for f in flags if f is not None]
    return float(np.mean(known)) if known else float("nan")


def binomial_band(rate: float, runs: int, sds: float = 3.0) -> tuple[float, float]:
    """rate ± `sds` binomial standard deviations for `runs` independent trials."""
    sd = np.sqrt(rate * (1 - rate) / runs)
    return max(0.0, rate - sds * sd), min(1.0, rate + sds * sd)


def power_table(
    data: ExperimentData,
    traffic: dict[str, float],
    allocation: dict[str, float],
    lift: float,
    opts: AnalysisOptions | None = None,
) -> PowerTable:
    """Per scenario and metric: MDE after each simulated day (A/A data split by the
    allocation), and the days needed to detect a relative `lift` at 80% power.

    Beyond the simulated days the MDE is extrapolated as ∝ days^(-b), with b fitted to the
    simulated days (log-log least squares). b is below the naive 1/2 for per-user totals,
    whose variance grows as users accumulate activity; the result says when it extrapolated.
    """
    opts = opts or AnalysisOptions()
    aa = rerandomise(data, "power", allocation)
    expected = {a: allocation[a] for a in ARMS}
    per_day = []
    for d in range(1, data.days + 1):
        short = dataclasses.replace(
            aa,
            days=d,
            observed=UserStats(aa.observed.values[:, :, :, :d], aa.start_day),
            truth=None,
        )
        res = analyse(short, traffic, expected, opts, daily=False, extras=False)
        per_day.append({**res.scenarios, "overall": res.overall})
    scenarios = {
        name: {
            m: _mde_path([p[name].metrics[m].mde for p in per_day], lift, data.days)
            for m in METRICS
        }
        for name in per_day[-1]
    }
    return PowerTable(lift, data.days, scenarios)


def _mde_path(mdes: list[float | None], lift: float, days: int) -> MdePath:
    needed = next((i + 1 for i, v in enumerate(mdes) if v is not None and v <= lift), None)
    decay = _decay(mdes)
    extrapolated = needed is None and decay is not None
    if extrapolated:
        needed = int(np.ceil(days * (mdes[-1] / lift) ** (1 / decay)))
    return MdePath(tuple(mdes), needed, decay, extrapolated)


__all__ = [
    "MdePath",
    "PowerTable",
    "StudyResult",
    "aa_study",
    "binomial_band",
    "coverage_study",
    "power_table",
    "rerandomise",
]
