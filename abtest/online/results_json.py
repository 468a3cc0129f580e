"""The one JSON form of the typed results: ``results.json``.

:func:`to_json` and :func:`from_json` are the only place where the dict of ``results.json``
exists: every key, its order and its value are defined here. Only ``treatment``,
``control``, ``seed``, ``days``, ``srm``, ``scenarios`` and ``overall`` are required; a
section that is ``None`` is left out.

:func:`from_json` reads what other tools (or people) may have written: besides the required
structure, which it checks with a clear error, a value of the wrong type reads as unknown
(``None``) or empty, so a report still renders.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from abtest.online.results import (
    Checkpoint,
    DailySeries,
    Distribution,
    ExperimentResults,
    Latency,
    MetricLift,
    PerArm,
    Population,
    RunInfo,
    ScenarioPopulation,
    Segment,
    Serving,
    Srm,
)
from core.errors import UserError

REQUIRED_KEYS = ("treatment", "control", "seed", "days", "srm", "scenarios", "overall")


# --------------------------------------------------------------------------- writing


def _plain(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf → None, tuples → lists, numpy and Path values → Python ones."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return _plain(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return _plain(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _arms(p: PerArm | None) -> dict | None:
    return None if p is None else {"control": p.control, "treatment": p.treatment}


def _lift_json(m: MetricLift) -> dict:
    out = {
        "control": m.control,
        "treatment": m.treatment,
        "lift": m.lift,
        "ci_low": m.ci_low,
        "ci_high": m.ci_high,
        "p_value": m.p_value,
        "p_adjusted": m.p_adjusted,
        "significant": m.significant,
        "true_lift": m.true_lift,
        "true_in_ci": m.true_in_ci,
        "mde": m.mde,
        "power": m.power,
        "cuped": m.cuped,
    }
    if m.bootstrap_ci is not None:
        out["bootstrap_ci"] = list(m.bootstrap_ci)
    if m.note is not None:  # only degenerate tests have one: other files stay as they were
        out["note"] = m.note
    return out


def _population_json(p: Population) -> dict:
    metrics = {name: _lift_json(m) for name, m in p.metrics.items()}
    if isinstance(p, ScenarioPopulation):
        return {
            "traffic_share": p.traffic_share,
            "traffic": p.traffic,
            "users": _arms(p.users),
            "metrics": metrics,
        }
    return {"users": _arms(p.users), "metrics": metrics}


def _daily_json(s: DailySeries) -> dict:
    return {
        "day": list(s.day),
        "lift": list(s.lift),
        "ci_low": list(s.ci_low),
        "ci_high": list(s.ci_high),
        "p_naive": list(s.p_naive),
        "p_always_valid": list(s.p_always_valid),
    }


def _serving_json(s: Serving) -> dict:
    return {
        "requests": s.requests,
        "exposures": s.exposures,
        "requests_per_second": s.requests_per_second,
        "wall_seconds": s.wall_seconds,
        "twin_wall_seconds": s.twin_wall_seconds,
        "latency": {
            arm: {"p50_ms": x.p50_ms, "p99_ms": x.p99_ms, "requests": x.requests}
            for arm, x in s.latency.items()
        },
    }


def _run_json(r: RunInfo) -> dict:
    out = {
        "command": r.command,
        "created": r.created,
        "config_fingerprint": r.config_fingerprint,
        "config": r.config,
        "checkpoints": None
        if r.checkpoints is None
        else {n: {"path": c.path, "sha256": c.sha256} for n, c in r.checkpoints.items()},
        "traffic_source": r.traffic_source,
        "total_seconds": r.total_seconds,
        "world": r.world,
        "warnings": list(r.warnings) or None,
    }
    return {k: v for k, v in out.items() if v is not None}


def to_json(r: ExperimentResults) -> dict:
    """The ``results.json`` object of `r` (plain JSON values, NaN as None)."""
    srm = r.srm
    out: dict[str, Any] = {
        "treatment": r.treatment,
        "control": r.control,
        "seed": r.seed,
        "days": r.days,
        "alpha": r.alpha,
        "correction": r.correction,
        "cuped": r.cuped,
        "synthetic": r.synthetic,
    }
    out = {k: v for k, v in out.items() if v is not None or k in REQUIRED_KEYS}
    out["srm"] = {
        "statistic": srm.statistic,
        "p_value": srm.p_value,
        "flagged": srm.flagged,
        "users": _arms(srm.users),
        "expected": _arms(srm.expected),
    }
    if srm.note is not None:
        out["srm"]["note"] = srm.note
    out["scenarios"] = {name: _population_json(s) for name, s in r.scenarios.items()}
    out["overall"] = _population_json(r.overall)
    if r.segments is not None:
        out["segments"] = {
            name: {"scenarios": {n: _population_json(p) for n, p in seg.scenarios.items()}}
            for name, seg in r.segments.items()
        }
    if r.daily is not None:
        out["daily"] = {
            name: {m: _daily_json(s) for m, s in per.items()} for name, per in r.daily.items()
        }
    if r.distributions is not None:
        out["distributions"] = {
            name: {
                "edges": list(d.edges),
                "control": list(d.control),
                "treatment": list(d.treatment),
            }
            for name, d in r.distributions.items()
        }
    if r.serving is not None:
        out["serving"] = _serving_json(r.serving)
    if r.run is not None:
        out |= _run_json(r.run)
    return _plain(out)


# --------------------------------------------------------------------------- reading


def _number(x: Any) -> float | None:
    """A finite JSON number as it is (an int stays an int), else None."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    return x if math.isfinite(x) else None


