"""abtest.serving: the recall policy (recaller -> faiss -> shared ranker -> slate)."""

from __future__ import annotations

import numpy as np
import pytest

from abtest.serving import NoisyTruthRanker, RecallPolicy
from models.data import ItemTable
from models.floors import RandomRecaller
from simulator.policies import RequestBatch
from simulator.world import World


@pytest.fixture(scope="module")
def tiny(tiny_ab):
    return tiny_ab


def _random_recaller(world: World) -> RandomRecaller:
    return RandomRecaller(ItemTable.from_world(world), seed=3)


def _batch(world: World, scenario: int, users: np.ndarray) -> RequestBatch:
    n = users.size
    h = world.config.world.history_length
    return RequestBatch(
        scenario,
        np.arange(n, dtype=np.int64) * 1024,
        np.arange(n, dtype=np.int64),
        users,
        np.zeros(n, dtype=np.int64),
        np.full(n, 3 * 86_400.0),
        np.full((n, h), -1, dtype=np.int64),
        np.full((n, h), -1, dtype=np.int64),
    )


def test_recall_policy_serves_pool_items_and_is_batch_invariant(tiny):
    _, world, _ = tiny
    policy = RecallPolicy("r", world, _random_recaller(world), NoisyTruthRanker(world, 1, 1.0), 50)
    users = np.arange(40)
    for s, sc in enumerate(world.scenarios):
        whole = policy.serve(_batch(world, s, users)).items
        assert whole.shape == (40, sc.slate_size)
        assert np.isin(whole, sc.pool).all()
        assert all(np.unique(row).size == row.size for row in whole)
        halves = [policy.serve(_batch(world, s, users[i : i + 20])).items for i in (0, 20)]
        np.testing.assert_array_equal(whole, np.concatenate(halves))


def test_the_shared_ranker_picks_better_items_than_recall_order(tiny):
    _, world, _ = tiny
    rec = _random_recaller(world)
    ranked = RecallPolicy("r", world, rec, NoisyTruthRanker(world, 1, 0.5), 100)
    users = np.arange(100)
    b = _batch(world, 0, users)
    cand, _ = ranked.recall(b)
    slate = ranked.serve(b).items
    k = slate.shape[1]
    assert world.affinity(0, users, slate).mean() > world.affinity(0, users, cand[:, :k]).mean()
