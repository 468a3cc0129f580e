"""What an offline evaluation returns, as frozen dataclasses, and its one JSON form.

:class:`ReplayRun` (the run) -> :class:`ScenarioResult` per scenario -> :class:`MetricResult`
per metric (CTR, watch time) -> :class:`EstimatorResult` per estimator, with the paired
:class:`Lifts` over a baseline, the exact truth (synthetic logs), the logging policy's value
and the warnings; beside them the running estimates of each logged day (:class:`DayEstimate`).
A policy given as a table (:mod:`abtest.offline.policy_table`) adds a :class:`Support` block
per scenario: how much of its mass lies on items the logs never showed.

:func:`to_json` writes the ``replay.json`` object (key order: the fields', with a scenario's
CTR block flattened into the scenario) and :func:`from_json` reads it back. Values are stored
as written: non-finite numbers are None.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from abtest.offline import ope


def finite(x: float) -> float | None:
    """JSON-friendly: NaN and inf become None."""
    return x if math.isfinite(x) else None


@dataclass(frozen=True)
class EstimatorResult:
    """One estimator's estimate with its 95% CI (None when withheld) and its diagnostics."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    ess: float | None
    se: float | None
    max_weight: float | None
    clipped: int
    ci_withheld: bool

    @classmethod
    def of(cls, res: ope.OPEResult, withheld: bool) -> EstimatorResult:
        d = res.to_dict()
        keys = ("estimate", "ci_low", "ci_high", "n", "ess", "se", "max_weight", "clipped")
        out = cls(**{k: d[k] for k in keys}, ci_withheld=withheld)
        return replace(out, ci_low=None, ci_high=None) if withheld else out


@dataclass(frozen=True)
class LiftEstimate:
    """One estimator's relative lift policy / baseline - 1 (JSON form of ope.PairedLift)."""

    lift: float | None
    ci_low: float | None
    ci_high: float | None
    se: float | None
    policy: float | None
    baseline: float | None
    n: int

    @classmethod
    def of(cls, pair: ope.PairedLift, withheld: bool) -> LiftEstimate:
        out = cls(**pair.to_dict())
        return replace(out, ci_low=None, ci_high=None) if withheld else out


@dataclass(frozen=True)
class Lifts:
    """The paired lifts of the policy over the baseline per estimator, and the true lift."""

    estimators: dict[str, LiftEstimate]  # the estimators that ran for both policies
    truth: float | None
    has_truth: bool  # synthetic logs: the true lift is known (and written, even if null)


@dataclass(frozen=True)
class LoggingValue:
    """The logging policy's own value: the observed mean and its exact expectation."""

    observed: float | None
    truth: float | None


@dataclass(frozen=True)
class MetricResult:
    """One scenario and metric: every estimator, the truth, the paired lift and warnings."""

    estimates: dict[str, EstimatorResult | None]  # every requested estimator, None: not run
    truth: float | None
    lift: Lifts | None  # None without a baseline
    warnings: tuple[str, ...]
    logging: LoggingValue | None = None  # None in a baseline's block
    baseline_estimates: MetricResult | None = None  # the baseline's own block, if any


@dataclass(frozen=True)
class PositionSupport:
    """A table policy's support at one logged position (means over its evaluated exposures)."""

    position: int
    exposures: int  # evaluated exposures at this position where the table shows an item
    mass: float  # the sum of the table's probabilities at those slots, before renormalising
    uncovered: float  # the share of its (renormalised) mass on items never logged there


@dataclass(frozen=True)
class Support:
    """A table policy's support in one scenario: its mass on items the evaluated logs never
    showed at that position (with a propensity or in the uniform slice). IPS counts that mass
    as reward 0, SNIPS and replay estimate the covered part only, DR fills it in from its
    reward model."""

    exposures: int  # evaluated exposures where the table shows an item
    left_out: int  # evaluated exposures where it shows nothing: left out of every estimate
    mass: float  # mean sum of the table's probabilities per slot, before renormalising
    uncovered: float  # mean share of its mass on never-logged items
    positions: tuple[PositionSupport, ...]


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario: its CTR and watch-time results and the exposures they rest on."""

    ctr: MetricResult
    exposures: int
    uniform_exposures: int
    watch_time: MetricResult | None  # None when the log has no watch time
    support: Support | None = None  # a table policy's support (None for a model)


@dataclass(frozen=True)
class RunningEstimate:
    """An estimate and its 95% CI on the exposures logged so far (None: not finite)."""

    estimate: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class DayEstimate:
    """The policy's CTR estimates at the end of one logged day (day 0 first)."""

    day: int
    estimates: dict[str, RunningEstimate | None]
    truth: float | None


@dataclass(frozen=True)
class Settings:
    """How the run was made."""

    logs: Path
    kind: str  # "synthetic" or "real"
    evaluated_from: dt.datetime
    estimators: tuple[str, ...]
    estimand: str
    target_policy: str
    clusters: str  # "user" or "request"
    clip: float | None
    seed: int


