"""Offline replay of logged sessions: off-policy estimates of a model's CTR and watch time.

:func:`run_offline` evaluates a recall model — or a policy given as a table of action
probabilities (:mod:`.policy_table`) — (and a baseline model, with their paired lift) on
logged traffic and returns a :class:`~abtest.offline.results.ReplayRun`; with an output
folder it writes ``replay.json``, ``replay.md`` and ``replay_days.png`` there. The pieces:
the logs and their evaluation window (:mod:`.logged`), the model's eps-uniform slate policy
(:mod:`.scorers`, :mod:`.targets`), the cross-fitted reward model of DR (:mod:`.reward`),
the exact truth on synthetic logs (:mod:`.truth`), the estimators (:mod:`.estimators` over
:mod:`.ope`), the per-metric evaluation and the day walker (:mod:`.evaluation`).

Per scenario, every estimator targets the same estimand: the target policy's expected reward
**per exposure** on the evaluated requests. Standard errors are clustered per user (the
default; a user's exposures share one taste) or per request (``cluster="request"``). The
reward model is fitted once on all logs; the day walker recomputes every CTR estimate at
each logged day's end on the exposures logged so far.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import polars as pl

from abtest.offline.estimators import ESTIMATORS, Estimator, Inputs, estimators_named
from abtest.offline.evaluation import (
    DAY_SECONDS,
    OVERLAP_MODEL,
    OVERLAP_TABLE,
    evaluate_metric,
    mean_or_none,
    running_estimates,
)
from abtest.offline.logged import Logged, Slots, load_logged, scenario_slots
from abtest.offline.policy_table import TablePolicy, TableTarget, check_covered
from abtest.offline.render import write_outputs
from abtest.offline.results import (
    DayEstimate,
    LoggingValue,
    MetricResult,
    ReplayRun,
    ScenarioResult,
    Settings,
)
from abtest.offline.reward import RewardModel, user_folds
from abtest.offline.scorers import Scorer, build_scorer
from abtest.offline.targets import TARGET_EPSILON, Target, target_on
from abtest.offline.truth import ScenarioTruth, logging_truth
from core.config import Config
from core.errors import UserError
from simulator.logs import UNIFORM, logical_seconds

METRICS = {"ctr": "click", "watch_time": "watch_time"}  # metric -> reward column


@dataclass(frozen=True)
class RunSetup:
    """What every scenario's evaluation shares: the logs, the world, the two policies."""

    logged: Logged
    world: object | None  # simulator.synthetic.SyntheticWorld on synthetic logs
    policy: Scorer | TablePolicy
    baseline: Scorer | None
    estimators: tuple[Estimator, ...]
    epsilon: float
    cluster: str  # "user" or "request"
    seed: int


def prepare(
    config: Config | None,
    policy_name: str | None,
    baseline_name: str | None,
    logs_dir: str | Path,
    estimators: Sequence[str],
    *,
    clip: float | None,
    epsilon: float,
    cluster: str,
    eval_start: dt.datetime | None,
    seed: int | None,
    progress: bool,
    policy_table: str | Path | pl.DataFrame | None = None,
) -> RunSetup:
    """Check the arguments, read the logs, rebuild the world, read the policy table (if the
    policy is one) and build the models' scorers."""
    if (policy_name is None) == (policy_table is None):
        raise UserError("give the policy to evaluate: a model or a policy table (not both)")
    chosen = estimators_named(estimators, clip)
    if not 0 < epsilon <= 1:
        raise UserError(f"the target policy's epsilon must be in (0, 1], got {epsilon}")
    if cluster not in ("user", "request"):
        raise UserError(f"cluster must be 'user' or 'request', got {cluster!r}")
    if clip is not None and not clip > 0:
        raise UserError(f"--clip must be > 0, got {clip}")
    logged = load_logged(logs_dir, eval_start)
    if seed is None:
        seed = (logged.config or config).seed if (logged.config or config) else 0
    world = None
    if logged.synthetic:
        from simulator.synthetic import SyntheticWorld

        world = SyntheticWorld(logged.config)
    table = None
    if policy_table is not None:  # checked before any model is built (trained)
        table = TablePolicy.of(policy_table, logged, world.items.n if world else None)
    cache: dict = {}
    scorers = {}
    if policy_name is not None:
        scorers[policy_name] = build_scorer(policy_name, logged, seed, progress, cache, config)
    if baseline_name is not None and baseline_name not in scorers:
        scorers[baseline_name] = build_scorer(baseline_name, logged, seed, progress, cache, config)
    baseline = scorers[baseline_name] if baseline_name is not None else None
    policy = table if table is not None else scorers[policy_name]
    return RunSetup(logged, world, policy, baseline, chosen, epsilon, cluster, seed)


