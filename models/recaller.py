"""The serving view of a recall model: :class:`Recaller`, what the index, the offline
evaluation and the simulator's serving read from any model, and :class:`ModelRecaller`, the
recaller of a trained torch model (the floors' are in :mod:`models.floors`)."""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import nn

from models.data import ItemTable


class Recaller(ABC):
    """Query vectors for users and per-scenario vectors for the pool items; score = inner
    product. This docstring is THE reference of the protocol every recall model follows: the
    zoo's, the floors' and outside models (:mod:`models.outside`, docs/outside_models.md).

    **What a recaller receives.** ``user_vectors(f)`` gets a dict of B rows of user
    features, one row per request (the same dict in training, the offline evaluation and the
    simulator's serving: :func:`models.train.user_features`,
    :func:`abtest.serving.request_features`). Every value is a numpy int64 array:

    * ``user_id`` (B): the user's id, the log folder's dense code 0..U-1 (for a generated
      folder, the simulator's world user id);
    * ``user_bucket`` (B): the hashed id bucket, :func:`models.data.user_buckets`,
      0..``spec.n_user_buckets``-1;
    * ``profile`` (B x F): profile feature codes, column j in 0..``spec.profile_cards[j]``-1
      (F may be 0);
    * ``hist_items`` (B x H, H = ``spec.history_length``): the user's most recent clicked
      item ids across all scenarios before the request, newest first; -1 marks an empty slot
      (trailing padding, but the simulator also blanks clicks not yet visible at the
      request's time, so treat every -1 as absent wherever it is);
    * ``hist_scenarios`` (B x H): the scenario code of each of those clicks, -1 where the
      item is -1;
    * ``scenario`` (B): the request's scenario code, its index in the config's scenario list
      (``scenario_names``), 0..S-1.

    Serving calls it with one scenario per batch and batches of thousands of requests, many
    times; training and evaluation may mix scenarios in a batch. Treat the arrays as
    read-only.

    **What it returns.** ``user_vectors`` returns a B x D array, row i for row i of `f`;
    ``pool_vectors(scenario, pool)`` an N x D array, row j for item ``pool[j]`` (N item ids,
    those of ``items.pools[scenario]``) as seen in that scenario. Both float (cast to
    float32), finite, and one D for users and items in every scenario.
    ``item_vectors(s)`` calls ``pool_vectors`` once per scenario and caches the float32
    result.

    **How it is used.** score(user, item) = inner product of the two vectors; a request's
    candidates are the top-k items of its scenario's pool by that score, found by a faiss
    inner-product search (:class:`models.index.ItemIndex`: exact ``flat`` by default, or an
    approximate ``hnsw``/``ivf``). Only the order of the scores matters. Serving first rounds
    every component to a multiple of 2^-11 (:func:`abtest.serving.snap`, so that scores do
    not depend on batching): scale the vectors to a norm of about 1, as the zoo's unit
    vectors are; differences much below 2^-11 are lost (they become ties).

    **Determinism.** The same rows must give the same vectors, bit for bit, in every call
    and whatever else is in the batch (a row's vector may depend on that row alone), and a
    model built twice from the same data and seed must give the same vectors: the A/B tests
    are reproducible because every arm is. No hidden state may change between calls.
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
    """A trained two-tower (or per-scenario) model: its user tower and item tower.

    Inference runs in float64 on a copy of the model: float32 matmuls give results that
    depend on the batch's size (BLAS picks other kernels; up to 6 in 3,000 `mixed` user
    vectors moved across a 2^-11 grid point between batch sizes 1 and 3,000), which broke
    "a row's vector depends on that row alone". In float64 the batch-to-batch differences
    are ~1e-16, far below the serving grid, so a request's candidates no longer depend on
    which other requests shared its batch.
    """

    def __init__(self, name: str, model: nn.Module, items: ItemTable):
        super().__init__(items)
        self.name, self.model = name, model
        self._infer = copy.deepcopy(model).double().eval()

    @torch.no_grad()
    def user_vectors(self, f: dict[str, np.ndarray], batch: int = 8192) -> np.ndarray:
        n = f["scenario"].shape[0]
        out = []
        for i in range(0, n, batch):
            part = {k: torch.as_tensor(v[i : i + batch]) for k, v in f.items() if k != "user_id"}
            out.append(self._infer.user(part).numpy())
        return np.concatenate(out).astype(np.float32)

    @torch.no_grad()
    def pool_vectors(self, scenario: int, pool: np.ndarray) -> np.ndarray:
        return self._infer.item(torch.as_tensor(pool), scenario).numpy()
