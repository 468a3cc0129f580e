"""An online A/B experiment run in the simulator, and its truth twin.

Users are hashed into buckets (:mod:`abtest.online.assignment`); arm 0 (control) and arm 1
(treatment) each serve their users with their own model, one batcher each, in one simpy
engine over the experiment period. Holdout users (allocation below 100%) are served by the
control, as production would, and are left out of the analysis.

**Periods.** The pre-period is the logged traffic the models were trained on, served by the
production policy before the experiment: its per-user sums become the CUPED covariates and
activity segments, and each user's last clicks warm the engine's histories, so models read
the same kind of history they were trained on from the first request.

**Truth twin.** On a synthetic world we also want every user's outcome under *both* arms.
Users do not interact in this world (histories are per user, randomness is keyed by user,
session, page and position, the shared ranker is keyed by user and item), so a user's
trajectory depends only on the policy serving them. The twin therefore runs the *other*
policy for every user — control users on the treatment and treatment/holdout users on the
control — and adds it to the A/B run: that gives the whole population under control and
under treatment at the cost of one extra run instead of two. ``tests/test_experiment.py``
checks the composition against full all-control and all-treatment runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from abtest.online.assignment import Layer
from abtest.online.user_stats import SUMS, UserStats, pre_period_stats, warm_histories
from core.budget import check_array
from core.config import Config
from core.errors import UserError
from simulator.engine import Engine, EngineStats, LatencyHistogram
from simulator.logs import LogWriter, start_datetime
from simulator.policies import Policy
from simulator.replay import logged_sessions
from simulator.world import World

ARMS = ("control", "treatment")


@dataclass(frozen=True)
class ArmLatency:
    p50_ms: float
    p99_ms: float
    requests: int

    @classmethod
    def of(cls, h: LatencyHistogram) -> ArmLatency:
        return cls(h.quantile(0.5) * 1e3, h.quantile(0.99) * 1e3, h.n)


@dataclass
class ExperimentData:
    """Everything the statistics need, as per-user sums (no event rows)."""

    arms: tuple[str, str]  # model names of control and treatment
    scenarios: tuple[str, ...]
    seed: int
    start_day: int
    days: int
    assignment: np.ndarray  # U int64: 0 control, 1 treatment, -1 holdout
    observed: UserStats  # the A/B run: arm axis = serving policy (0 control, 1 treatment)
    pre: np.ndarray  # S x U x 5 pre-period sums
    truth: np.ndarray | None = None  # 2 x S x U x D x 5: all users under control / treatment
    latency: dict[str, ArmLatency] = field(default_factory=dict)
    latency_hist: dict[str, LatencyHistogram] = field(default_factory=dict)
    requests: int = 0
    exposures: int = 0
    wall_seconds: float = 0.0
    twin_wall_seconds: float = 0.0

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.wall_seconds if self.wall_seconds > 0 else float("nan")


def check_allocation(config: Config) -> Layer:
    alloc = config.experiment.allocation
    if set(alloc) != set(ARMS):
        raise UserError(
            "experiment.allocation: must give shares for exactly 'control' and 'treatment', "
            f"got {', '.join(map(repr, alloc)) or 'none'}"
        )
    return Layer(config.experiment.salt, {a: alloc[a] for a in ARMS})


def check_experiment_size(config: Config, days: int, copies: int) -> None:
    """Refuse in one line, before any slow work, an experiment whose `copies` arrays of
    per-user sums (2 arms x scenarios x users x days x 5) would not fit in memory."""
    shape = (copies, len(ARMS), len(config.scenarios), config.world.n_users, days, len(SUMS))
    check_array("the experiment's per-user sums (copies x arms x scenarios x users x days x sums)",
                shape)  # fmt: skip


def _service_time(config: Config):
    s = config.serving

    def service(n: int) -> float:
        return (s.service_ms_per_batch + s.service_ms_per_request * n) / 1000.0

    return service


def simulate_period(
    config: Config,
    world: World,
    policies: Sequence[Policy],
    logs: pl.DataFrame,
    route_of_user: np.ndarray,
    *,
    days: int,
    seed: int,
    users: np.ndarray | None = None,
    sinks: Sequence = (),
    progress: bool = False,
    desc: str = "simulating",
    replay: pl.DataFrame | None = None,
    fixed_sessions: bool = False,
) -> tuple[UserStats, Engine]:
    """Serve the experiment period with user u on ``policies[route_of_user[u]]``.

    Histories start from the pre-period logs; arrivals come from the world's traffic model,
    or from the sessions of the `replay` log (with their logged page counts if
    `fixed_sessions`). Returns the per-user sums and the engine.
    """
    start_day = config.periods.pre_days
    t0 = start_datetime(world)
    stats = UserStats.empty(len(policies), len(world.scenarios), world.users.n, start_day, days)
    engine = Engine(
        world,
        policies,
        [stats, *sinks],
        seed=seed,
        route=lambda u: route_of_user[u],
        users=users,
        batch_window=config.engine.batch_window,
        capacity=config.serving.capacity,
        service_time=_service_time(config),
    )
    warm_histories(
        logs, config.scenario_names, engine.history, t0, t0 + dt.timedelta(days=start_day)
    )
    if replay is not None:
        engine.replay, pages = logged_sessions(replay, world, start_day, days, users)
        engine.fixed_pages = pages if fixed_sessions else None
    engine.run(start_day, days, progress=progress, desc=desc)
    return stats, engine


def _assign(
    config: Config, n_users: int, users: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ids of the users in this run (default: everyone) and every user's arm index
    (-1 for users outside the run)."""
    layer = check_allocation(config)
    user_ids = np.arange(n_users) if users is None else np.asarray(users, dtype=np.int64)
    assignment = np.full(n_users, -1, dtype=np.int64)
    assignment[user_ids] = layer.arm_index(user_ids)
    return user_ids, assignment


