"""Scale-out: the A/B simulation split into user-hash shards, run as Ray tasks, merged.

Users are independent given the world and randomness is keyed by identity (see
:mod:`abtest.online.experiment`), so a shard — the users whose hash falls in it — can be simulated
alone: its per-user sums are exactly the rows the single-process run would have produced.
Merging adds the shards' sums (they are disjoint in users), so the result equals the
single-process run for the same seed, bit for bit (``tests/test_scale.py``).

Ray is an optional extra (``pip install -e '.[ray]'``). ``--workers N`` starts a local Ray
with N CPUs, or joins the cluster named by ``RAY_ADDRESS`` (e.g. ``ray://head:10001``, or
``auto`` on a cluster node); tasks carry the config, the models and the pre-period logs, so
workers need the package installed but no shared disk.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl

from abtest.online.assignment import buckets
from abtest.online.experiment import ARMS, ArmLatency, ExperimentData, run_experiment
from abtest.online.user_stats import UserStats
from abtest.ray_jobs import ray_session
from core.config import Config, config_from_dict

SHARD_SALT = "abtest-shard-v1"


def shards(n_users: int, workers: int) -> list[np.ndarray]:
    """User ids split by a stable hash into `workers` shards (independent of the A/B salt)."""
    users = np.arange(n_users, dtype=np.int64)
    which = buckets(users, SHARD_SALT) % workers
    return [users[which == w] for w in range(workers)]


def _shard_task(config_tree, recallers, logs, users, names, days, seed, twin, replay, fixed):
    import torch

    from abtest.serving import build_policy
    from simulator.synthetic import SyntheticWorld

    torch.set_num_threads(1)
    cfg = config_from_dict(config_tree, "<shard>")
    world = SyntheticWorld(cfg)
    policies = tuple(build_policy(n, world, recallers[n], cfg.serving, seed) for n in names)
    return run_experiment(
        cfg, world, policies, logs, names=names, days=days, seed=seed, twin=twin, users=users,
        progress=False, replay=replay, fixed_sessions=fixed,
    )  # fmt: skip


def merge(parts: list[ExperimentData]) -> ExperimentData:
    """Add the shards' per-user sums (disjoint users) into one :class:`ExperimentData`."""
    first = parts[0]
    # one shard at a time: stacking the shards would hold all of them twice (workers x the
    # full arrays); the users are disjoint, so the sums are exact in any order
    assignment = first.assignment.copy()
    for p in parts[1:]:
        np.maximum(assignment, p.assignment, out=assignment)
    observed = first.observed
    for p in parts[1:]:
        observed = observed.merge(p.observed)
    truth = None
    if first.truth is not None:
        truth = first.truth.copy()
        for p in parts[1:]:
            truth += p.truth
    hist = {}
    for arm in ARMS:
        h = first.latency_hist.get(arm)
        for p in parts[1:]:
            if h is not None and arm in p.latency_hist:
                h = h.merge(p.latency_hist[arm])
        if h is not None:
            hist[arm] = h
    return dataclasses.replace(
        first,
        assignment=assignment,
        observed=UserStats(observed.values, first.observed.start_day),
        truth=truth,
        latency_hist=hist,
        latency={a: ArmLatency.of(h) for a, h in hist.items()},
        requests=sum(p.requests for p in parts),
        exposures=sum(p.exposures for p in parts),
        wall_seconds=max(p.wall_seconds for p in parts),
        twin_wall_seconds=max(p.twin_wall_seconds for p in parts),
    )


def run_sharded(
    config: Config,
    recallers: dict,
    logs: pl.DataFrame,
    *,
    names: tuple[str, str],
    days: int,
    seed: int,
    workers: int,
    twin: bool = True,
    replay: pl.DataFrame | None = None,
    fixed_sessions: bool = False,
    address: str | None = None,
) -> ExperimentData:
    """The A/B run (and twin) as `workers` Ray tasks, one per user shard, merged."""
    with ray_session(workers, address) as ray:
        task = ray.remote(_shard_task)
        refs = [ray.put(x) for x in (config.to_dict(), recallers, logs, replay)]
        futures = [
            task.remote(
                refs[0], refs[1], refs[2], users, names, days, seed, twin, refs[3], fixed_sessions
            )
            for users in shards(config.world.n_users, workers)
        ]
        return merge(ray.get(futures))
