"""How far a world fitted from logs is from the truth (``python -m abtest fidelity``).

On a synthetic config the ground truth is known. A world is fitted from the pre-period of
the config's logs only (:mod:`abtest.calibration`); then for each model pair (each model
against the control, ``mixed`` by default) and each experiment seed:

* the **real** true lift: the synthetic world's truth twin (every user under both arms);
* the **fitted** true lift: the fitted world's own twin (model-based), and the 95% CI of
  the simulated A/B on the fitted world.

Per scenario x metric it reports the absolute lift error, the sign agreement, whether the
fitted world's CI holds the real true lift, and over all pairs Kendall's tau between fitted
and real lifts (overall and per metric); and the click model's log-loss on the held-out
logged exposures against the true click probabilities' (the floor no fit can beat).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from abtest.online.analysis import HEADLINE_METRICS, AnalysisOptions, analyse
from abtest.online.experiment import ARMS, run_experiment
from core.config import Config

DEFAULT_MODELS = ("sass", "sass_base", "star", "mmoe", "single", "popular")


@dataclass(frozen=True)
class PairLift:
    """One (model, seed, scenario, metric): the real and the fitted world's lifts."""

    model: str
    seed: int
    scenario: str
    metric: str
    real: float | None  # the synthetic world's true lift
    fitted: float | None  # the fitted world's true (model-based) lift
    fitted_ci: tuple[float | None, float | None]  # the A/B on the fitted world

    @property
    def known(self) -> bool:
        return self.real is not None and self.fitted is not None

    @property
    def covered(self) -> bool | None:
        lo, hi = self.fitted_ci
        if self.real is None or lo is None or hi is None:
            return None
        return lo <= self.real <= hi


@dataclass(frozen=True)
class Fidelity:
    """Every pair's lifts and the summaries (see the module doc)."""

    control: str
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    days: int
    world: str
    lifts: tuple[PairLift, ...]
    click_log_loss: dict[str, float]
    summary: dict[str, Any] = field(default_factory=dict)


def _summary(lifts: list[PairLift], scenarios: list[str]) -> dict[str, Any]:
    def block(rows: list[PairLift]) -> dict[str, Any]:
        known = [r for r in rows if r.known]
        if not known:
            return {"pairs": 0}
        real = np.array([r.real for r in known])
        fit = np.array([r.fitted for r in known])
        covered = [r.covered for r in known if r.covered is not None]
        tau = stats.kendalltau(fit, real).statistic if len(known) > 1 else float("nan")
        return {
            "pairs": len(known),
            "mean_abs_error": float(np.mean(np.abs(fit - real))),
            "sign_agreement": float(np.mean(np.sign(fit) == np.sign(real))),
            "kendall_tau": None if tau is None or math.isnan(tau) else float(tau),
            "ci_covers_real": float(np.mean(covered)) if covered else None,
        }

    out: dict[str, Any] = {"overall": block(lifts)}
    out["by_metric"] = {m: block([r for r in lifts if r.metric == m]) for m in HEADLINE_METRICS}
    out["by_scenario"] = {
        s: {m: block([r for r in lifts if r.scenario == s and r.metric == m])
            for m in HEADLINE_METRICS}
        for s in scenarios
    }  # fmt: skip
    return out


def click_log_loss(config: Config, world_true, params, logs: pl.DataFrame, pre_end) -> dict:
    """Log-loss of the true and the fitted click probabilities on the held-out exposures."""
    from simulator.response_fit import click_probability

    post = logs.filter(pl.col("timestamp") >= pre_end)
    codes = {n: i for i, n in enumerate(config.scenario_names)}
    s = post["scenario"].replace_strict(codes, return_dtype=pl.Int64).to_numpy()
    u, i, k = (post[c].to_numpy() for c in ("user_id", "item_id", "position"))
    y = post["click"].to_numpy().astype(float)
    p_true = np.empty(post.height)
    for sc in range(len(codes)):
        m = s == sc
        if m.any():
            aff = world_true.affinity(sc, u[m], i[m][:, None])[:, 0]
            p_true[m] = _at_positions(world_true, sc, aff, k[m])
    p_fit = click_probability(params, s, u, i, k)

    def ll(p: np.ndarray) -> float:
        p = np.clip(p, 1e-9, 1 - 1e-9)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    return {"exposures": int(post.height), "true": ll(p_true), "fitted": ll(p_fit),
            "constant": ll(np.full(post.height, y.mean() if y.size else 0.5))}  # fmt: skip


def _at_positions(world, scenario: int, affinity: np.ndarray, positions: np.ndarray):
    """P(click) of exposures with their own positions (the world's click model is per slot)."""
    kmax = int(positions.max()) + 1
    grid = world.click_probability(scenario, np.repeat(affinity[:, None], kmax, axis=1))
    return grid[np.arange(positions.size), positions]


def run_fidelity(
    config: Config,
    models: tuple[str, ...],
    control: str,
    seeds: tuple[int, ...],
    world_dir: Path,
    *,
    days: int,
    progress: bool = False,
    say=print,
) -> Fidelity:
    """Every model against `control` on the real and the fitted world, for every seed."""
    from abtest.calibration import load_fitted_world
    from abtest.online.runner import prepare
    from abtest.serving import build_policy
    from simulator.generation import log_dir_for
    from simulator.logs import start_datetime

    prep = prepare(config, [control, *models], progress)
    fitted_world, _ = load_fitted_world(world_dir, config, log_dir_for(config))
    traffic = {s.name: s.traffic_share for s in config.scenarios}
    expected = {a: config.experiment.allocation[a] for a in ARMS}
    lifts: list[PairLift] = []
    for seed in seeds:
        opts = AnalysisOptions(alpha=0.05, cuped=True, seed=seed)
        for model in models:
            results = {}
            for label, world in (("real", prep.world), ("fitted", fitted_world)):
                say(f"      seed {seed}: {model} vs {control} on the {label} world")
                policies = tuple(
                    build_policy(n, world, prep.recallers[n], config.serving, seed)
                    for n in (control, model)
                )
                exp = run_experiment(
                    config, world, policies, prep.logs, names=(control, model), days=days,
                    seed=seed, twin=True, progress=progress,
                )  # fmt: skip
                results[label] = analyse(exp, traffic, expected, opts, daily=False, extras=False)
            for scenario in config.scenario_names:
                for metric in HEADLINE_METRICS:
                    real = results["real"].scenarios[scenario].metric(metric)
                    fit = results["fitted"].scenarios[scenario].metric(metric)
                    ci = (fit.ci_low, fit.ci_high)
                    row = PairLift(model, seed, scenario, metric, real.true_lift, fit.true_lift, ci)
                    lifts.append(row)
    pre_end = start_datetime(prep.world) + dt.timedelta(days=config.periods.pre_days)
    ll = click_log_loss(config, prep.world, fitted_world.params, prep.logs, pre_end)
    summary = _summary(lifts, list(config.scenario_names))
    return Fidelity(control, models, seeds, days, str(world_dir), tuple(lifts), ll, summary)