def _flag(x: Any) -> bool | None:
    return x if isinstance(x, bool) else None


def _text(x: Any) -> str | None:
    return x if isinstance(x, str) else None


def _numbers(x: Any) -> tuple:
    return tuple(_number(v) for v in x) if isinstance(x, list) else ()


def _mapping(x: Any) -> Mapping:
    return x if isinstance(x, Mapping) else {}


def _arms_of(x: Any) -> PerArm | None:
    if not isinstance(x, Mapping):
        return None
    return PerArm(_number(x.get("control")), _number(x.get("treatment")))


def _lift_of(x: Mapping) -> MetricLift:
    boot = x.get("bootstrap_ci")
    return MetricLift(
        control=_number(x.get("control")),
        treatment=_number(x.get("treatment")),
        lift=_number(x.get("lift")),
        ci_low=_number(x.get("ci_low")),
        ci_high=_number(x.get("ci_high")),
        p_value=_number(x.get("p_value")),
        p_adjusted=_number(x.get("p_adjusted")),
        significant=_flag(x.get("significant")),
        true_lift=_number(x.get("true_lift")),
        true_in_ci=_flag(x.get("true_in_ci")),
        mde=_number(x.get("mde")),
        power=_number(x.get("power")),
        cuped=_flag(x.get("cuped")),
        bootstrap_ci=(
            (_number(boot[0]), _number(boot[1]))
            if isinstance(boot, list) and len(boot) == 2
            else None
        ),
        note=_text(x.get("note")),
    )


def _metrics_of(x: Any) -> dict[str, MetricLift]:
    return {str(k): _lift_of(v) for k, v in _mapping(x).items() if isinstance(v, Mapping)}


def _population_of(x: Mapping) -> Population:
    return Population(_arms_of(x.get("users")), _metrics_of(x.get("metrics")))


def _scenario_of(x: Mapping) -> ScenarioPopulation:
    return ScenarioPopulation(
        users=_arms_of(x.get("users")),
        metrics=_metrics_of(x.get("metrics")),
        traffic_share=_number(x.get("traffic_share")),
        traffic=_text(x.get("traffic")),
    )


def _segments_of(x: Mapping) -> dict[str, Segment]:
    out = {}
    for name, seg in x.items():
        if isinstance(seg, Mapping):
            per = _mapping(seg.get("scenarios"))
            cells = {str(n): _population_of(p) for n, p in per.items() if isinstance(p, Mapping)}
            out[str(name)] = Segment(cells)
    return out


def _series_of(x: Mapping) -> DailySeries:
    return DailySeries(
        day=_numbers(x.get("day")),
        lift=_numbers(x.get("lift")),
        ci_low=_numbers(x.get("ci_low")),
        ci_high=_numbers(x.get("ci_high")),
        p_naive=_numbers(x.get("p_naive")),
        p_always_valid=_numbers(x.get("p_always_valid")),
    )


def _daily_of(x: Mapping) -> dict[str, dict[str, DailySeries]]:
    """Scenario -> metric -> series; a series without a list of days is left out."""
    return {
        str(name): {
            str(m): _series_of(s)
            for m, s in _mapping(per).items()
            if isinstance(s, Mapping) and isinstance(s.get("day"), list)
        }
        for name, per in x.items()
    }


def _distributions_of(x: Mapping) -> dict[str, Distribution]:
    return {
        str(name): Distribution(
            _numbers(_mapping(d).get("edges")),
            _numbers(_mapping(d).get("control")),
            _numbers(_mapping(d).get("treatment")),
        )
        for name, d in x.items()
    }


