"""From an interleaving run's credited sums to its typed results, and their JSON form.

:func:`analyse_interleaving` turns an :class:`~abtest.online.interleaving.InterleavingData`
into an :class:`InterleavingResults`: per scenario, and ``overall`` (every scenario together,
each user one unit with their credit summed over the scenarios), for each credited metric of
:data:`METRICS`:

* the treatment's share of the credited engagement, its sign-flip test of 1/2 and
  delta-method CI (:func:`~abtest.stats.preference_share`), with its p-value corrected
  across scenario × metric (Benjamini-Hochberg or Holm, :func:`~abtest.stats.adjust_p_values`);
  ``overall`` is its own family, as in :mod:`abtest.online.analysis`;
* the per-user wins, losses and ties over the whole run and the sign test
  (:func:`~abtest.stats.preference_wins`).

The users analysed in a population are those who saw at least one arm's item there
(``users``); each test says how many of them had credited engagement. Beside the tests, each
population has the impressions credited to each team: in the ``recall`` variant the shared
ranker picks the slate from the merged candidates and so favours the arm whose candidates it
scores higher, which makes the treatment's impression share a result in itself (in the
``slate`` variant it is about 1/2 by construction).

Degenerate data (a scenario nobody saw, no credited clicks, one user) never raises: the
statistics are NaN and the tests' ``reason`` says why.

:func:`to_json` and :func:`from_json` are the one JSON form of the results
(``interleaving.json``), so a report can be re-rendered from the file.

May import ``core``, :mod:`abtest.stats` and the other ``abtest.online`` modules; never
``abtest.report`` or ``abtest.cli``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from abtest import stats
from abtest.online.analysis import AnalysisOptions
from abtest.online.interleaving import InterleavingData
from abtest.online.results import RunInfo
from abtest.online.results_json import _plain, _run_json, _run_of
from abtest.stats.guards import NAN, check_prob, require
from abtest.stats.preference import PreferenceShare, PreferenceWins
from core.errors import UserError

# the credited sums tested (names of abtest.online.interleaving.CREDIT_SUMS)
METRICS = ("clicks", "watch_time")
CORRECTIONS = ("bh", "holm")
# scenarios below this share of the traffic are "low traffic", as in the A/B analysis
LOW_TRAFFIC_SHARE = AnalysisOptions().low_traffic_share
REQUIRED_KEYS = ("control", "treatment", "seed", "days", "variant", "scenarios", "overall")


@dataclass(frozen=True)
class MetricPreference:
    """One credited metric's tests in one population: the treatment's credited share (with
    its p-value corrected across the family, ``p_adjusted``; NaN when unknown) and the
    per-user wins; ``significant`` = p_adjusted < alpha."""

    share: PreferenceShare
    wins: PreferenceWins
    p_adjusted: float
    significant: bool

    @property
    def reason(self) -> str | None:
        """Why the share test is unknown (None when it is known)."""
        return self.share.reason


@dataclass(frozen=True)
class TeamImpressions:
    """Impressions credited to each team; ``share`` = treatment / (treatment + control) (NaN
    without any). ``uncredited`` counts the filled slots credited to nobody (None when the
    run did not record them)."""

    treatment: float
    control: float
    uncredited: float | None
    share: float


@dataclass(frozen=True)
class PreferencePopulation:
    """A scenario's (or every scenario's) preference tests.

    ``users`` saw at least one arm's item there; ``engaged_users`` of them had credited clicks
    or watch time. ``traffic_share`` and ``low_traffic`` (share < the results'
    ``low_traffic_share``) are None for the overall population.
    """

    users: int
    engaged_users: int
    impressions: TeamImpressions
    metrics: dict[str, MetricPreference]
    traffic_share: float | None = None
    low_traffic: bool | None = None


@dataclass(frozen=True)
class InterleavingResults:
    """An interleaving run's results: per scenario and overall, each metric's tests."""

    arms: tuple[str, str]  # model names of (control, treatment)
    seed: int
    days: int
    variant: str
    alpha: float
    correction: str
    requests: int
    exposures: int
    wall_seconds: float
    scenarios: dict[str, PreferencePopulation]
    overall: PreferencePopulation
    low_traffic_share: float = LOW_TRAFFIC_SHARE
    run: RunInfo | None = None  # added by the caller: how to reproduce the run

    @property
    def control(self) -> str:
        return self.arms[0]

    @property
    def treatment(self) -> str:
        return self.arms[1]


# --------------------------------------------------------------------------- analysis


def _rounded(x: Any) -> float:
    """A finite float rounded to 12 significant digits (as :mod:`abtest.online.analysis`
    does, so reductions that differ in the last bit give identical results), else NaN."""
    x = float(x)
    return float(f"{x:.12g}") if math.isfinite(x) else NAN


def _round_fields(obj: Any) -> Any:
    """A frozen stats result with every float field rounded by :func:`_rounded`."""
    changes = {
        f.name: _rounded(getattr(obj, f.name))
        for f in dataclasses.fields(obj)
        if isinstance(getattr(obj, f.name), float)
    }
    return dataclasses.replace(obj, **changes)


def _tests(data: InterleavingData, scenario: int | None, alpha: float):
    """(users, engaged users, impressions without the uncredited count, metric -> (share,
    wins)) of one population; the tests are over the users who saw an arm's item."""
    imp_t, imp_c, exposed = data.credited(scenario, "impressions")
    engaged = np.zeros(int(exposed.sum()), dtype=bool)
    tests = {}
    for metric in METRICS:
        t, c, _ = data.credited(scenario, metric)
        t, c = t[exposed], c[exposed]
        engaged |= (t + c) > 0
        share = _round_fields(stats.preference_share(t, c, alpha=alpha))
        wins = _round_fields(stats.preference_wins(t, c, alpha=alpha))
        tests[metric] = (share, wins)
    total_t, total_c = float(imp_t.sum()), float(imp_c.sum())
    impressions = (
        total_t,
        total_c,
        _rounded(total_t / (total_t + total_c)) if total_t + total_c > 0 else NAN,
    )
    return int(exposed.sum()), int(engaged.sum()), impressions, tests


