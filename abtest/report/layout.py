"""What every part of a report shows in which order: scenarios (high traffic first, then
"overall"), metrics, labels, and the CI level."""

from __future__ import annotations

from abtest.online.analysis import METRICS
from abtest.online.results import ExperimentResults, Population, ScenarioPopulation
from abtest.report.format import as_float

OVERALL = "overall"  # the row of all scenarios together


def traffic(population: Population | None) -> str | None:
    """ "high" or "low" for a scenario; None for the overall population."""
    return population.traffic if isinstance(population, ScenarioPopulation) else None


def is_low(population: Population | None) -> bool:
    return traffic(population) == "low"


def label(name: str, population: Population | None) -> str:
    return f"{name} (low traffic)" if is_low(population) else name


def scenario_names(r: ExperimentResults) -> list[str]:
    """High-traffic scenarios first, then low, each group in the order given."""
    return sorted(r.scenarios, key=lambda name: is_low(r.scenarios[name]))


def rows(r: ExperimentResults) -> list[tuple[str, Population]]:
    """(name, population) for every scenario in display order, then the overall one."""
    return [(n, r.scenarios[n]) for n in scenario_names(r)] + [(OVERALL, r.overall)]


def panel_names(r: ExperimentResults, names) -> list[str]:
    """`names` (of per-scenario panels) in display order, "overall" last."""
    names = list(names)
    out = [n for n in scenario_names(r) if n in names]
    out += [n for n in names if n not in out and n != OVERALL]
    return out + ([OVERALL] if OVERALL in names else [])


def metric_names(r: ExperimentResults) -> list[str]:
    """The analysis' metrics in its order, then any other metric the results hold."""
    seen: list[str] = []
    for population in [*r.scenarios.values(), r.overall]:
        seen += [m for m in population.metrics if m not in seen]
    return [m for m in METRICS if m in seen] + [m for m in seen if m not in METRICS]


def has_truth(r: ExperimentResults) -> bool:
    return any(
        as_float(p.metric(m).true_lift) is not None for _, p in rows(r) for m in metric_names(r)
    )


def alpha(r: ExperimentResults) -> float:
    """The significance level, 0.05 if the results have none (or a meaningless one)."""
    a = as_float(r.alpha)
    return a if a is not None and 0 < a < 1 else 0.05


def level(r: ExperimentResults) -> str:
    """The confidence level of the CIs, e.g. "95%"."""
    return f"{(1 - alpha(r)) * 100:g}%"
