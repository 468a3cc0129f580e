"""The floors: recallers that learn nothing, the lower references of every comparison.

* :class:`PopularRecaller` (`popular`): every user gets the scenario's most clicked items
  (click counts of a training window), ties broken by a keyed jitter;
* :class:`RandomRecaller` (`random`): a random ranking per user, keyed by the seed.

Both are :class:`models.recaller.Recaller`\\ s, so serving, the index and the evaluation treat
them like the learned models. :data:`FLOOR_RECALLERS` maps each floor's name to its class.
"""

from __future__ import annotations

import numpy as np

from core import keyed
from models.data import Dataset, ItemTable
from models.recaller import Recaller

RANDOM_DIM = 16  # width of the random floor's unit vectors


class PopularRecaller(Recaller):
    """Ranks a scenario's pool by its click counts: log counts as 1-d item vectors, a
    constant user vector."""

    name = "popular"

    def __init__(self, items: ItemTable, popularity: np.ndarray, seed: int = 0):
        super().__init__(items)
        self.popularity = popularity  # S x I click counts
        self.seed = seed

    @classmethod
    def from_dataset(cls, data: Dataset, seed: int) -> PopularRecaller:
        """Ranked by the click counts of `data`'s training window."""
        return cls(data.items, popularity_counts(data), seed)

    def user_vectors(self, f: dict[str, np.ndarray]) -> np.ndarray:
        return np.ones((f["scenario"].shape[0], 1), dtype=np.float32)

    def pool_vectors(self, scenario: int, pool: np.ndarray) -> np.ndarray:
        counts = self.popularity[scenario, pool]
        # log counts, ties broken by a tiny keyed jitter so the order is stable
        jitter = keyed.uniform(self.seed, "popular_tie", pool) * 1e-3
        return (np.log1p(counts) + jitter)[:, None]


class RandomRecaller(Recaller):
    """Random keyed unit vectors per user and per item: a random ranking per user."""

    name = "random"

    def __init__(self, items: ItemTable, seed: int = 0):
        super().__init__(items)
        self.seed = seed

    @classmethod
    def from_dataset(cls, data: Dataset, seed: int) -> RandomRecaller:
        return cls(data.items, seed)

    def user_vectors(self, f: dict[str, np.ndarray]) -> np.ndarray:
        return random_unit(self.seed, "random_user", f["user_id"], RANDOM_DIM)

    def pool_vectors(self, scenario: int, pool: np.ndarray) -> np.ndarray:
        return random_unit(self.seed, "random_item", pool, RANDOM_DIM)


FLOOR_RECALLERS: dict[str, type[PopularRecaller] | type[RandomRecaller]] = {
    cls.name: cls for cls in (PopularRecaller, RandomRecaller)
}


def random_unit(seed: int, component: str, ids: np.ndarray, dim: int) -> np.ndarray:
    """len(ids) x dim keyed random unit vectors (float32), one per id."""
    v = keyed.normal(seed, component, np.asarray(ids)[:, None], np.arange(dim)[None, :])
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def popularity_counts(data: Dataset) -> np.ndarray:
    """S x I training-window click counts per scenario."""
    scen = data.requests.scenario[data.train.request]
    counts = np.zeros((data.spec.n_scenarios, data.spec.n_items))
    np.add.at(counts, (scen, data.train.item), 1)
    return counts