def _adjusted(family: list[dict], alpha: float, correction: str) -> list[dict]:
    """`family` (per population, metric -> (share, wins)) as metric -> MetricPreference, the
    share tests' p-values corrected across the whole family."""
    p = [share.p_value for per in family for share, _ in per.values()]
    adj = iter(stats.adjust_p_values(p, method=correction))
    out = []
    for per in family:
        out.append({})
        for metric, (share, wins) in per.items():
            p_adj = _rounded(next(adj))
            out[-1][metric] = MetricPreference(share, wins, p_adj, bool(p_adj < alpha))
    return out


def _uncredited(data: InterleavingData, scenario: int | None) -> float | None:
    if data.uncredited is None:
        return None
    u = np.asarray(data.uncredited)
    return float(u.sum() if scenario is None else u[scenario])


def analyse_interleaving(
    data: InterleavingData,
    traffic: dict[str, float],
    *,
    alpha: float = 0.05,
    correction: str = "bh",
    run: RunInfo | None = None,
) -> InterleavingResults:
    """The results of the interleaving run in `data`; `traffic` holds each scenario's share
    of the traffic (a scenario missing from it has an unknown share). p-values are corrected
    by `correction` ("bh" or "holm") across scenario × metric, overall on its own."""
    check_prob(alpha, "alpha")
    require(correction in CORRECTIONS, "correction", "'bh' or 'holm'", repr(correction))
    names = list(data.scenarios)
    per_scenario = [_tests(data, s, alpha) for s in range(len(names))]
    overall = _tests(data, None, alpha)
    scen_metrics = _adjusted([t[3] for t in per_scenario], alpha, correction)
    overall_metrics = _adjusted([overall[3]], alpha, correction)[0]

    def population(s: int | None, tests, metrics) -> PreferencePopulation:
        users, engaged, (imp_t, imp_c, imp_share), _ = tests
        impressions = TeamImpressions(imp_t, imp_c, _uncredited(data, s), imp_share)
        share = None if s is None else traffic.get(names[s])
        share = None if share is None else float(share)
        low = None if share is None else bool(share < LOW_TRAFFIC_SHARE)
        return PreferencePopulation(users, engaged, impressions, metrics, share, low)

    return InterleavingResults(
        arms=(str(data.arms[0]), str(data.arms[1])),
        seed=int(data.seed),
        days=int(data.days),
        variant=str(data.variant),
        alpha=float(alpha),
        correction=correction,
        requests=int(data.requests),
        exposures=int(data.exposures),
        wall_seconds=_rounded(data.wall_seconds),
        scenarios={
            name: population(s, per_scenario[s], scen_metrics[s]) for s, name in enumerate(names)
        },
        overall=population(None, overall, overall_metrics),
        run=run,
    )


# --------------------------------------------------------------------------- JSON


def _fields_json(obj: Any) -> dict:
    return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}


def _population_json(p: PreferencePopulation) -> dict:
    out: dict[str, Any] = {}
    if p.traffic_share is not None or p.low_traffic is not None:
        out |= {"traffic_share": p.traffic_share, "low_traffic": p.low_traffic}
    return out | {
        "users": p.users,
        "engaged_users": p.engaged_users,
        "impressions": _fields_json(p.impressions),
        "metrics": {
            name: {
                "p_adjusted": m.p_adjusted,
                "significant": m.significant,
                "share": _fields_json(m.share),
                "wins": _fields_json(m.wins),
            }
            for name, m in p.metrics.items()
        },
    }


