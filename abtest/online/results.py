"""The typed results of an online A/B test: experiment → scenario → metric → lift.

:func:`abtest.online.analysis.analyse` builds an :class:`ExperimentResults`; the runner adds
the :class:`RunInfo` of the run. Any number may be ``None`` (unknown, NaN or infinite); a
section that is ``None`` is not there (analyses that skip it, or files without it). Their
JSON form, ``results.json``, is :mod:`abtest.online.results_json`.

Degenerate data (an empty arm or scenario, one user, no clicks, a constant metric) never
raises: the statistics that cannot be computed are ``None`` and :attr:`MetricLift.note`
(or :attr:`Srm.note`) says why, in words the report shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PerArm:
    """One number per arm: users, or the expected share of users."""

    control: float | None
    treatment: float | None


@dataclass(frozen=True)
class MetricLift:
    """One metric's test in one population: arm values, relative lift and its statistics."""

    control: float | None
    treatment: float | None
    lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_adjusted: float | None  # corrected across the family the test belongs to
    significant: bool | None
    true_lift: float | None  # the truth twin's lift, when the world is synthetic
    true_in_ci: bool | None
    mde: float | None  # relative minimum detectable effect at 80% power
    power: float | None  # the power to detect the true lift
    cuped: bool | None
    bootstrap_ci: tuple[float | None, float | None] | None = None
    # why the lift, its CI or its p-value is unknown (e.g. "no users in the treatment arm");
    # None when all three are known
    note: str | None = None


NO_LIFT = MetricLift(*[None] * 13)  # a metric a population has no test for


@dataclass(frozen=True)
class Population:
    """Users per arm and one test per metric: the whole experiment, or a segment's scenario."""

    users: PerArm | None
    metrics: dict[str, MetricLift]

    def metric(self, name: str) -> MetricLift:
        return self.metrics.get(name, NO_LIFT)


@dataclass(frozen=True)
class ScenarioPopulation(Population):
    """A scenario's population, and the scenario's share of the traffic."""

    traffic_share: float | None = None
    traffic: str | None = None  # "high" or "low"


@dataclass(frozen=True)
class Srm:
    """The sample-ratio check of users per arm against the allocation."""

    statistic: float | None
    p_value: float | None
    flagged: bool | None
    users: PerArm | None
    expected: PerArm | None
    note: str | None = None  # why the check is incomplete (e.g. "no users in the experiment")


@dataclass(frozen=True)
class Segment:
    """Users of one pre-period activity segment: per scenario, the headline metrics."""

    scenarios: dict[str, Population]


@dataclass(frozen=True)
class DailySeries:
    """One metric's statistics on the data up to each day (the daily looks)."""

    day: tuple[int, ...]
    lift: tuple[float | None, ...]
    ci_low: tuple[float | None, ...]
    ci_high: tuple[float | None, ...]
    p_naive: tuple[float | None, ...]
    p_always_valid: tuple[float | None, ...]  # mSPRT


@dataclass(frozen=True)
class Distribution:
    """Histogram of per-user watch time per arm over shared bin edges."""

    edges: tuple[float | None, ...]
    control: tuple[float | None, ...]
    treatment: tuple[float | None, ...]


@dataclass(frozen=True)
class Latency:
    p50_ms: float | None
    p99_ms: float | None
    requests: float | None


@dataclass(frozen=True)
class Serving:
    requests: float | None
    exposures: float | None
    requests_per_second: float | None
    wall_seconds: float | None
    twin_wall_seconds: float | None
    latency: dict[str, Latency]  # arm name -> latency


@dataclass(frozen=True)
class Checkpoint:
    path: str | None
    sha256: str | None


@dataclass(frozen=True)
class RunInfo:
    """What the runner adds to the analysis: how to reproduce the run, and how long it took."""

    command: str | None = None
    created: str | None = None
    config_fingerprint: str | None = None
    config: dict | None = None  # the full config, as Config.to_dict() gives it
    checkpoints: dict[str, Checkpoint] | None = None  # model name -> checkpoint
    traffic_source: str | None = None
    total_seconds: float | None = None
    world: str | None = None  # which world was simulated (synthetic, or fitted: model-based)
    warnings: tuple[str, ...] = ()  # what makes the comparison weaker than it looks


@dataclass(frozen=True)
class ExperimentResults:
    treatment: Any  # model names
    control: Any
    seed: Any
    days: Any
    alpha: float | None
    correction: str | None
    cuped: bool | None
    synthetic: bool | None
    srm: Srm
    scenarios: dict[str, ScenarioPopulation]
    overall: Population
    segments: dict[str, Segment] | None = None
    daily: dict[str, dict[str, DailySeries]] | None = None  # scenario or "overall" -> metric
    distributions: dict[str, Distribution] | None = None  # scenario or "overall"
    serving: Serving | None = None
    run: RunInfo | None = None