def run_experiment(
    config: Config,
    world: World,
    policies: tuple[Policy, Policy],
    logs: pl.DataFrame,
    *,
    names: tuple[str, str],
    days: int,
    seed: int,
    twin: bool = True,
    users: np.ndarray | None = None,
    save_events: Path | None = None,
    progress: bool = True,
    replay: pl.DataFrame | None = None,
    fixed_sessions: bool = False,
) -> ExperimentData:
    """Run the A/B test (and its twin) over `days` days after the pre-period.

    `policies` are (control, treatment); `logs` the pre-period logs (covariates, histories);
    `users` restricts the run to a shard of user ids (default: everyone).
    """
    n_users = world.users.n
    user_ids, assignment = _assign(config, n_users, users)
    serve_ab = np.where(assignment == 1, 1, 0)  # holdout users get the control (production)
    start_day = config.periods.pre_days
    pre_end = start_datetime(world) + dt.timedelta(days=start_day)
    pre = pre_period_stats(logs, config.scenario_names, n_users, pre_end)

    def one_run(route: np.ndarray, desc: str, sinks=()) -> tuple[UserStats, Engine]:
        return simulate_period(
            config,
            world,
            policies,
            logs,
            route,
            days=days,
            seed=seed,
            users=user_ids,
            sinks=sinks,
            progress=progress,
            desc=desc,
            replay=replay,
            fixed_sessions=fixed_sessions,
        )

    writer = LogWriter(world, list(names)) if save_events is not None else None
    try:
        observed, engine = one_run(
            serve_ab, f"A/B {names[1]} vs {names[0]}", [writer] if writer else []
        )
        if writer is not None:
            writer.finish(save_events)
    finally:
        if writer is not None:
            writer.close()
    es: EngineStats = engine.stats
    data = ExperimentData(
        arms=names,
        scenarios=config.scenario_names,
        seed=seed,
        start_day=start_day,
        days=days,
        assignment=assignment,
        observed=observed,
        pre=pre,
        requests=es.requests,
        exposures=es.exposures,
        wall_seconds=es.wall_seconds,
    )
    for a, name in enumerate(ARMS):
        h = engine.latency[a]
        data.latency_hist[name] = h
        data.latency[name] = ArmLatency.of(h)
    if twin:
        other, twin_engine = one_run(1 - serve_ab, "truth twin")
        data.truth = observed.values + other.values
        data.twin_wall_seconds = twin_engine.stats.wall_seconds
    return data