def to_json(r: InterleavingResults) -> dict:
    """The ``interleaving.json`` object of `r` (plain JSON values, NaN as None)."""
    out: dict[str, Any] = {
        "control": r.control,
        "treatment": r.treatment,
        "seed": r.seed,
        "days": r.days,
        "variant": r.variant,
        "alpha": r.alpha,
        "correction": r.correction,
        "low_traffic_share": r.low_traffic_share,
        "requests": r.requests,
        "exposures": r.exposures,
        "wall_seconds": r.wall_seconds,
        "scenarios": {name: _population_json(p) for name, p in r.scenarios.items()},
        "overall": _population_json(r.overall),
    }
    if r.run is not None:
        out["run"] = _run_json(r.run)
    return _plain(out)


def _float(x: Any) -> float:
    """A JSON number as a float; NaN for null or anything else."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return NAN
    return float(x)


def _int(x: Any) -> int:
    """A JSON integer (or integral number) as an int; 0 for anything else."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return 0
    return int(x) if x == int(x) else 0


def _optional_float(x: Any) -> float | None:
    x = _float(x)
    return None if math.isnan(x) else x


def _flag(x: Any) -> bool | None:
    return x if isinstance(x, bool) else None


def _text(x: Any) -> str | None:
    return x if isinstance(x, str) else None


_READ = {"float": _float, "int": _int, "str": lambda x: _text(x) or "", "str | None": _text}


def _fields_of(cls: type, x: Mapping) -> Any:
    """A stats result of `cls` from its JSON object (field types as the annotations say)."""
    return cls(**{f.name: _READ[str(f.type)](x.get(f.name)) for f in dataclasses.fields(cls)})


def _population_of(x: Mapping) -> PreferencePopulation:
    imp = x.get("impressions")
    imp = imp if isinstance(imp, Mapping) else {}
    metrics = {
        str(name): MetricPreference(
            share=_fields_of(PreferenceShare, m["share"]),
            wins=_fields_of(PreferenceWins, m["wins"]),
            p_adjusted=_float(m.get("p_adjusted")),
            significant=m.get("significant") is True,
        )
        for name, m in x["metrics"].items()
    }
    return PreferencePopulation(
        users=_int(x.get("users")),
        engaged_users=_int(x.get("engaged_users")),
        impressions=TeamImpressions(
            treatment=_float(imp.get("treatment")),
            control=_float(imp.get("control")),
            uncredited=_optional_float(imp.get("uncredited")),
            share=_float(imp.get("share")),
        ),
        metrics=metrics,
        traffic_share=_optional_float(x.get("traffic_share")),
        low_traffic=_flag(x.get("low_traffic")),
    )


def _check(doc: Any, source: str) -> None:
    """The structure every reader relies on; a clear error naming what is wrong."""
    if not isinstance(doc, Mapping):
        raise UserError(f"{source}: must be a JSON object, got {type(doc).__name__}")
    for key in REQUIRED_KEYS:
        if key not in doc:
            raise UserError(f"{source} is missing required key '{key}'")
    scenarios = doc["scenarios"]
    if not isinstance(scenarios, Mapping) or not scenarios:
        raise UserError(f"{source}: 'scenarios' must be a non-empty object")
    for name, population in [*scenarios.items(), ("overall", doc["overall"])]:
        where = "overall" if name == "overall" else f"scenarios.{name}"
        if not isinstance(population, Mapping):
            raise UserError(f"{source}: '{where}' must be an object")
        if not isinstance(population.get("metrics"), Mapping):
            raise UserError(f"{source}: '{where}' is missing required key 'metrics'")
        for metric, values in population["metrics"].items():
            for part in ("share", "wins"):
                if not isinstance(values, Mapping) or not isinstance(values.get(part), Mapping):
                    raise UserError(
                        f"{source}: '{where}.metrics.{metric}' is missing required key '{part}'"
                    )


def from_json(doc: Any, source: str = "interleaving") -> InterleavingResults:
    """The results an ``interleaving.json`` object holds; UserError naming `source` if its
    structure is wrong. A value of the wrong type reads as unknown (NaN, None or 0)."""
    _check(doc, source)
    run = doc.get("run")
    alpha = _float(doc.get("alpha"))
    low = _float(doc.get("low_traffic_share"))
    return InterleavingResults(
        arms=(str(doc["control"]), str(doc["treatment"])),
        seed=_int(doc["seed"]),
        days=_int(doc["days"]),
        variant=str(doc["variant"]),
        alpha=alpha if 0 < alpha < 1 else 0.05,
        correction=_text(doc.get("correction")) or "bh",
        requests=_int(doc.get("requests")),
        exposures=_int(doc.get("exposures")),
        wall_seconds=_float(doc.get("wall_seconds")),
        scenarios={str(n): _population_of(p) for n, p in doc["scenarios"].items()},
        overall=_population_of(doc["overall"]),
        low_traffic_share=low if math.isfinite(low) else LOW_TRAFFIC_SHARE,
        run=_run_of(run) if isinstance(run, Mapping) else None,
    )