def metric_inputs(
    setup: RunSetup, slots: Slots, column: str, targets: Sequence[Target | None]
) -> tuple[Inputs | None, ...]:
    """Each target's estimator inputs for the reward in `column` (None for a None target)."""
    ex = slots.exposures
    r = ex[column].fill_null(0.0).to_numpy().astype(np.float64)
    users = ex["user_id"].to_numpy()
    clusters = users if setup.cluster == "user" else ex["request_id"].to_numpy()
    fold = user_folds(users, setup.seed)
    pos = ex["position"].to_numpy()
    items = ex["item_id"].to_numpy()
    mu = ex["propensity"].fill_null(float("nan")).to_numpy()
    name = setup.logged.scenarios[slots.scenario]
    every = setup.logged.logs.filter(pl.col("scenario") == name)  # all logged time
    qm = RewardModel.fit(every, column, slots.k, setup.seed)
    q_log = qm.predict(fold, pos, items)

    def inputs(t: Target) -> Inputs:
        q_tgt = t.q_target(qm, fold, pos, items, slots.pool)
        return Inputs(r, t.pi, mu, t.matched, q_log, q_tgt, clusters, t.own_choice(items))

    return tuple(inputs(t) if t is not None else None for t in targets)


def metric_result(
    setup: RunSetup,
    metric: str,
    pol: Inputs,
    base: Inputs | None,
    truth: ScenarioTruth | None,
    has: np.ndarray,
) -> MetricResult:
    """The policy's block for `metric` with the logging policy's value and the baseline's."""
    tr_p = truth.policy[metric] if truth is not None else None
    tr_b = truth.baseline[metric] if truth is not None and truth.baseline is not None else None
    overlap = OVERLAP_TABLE if isinstance(setup.policy, TablePolicy) else OVERLAP_MODEL
    block = evaluate_metric(setup.estimators, pol, base, tr_p, tr_b, has, overlap)
    log_truth = mean_or_none(truth.logging[metric][has]) if truth is not None else None
    base_block = None
    if base is not None:
        base_block = evaluate_metric(setup.estimators, base, None, tr_b, None, has)
    logging = LoggingValue(mean_or_none(pol.r[has]), log_truth)
    return replace(block, logging=logging, baseline_estimates=base_block)