def _serving_of(x: Mapping) -> Serving:
    latency = {
        str(arm): Latency(
            _number(v.get("p50_ms")), _number(v.get("p99_ms")), _number(v.get("requests"))
        )
        for arm, v in _mapping(x.get("latency")).items()
        if isinstance(v, Mapping)
    }
    return Serving(
        requests=_number(x.get("requests")),
        exposures=_number(x.get("exposures")),
        requests_per_second=_number(x.get("requests_per_second")),
        wall_seconds=_number(x.get("wall_seconds")),
        twin_wall_seconds=_number(x.get("twin_wall_seconds")),
        latency=latency,
    )


def _run_of(x: Mapping) -> RunInfo | None:
    command = x.get("command")
    if isinstance(command, (list, tuple)):
        command = " ".join(str(c) for c in command)
    checkpoints = x.get("checkpoints")
    run = RunInfo(
        command=_text(command),
        created=_text(x.get("created")),
        config_fingerprint=_text(x.get("config_fingerprint")),
        config=dict(x["config"]) if isinstance(x.get("config"), Mapping) else None,
        checkpoints=None
        if not isinstance(checkpoints, Mapping)
        else {
            str(n): Checkpoint(_text(c.get("path")), _text(c.get("sha256")))
            for n, c in checkpoints.items()
            if isinstance(c, Mapping)
        },
        traffic_source=_text(x.get("traffic_source")),
        total_seconds=_number(x.get("total_seconds")),
        world=_text(x.get("world")),
        warnings=tuple(
            w
            for w in (x["warnings"] if isinstance(x.get("warnings"), list) else ())
            if isinstance(w, str)
        ),
    )
    return None if run == RunInfo() else run


def _check(doc: Any, source: str) -> None:
    """The structure every reader relies on; a clear error naming what is wrong."""
    if not isinstance(doc, Mapping):
        raise UserError(f"{source}: must be a JSON object, got {type(doc).__name__}")
    for key in REQUIRED_KEYS:
        if key not in doc:
            raise UserError(f"{source} is missing required key '{key}'")
    for key in ("srm", "overall"):
        if not isinstance(doc[key], Mapping):
            raise UserError(f"{source}: '{key}' must be an object")
    scenarios = doc["scenarios"]
    if not isinstance(scenarios, Mapping) or not scenarios:
        raise UserError(f"{source}: 'scenarios' must be a non-empty object")
    for name, scenario in [*scenarios.items(), ("overall", doc["overall"])]:
        where = "overall" if name == "overall" else f"scenarios.{name}"
        if not isinstance(scenario, Mapping) or not isinstance(scenario.get("metrics"), Mapping):
            raise UserError(f"{source}: '{where}' is missing required key 'metrics'")
        for metric, values in scenario["metrics"].items():
            if not isinstance(values, Mapping):
                raise UserError(f"{source}: '{where}.metrics.{metric}' must be an object")


def _section(doc: Mapping, key: str, read):
    """A section read by `read` when `doc` has a non-empty object under `key`, else None."""
    value = doc.get(key)
    return read(value) if isinstance(value, Mapping) and value else None


def from_json(doc: Any, source: str = "results") -> ExperimentResults:
    """The results a ``results.json`` object holds; UserError naming `source` if malformed."""
    _check(doc, source)
    srm = doc["srm"]
    return ExperimentResults(
        treatment=doc["treatment"],
        control=doc["control"],
        seed=doc["seed"],
        days=doc["days"],
        alpha=_number(doc.get("alpha")),
        correction=_text(doc.get("correction")),
        cuped=_flag(doc.get("cuped")),
        synthetic=_flag(doc.get("synthetic")),
        srm=Srm(
            statistic=_number(srm.get("statistic")),
            p_value=_number(srm.get("p_value")),
            flagged=_flag(srm.get("flagged")),
            users=_arms_of(srm.get("users")),
            expected=_arms_of(srm.get("expected")) if srm.get("expected") else None,
            note=_text(srm.get("note")),
        ),
        scenarios={str(n): _scenario_of(s) for n, s in doc["scenarios"].items()},
        overall=_population_of(doc["overall"]),
        segments=_section(doc, "segments", _segments_of),
        daily=_section(doc, "daily", _daily_of),
        distributions=_section(doc, "distributions", _distributions_of),
        serving=_section(doc, "serving", _serving_of),
        run=_run_of(doc),
    )
