"""The floors: popular ranks by per-scenario clicks, random is keyed by its seed, and both
are recallers like the learned models."""

from __future__ import annotations

import numpy as np
import pytest

from models.data import ItemTable
from models.floors import (
    FLOOR_RECALLERS,
    PopularRecaller,
    RandomRecaller,
    popularity_counts,
    random_unit,
)
from models.recaller import Recaller
from models.train import user_features
from models.zoo import FLOORS


def test_floors_rank_as_they_should(data):
    pop = PopularRecaller(data.items, popularity_counts(data))
    pool, vecs = pop.item_vectors(0)
    counts = popularity_counts(data)[0, pool]
    order = np.argsort(-vecs[:, 0])
    assert np.all(np.diff(counts[order]) <= 0)  # ranked by click count
    rnd = RandomRecaller(data.items, seed=3)
    f = user_features(data.requests, data.train.request[:5])
    u = rnd.user_vectors(f)
    assert u.shape == (5, 16) and np.allclose(np.linalg.norm(u, axis=1), 1, atol=1e-5)


def _tiny_items() -> ItemTable:
    zeros = np.zeros(6, dtype=np.int64)
    return ItemTable(zeros, zeros, zeros, (np.array([0, 1, 2, 3]), np.array([2, 3, 4, 5])))


def test_popular_ranks_each_scenario_by_its_own_click_counts():
    counts = np.array([[5, 0, 9, 1, 0, 0], [0, 0, 2, 7, 3, 40]], dtype=float)
    pop = PopularRecaller(_tiny_items(), counts, seed=1)
    users = pop.user_vectors({"scenario": np.array([0, 1, 1])})
    assert users.dtype == np.float32 and np.array_equal(users, np.ones((3, 1), np.float32))
    for s, want in [(0, [2, 0, 3, 1]), (1, [5, 3, 4, 2])]:
        pool, vecs = pop.item_vectors(s)
        assert vecs.dtype == np.float32 and vecs.shape == (4, 1)
        assert pool[np.argsort(-(vecs @ users[0]))].tolist() == want
    # equal counts are ordered by a keyed jitter below one count's step: stable per seed
    tied = np.zeros((2, 6))
    a = PopularRecaller(_tiny_items(), tied, seed=1).item_vectors(0)[1]
    assert np.array_equal(a, PopularRecaller(_tiny_items(), tied, seed=1).item_vectors(0)[1])
    assert not np.array_equal(a, PopularRecaller(_tiny_items(), tied, seed=2).item_vectors(0)[1])
    assert np.ptp(a) < 1e-3


def test_popularity_counts_are_training_clicks_per_scenario(data):
    counts = popularity_counts(data)
    assert counts.shape == (data.spec.n_scenarios, data.spec.n_items)
    assert counts.sum() == len(data.train)
    scen = data.requests.scenario[data.train.request]
    s, i = int(scen[0]), int(data.train.item[0])
    assert counts[s, i] == np.sum((scen == s) & (data.train.item == i))


def test_random_is_seeded_and_deterministic(data):
    f = user_features(data.requests, data.train.request[:20])
    a, b, c = (RandomRecaller(data.items, seed=s) for s in (3, 3, 4))
    assert np.array_equal(a.user_vectors(f), b.user_vectors(f))
    assert np.array_equal(a.item_vectors(1)[1], b.item_vectors(1)[1])
    assert not np.array_equal(a.user_vectors(f), c.user_vectors(f))
    # a user's vector depends on the user alone, not on the batch around it
    two = {k: v[7:9] for k, v in f.items()}
    assert np.array_equal(a.user_vectors(f)[7], a.user_vectors(two)[0])
    pool, items = a.item_vectors(1)
    assert np.array_equal(pool, data.items.pools[1])
    assert np.array_equal(items, random_unit(3, "random_item", pool, 16))


@pytest.mark.parametrize("name", FLOORS)
def test_floors_are_recallers(data, name):
    cls = FLOOR_RECALLERS[name]
    rec = cls.from_dataset(data, seed=0)
    assert isinstance(rec, Recaller) and rec.name == name
    f = user_features(data.requests, data.train.request[:8])
    users = rec.user_vectors(f)
    assert users.dtype == np.float32 and users.shape[0] == 8
    for s in range(data.spec.n_scenarios):
        pool, vecs = rec.item_vectors(s)
        assert np.array_equal(pool, data.items.pools[s])
        assert vecs.dtype == np.float32 and vecs.shape == (pool.size, users.shape[1])
        assert rec.item_vectors(s)[1] is vecs  # computed once per scenario
    assert tuple(FLOOR_RECALLERS) == FLOORS == ("popular", "random")
