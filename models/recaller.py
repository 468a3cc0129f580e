"""The serving view of a recall model: :class:`Recaller`, what the index, the offline
evaluation and the simulator's serving read from any model, and :class:`ModelRecaller`, the
recaller of a trained torch model (the floors' are in :mod:`models.floors`)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import nn

from models.data import ItemTable


class Recaller(ABC):
    """Query vectors for users and per-scenario vectors for the pool items; score = inner
    product.

    ``user_vectors`` gives B x D float32 query vectors for rows of user features in their
    scenarios; ``item_vectors(s)`` the scenario's pool items and their N x D float32
    vectors, computed once per scenario.
    """

    name: str

    def __init__(self, items: ItemTable):
        self.items = items
        self._item_cache: dict[int, np.ndarray] = {}

    @abstractmethod
    def user_vectors(self, f: dict[str, np.ndarray]) -> np.ndarray:
        """B x D float32 query vectors of the rows of user features `f`."""

    @abstractmethod
    def pool_vectors(self, scenario: int, pool: np.ndarray) -> np.ndarray:
        """N x D vectors of the items `pool` of `scenario` (any float dtype)."""

    def item_vectors(self, scenario: int) -> tuple[np.ndarray, np.ndarray]:
        pool = self.items.pools[scenario]
        if scenario not in self._item_cache:
            self._item_cache[scenario] = self.pool_vectors(scenario, pool).astype(np.float32)
        return pool, self._item_cache[scenario]


class ModelRecaller(Recaller):
    """A trained two-tower (or per-scenario) model: its user tower and item tower."""

    def __init__(self, name: str, model: nn.Module, items: ItemTable):
        super().__init__(items)
        self.name, self.model = name, model

    @torch.no_grad()
    def user_vectors(self, f: dict[str, np.ndarray], batch: int = 8192) -> np.ndarray:
        n = f["scenario"].shape[0]
        self.model.eval()
        out = []
        for i in range(0, n, batch):
            part = {k: torch.as_tensor(v[i : i + batch]) for k, v in f.items() if k != "user_id"}
            out.append(self.model.user(part).numpy())
        return np.concatenate(out).astype(np.float32)

    @torch.no_grad()
    def pool_vectors(self, scenario: int, pool: np.ndarray) -> np.ndarray:
        self.model.eval()
        return self.model.item(torch.as_tensor(pool), scenario).numpy()