@dataclass(frozen=True)
class ReplayRun:
    """An offline evaluation of `policy` (and `baseline`) on logged traffic."""

    policy: str
    baseline: str | None
    scenarios: dict[str, ScenarioResult]
    settings: Settings
    daily: dict[str, tuple[DayEstimate, ...]]  # per scenario


# ---------------------------------------------------------------------------- to JSON


def _metric_json(m: MetricResult, with_baseline: bool = True) -> dict:
    d: dict = {e: asdict(r) if r is not None else None for e, r in m.estimates.items()}
    d["truth"] = m.truth
    if m.lift is None:
        d["lift"] = None
    else:
        d["lift"] = {e: asdict(x) for e, x in m.lift.estimators.items()}
        if m.lift.has_truth:
            d["lift"]["truth"] = m.lift.truth
    d["warnings"] = list(m.warnings)
    if m.logging is not None:
        d["logging"] = asdict(m.logging)
    if with_baseline and m.baseline_estimates is not None:
        d["baseline_estimates"] = _metric_json(m.baseline_estimates)
    return d


def _scenario_json(s: ScenarioResult) -> dict:
    d = _metric_json(s.ctr, with_baseline=False)
    d |= {"exposures": s.exposures, "uniform_exposures": s.uniform_exposures}
    if s.ctr.baseline_estimates is not None:
        d["baseline_estimates"] = _metric_json(s.ctr.baseline_estimates)
    d["watch_time"] = _metric_json(s.watch_time) if s.watch_time is not None else None
    if s.support is not None:
        sup = s.support
        d["support"] = asdict(sup) | {"positions": [asdict(p) for p in sup.positions]}
    return d


def _day_json(row: DayEstimate) -> dict:
    d: dict = {"day": row.day}
    for e, v in row.estimates.items():
        d[e] = [v.estimate, v.ci_low, v.ci_high] if v is not None else None
    d["truth"] = row.truth
    return d


def to_json(run: ReplayRun) -> dict:
    """The ``replay.json`` object of `run`."""
    st = run.settings
    settings = asdict(st) | {
        "logs": str(st.logs),
        "evaluated_from": st.evaluated_from.isoformat(),
        "estimators": list(st.estimators),
    }
    return {
        "policy": run.policy,
        "baseline": run.baseline,
        "scenarios": {name: _scenario_json(s) for name, s in run.scenarios.items()},
        "settings": settings,
        "daily": {name: [_day_json(r) for r in rows] for name, rows in run.daily.items()},
    }


# ---------------------------------------------------------------------------- from JSON


def _metric_from(d: dict, estimators: tuple[str, ...]) -> MetricResult:
    lift = None
    if d["lift"] is not None:
        by = {e: LiftEstimate(**x) for e, x in d["lift"].items() if e != "truth"}
        lift = Lifts(by, d["lift"].get("truth"), "truth" in d["lift"])
    base = d.get("baseline_estimates")
    return MetricResult(
        estimates={e: EstimatorResult(**d[e]) if d[e] is not None else None for e in estimators},
        truth=d["truth"],
        lift=lift,
        warnings=tuple(d["warnings"]),
        logging=LoggingValue(**d["logging"]) if "logging" in d else None,
        baseline_estimates=_metric_from(base, estimators) if base is not None else None,
    )


def _scenario_from(d: dict, estimators: tuple[str, ...]) -> ScenarioResult:
    watch = d["watch_time"]
    return ScenarioResult(
        ctr=_metric_from(d, estimators),
        exposures=d["exposures"],
        uniform_exposures=d["uniform_exposures"],
        watch_time=_metric_from(watch, estimators) if watch is not None else None,
        support=_support_from(d["support"]) if "support" in d else None,
    )


def _support_from(d: dict) -> Support:
    positions = tuple(PositionSupport(**p) for p in d["positions"])
    return Support(**d | {"positions": positions})


def _day_from(d: dict) -> DayEstimate:
    est = {
        e: RunningEstimate(*v) if v is not None else None
        for e, v in d.items()
        if e not in ("day", "truth")
    }
    return DayEstimate(d["day"], est, d["truth"])


def from_json(d: dict) -> ReplayRun:
    """The :class:`ReplayRun` a ``replay.json`` object was written from."""
    st = d["settings"]
    settings = Settings(
        **st
        | {
            "logs": Path(st["logs"]),
            "evaluated_from": dt.datetime.fromisoformat(st["evaluated_from"]),
            "estimators": tuple(st["estimators"]),
        }
    )
    names = settings.estimators
    return ReplayRun(
        policy=d["policy"],
        baseline=d["baseline"],
        scenarios={k: _scenario_from(v, names) for k, v in d["scenarios"].items()},
        settings=settings,
        daily={k: tuple(_day_from(r) for r in rows) for k, rows in d["daily"].items()},
    )