def evaluate_scenario(
    setup: RunSetup, slots: Slots
) -> tuple[ScenarioResult, tuple[DayEstimate, ...]]:
    """One scenario's results and its CTR estimates day by day."""
    ex = slots.exposures
    name = setup.logged.scenarios[slots.scenario]
    uniform = (ex["policy"] == UNIFORM).to_numpy()
    eps, seed = setup.epsilon, setup.seed
    if isinstance(setup.policy, TablePolicy):
        tp = setup.policy.target_on(slots, seed, uniform, name)
    else:
        tp = target_on(setup.policy, slots, eps, seed, uniform)
    tb = target_on(setup.baseline, slots, eps, seed, uniform) if setup.baseline else None
    truth = None
    if setup.world is not None:
        world = setup.world
        base = tb.truth(world, slots) if tb is not None else None
        truth = ScenarioTruth(tp.truth(world, slots), base, logging_truth(world, slots))
    shown = tp.shown  # a table may show nothing at some logged slots: left out
    blocks: dict[str, MetricResult | None] = {}
    days: tuple[DayEstimate, ...] = ()
    for metric, column in METRICS.items():
        has = ex[column].is_not_null().to_numpy() & shown
        if not has.any():
            if metric == "ctr":
                raise UserError(f"scenario {name}: no rewards logged")
            blocks[metric] = None
            continue
        pol, base = metric_inputs(setup, slots, column, (tp, tb))
        blocks[metric] = metric_result(setup, metric, pol, base, truth, has)
        if metric == "ctr":
            secs = ex.select(logical_seconds(setup.logged.eval_start)).to_series().to_numpy()
            day = (secs // DAY_SECONDS).astype(np.int64)
            tr_p = truth.policy["ctr"] if truth is not None else None
            days = running_estimates(setup.estimators, pol, has, tr_p, day)
    support = tp.support if isinstance(tp, TableTarget) else None
    scenario = ScenarioResult(
        blocks["ctr"], ex.height, int(uniform.sum()), blocks["watch_time"], support
    )
    return scenario, days


def _settings(setup: RunSetup, clip: float | None) -> Settings:
    logged = setup.logged
    return Settings(
        logs=logged.log_dir,
        kind="synthetic" if logged.synthetic else "real",
        evaluated_from=logged.eval_start,
        estimators=tuple(e.name for e in setup.estimators),
        estimand="expected reward per exposure on the logged requests",
        target_policy=(
            setup.policy.describe()
            if isinstance(setup.policy, TablePolicy)
            else f"top-K by model score, eps-uniform per position (eps={setup.epsilon})"
        ),
        clusters=setup.cluster,
        clip=clip,
        seed=setup.seed,
    )


def run_offline(
    config: Config | None,
    policy_name: str | None,
    baseline_name: str | None,
    logs_dir: str | Path,
    estimators: Sequence[str] = tuple(ESTIMATORS),
    out_dir: str | Path | None = None,
    *,
    clip: float | None = None,
    epsilon: float = TARGET_EPSILON,
    cluster: str = "user",
    eval_start: dt.datetime | None = None,
    seed: int | None = None,
    progress: bool = False,
    policy_table: str | Path | pl.DataFrame | None = None,
) -> ReplayRun:
    """Estimate `policy_name` (and `baseline_name`, with their lift) on the logs in `logs_dir`.

    With `policy_table` (a file, or a frame of its columns) instead of `policy_name` (None),
    the policy evaluated is the table's (:mod:`.policy_table`), on the scenarios it names.
    With `out_dir`, also writes ``replay.json``, ``replay.md`` and ``replay_days.png`` there.
    See the module doc for the method.
    """
    setup = prepare(
        config,
        policy_name,
        baseline_name,
        logs_dir,
        estimators,
        clip=clip,
        epsilon=epsilon,
        cluster=cluster,
        eval_start=eval_start,
        seed=seed,
        progress=progress,
        policy_table=policy_table,
    )
    table = setup.policy if isinstance(setup.policy, TablePolicy) else None
    # the slots' pool is the model's (the baseline's for a table: its eps-uniform part)
    pools = setup.policy.pools if table is None else (setup.baseline or table).pools
    scenarios: dict[str, ScenarioResult] = {}
    daily: dict[str, tuple[DayEstimate, ...]] = {}
    for s, name in enumerate(setup.logged.scenarios):
        if table is not None and name not in table.scenarios:
            continue
        slots = scenario_slots(setup.logged, s, pools[s])
        if slots is not None:
            scenarios[name], daily[name] = evaluate_scenario(setup, slots)
    if table is not None:
        if not scenarios:
            raise UserError(
                f"{table.source}: none of the table's scenarios "
                f"({', '.join(sorted(table.scenarios))}) has logged exposures at or after "
                f"{setup.logged.eval_start.isoformat()}"
            )
        check_covered(table, {n: sc.support for n, sc in scenarios.items()})
    name = table.name if table is not None else policy_name
    run = ReplayRun(name, baseline_name, scenarios, _settings(setup, clip), daily)
    if out_dir is not None:
        write_outputs(Path(out_dir), run)
    return run
