"""Sharded runs: user-hash shards merged equal the single-process run, exactly (local Ray)."""

from __future__ import annotations

import numpy as np
import pytest

from abtest.online.experiment import run_experiment
from abtest.online.scale import merge, shards
from abtest.serving import build_policy
from models.data import ItemTable
from models.floors import RandomRecaller
from tests.conftest import AB_DAYS

DAYS = AB_DAYS


@pytest.fixture(scope="module")
def tiny(tiny_ab):
    cfg, world, logs = tiny_ab
    items = ItemTable.from_world(world)
    recallers = {"a": RandomRecaller(items, seed=1), "b": RandomRecaller(items, seed=2)}
    return cfg, world, logs, recallers


def _single(tiny, users=None):
    cfg, world, logs, rec = tiny
    policies = tuple(build_policy(n, world, rec[n], cfg.serving, cfg.seed) for n in ("a", "b"))
    return run_experiment(
        cfg, world, policies, logs, names=("a", "b"), days=DAYS, seed=cfg.seed, progress=False,
        users=users,
    )  # fmt: skip


def test_shards_partition_the_users():
    parts = shards(1000, 3)
    assert sorted(np.concatenate(parts).tolist()) == list(range(1000))
    assert all(abs(p.size - 333) < 60 for p in parts)


def test_merged_shards_equal_the_single_process_run(tiny):
    _, world, _, _ = tiny
    whole = _single(tiny)
    merged = merge([_single(tiny, users) for users in shards(world.users.n, 3)])
    np.testing.assert_array_equal(merged.assignment, whole.assignment)
    np.testing.assert_array_equal(merged.observed.values, whole.observed.values)
    np.testing.assert_array_equal(merged.truth, whole.truth)
    assert merged.requests == whole.requests and merged.exposures == whole.exposures


@pytest.mark.slow  # starts a local Ray (about 20 s on 2 cores); CI runs the slow tests
def test_ray_tasks_give_the_single_process_result(tiny):
    ray = pytest.importorskip("ray")
    from abtest.online.scale import run_sharded

    cfg, _, logs, rec = tiny
    whole = _single(tiny)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        sharded = run_sharded(cfg, rec, logs, names=("a", "b"), days=DAYS, seed=cfg.seed,
                              workers=2)  # fmt: skip
    finally:
        ray.shutdown()
    np.testing.assert_array_equal(sharded.observed.values, whole.observed.values)
    np.testing.assert_array_equal(sharded.truth, whole.truth)
    np.testing.assert_array_equal(sharded.assignment, whole.assignment)
