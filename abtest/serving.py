"""Serving a trained recall model in the engine: user tower -> faiss -> shared ranker -> slate.

A :class:`RecallPolicy` is one arm of an experiment. For a batch of requests of one
scenario it

1. builds the user tower's features from the request (hashed user id, profile, the user's
   click history *as the engine has it*, with scenarios, and the scenario),
2. runs the arm's user tower and searches that scenario's faiss index for the top
   ``candidates`` items,
3. scores the candidates with a **ranker shared by both arms** and shows the best
   ``slate_size`` of them.

The ranker is common so that an experiment measures the recall stage, as the SASS paper's
online test did: an arm can only win by recalling better candidates. Two rankers:

* ``noisy_truth``: the world's true affinity plus a keyed N(0, noise²) error per (user, item,
  day) — a strong production ranker that still makes mistakes, and the same mistakes in both
  arms (the error is keyed by identity, not by arm);
* ``recall_score``: the recall model's own inner product (no ranking stage).

Vectors are rounded to a 2^-11 grid so that every inner product of unit vectors is exact in
float32: scores, and so candidates, do not depend on how requests were batched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core import keyed
from core.config import ServingConfig
from models.data import user_buckets
from models.index import IndexSpec, ItemIndex
from models.recaller import Recaller
from simulator.policies import RequestBatch, Slates
from simulator.world import World

GRID = 2.0**-11


def snap(x: np.ndarray) -> np.ndarray:
    """Round to the 2^-11 grid (float32): sums of products of such unit vectors are exact."""
    return (np.round(np.asarray(x, dtype=np.float64) / GRID) * GRID).astype(np.float32)


class NoisyTruthRanker:
    """Ranks by true affinity + keyed noise per (user, item, day); identical in every arm."""

    name = "noisy_truth"

    def __init__(self, world: World, seed: int, noise: float):
        self.world, self.seed, self.noise = world, seed, noise

    def score(self, batch: RequestBatch, candidates: np.ndarray, recall: np.ndarray) -> np.ndarray:
        """B x N scores of the B x N candidate items (-1 = no candidate gets -inf)."""
        safe = np.maximum(candidates, 0)
        aff = self.world.affinity(batch.scenario, batch.user_id, safe)
        if self.noise > 0:
            err = keyed.normal(
                self.seed, "ranker", batch.user_id[:, None], batch.day[:, None], safe
            )
            aff = aff + self.noise * err
        return np.where(candidates < 0, -np.inf, aff)


class RecallScoreRanker:
    """No ranking stage: the slate is the recall model's own top items."""

    name = "recall_score"

    def score(self, batch: RequestBatch, candidates: np.ndarray, recall: np.ndarray) -> np.ndarray:
        return np.where(candidates < 0, -np.inf, recall.astype(np.float64))


def build_ranker(world: World, cfg: ServingConfig, seed: int):
    if cfg.ranker == "noisy_truth":
        return NoisyTruthRanker(world, seed, cfg.ranker_noise)
    return RecallScoreRanker()


def request_features(world: World, batch: RequestBatch) -> dict[str, np.ndarray]:
    """The user tower's inputs for a request batch (what `models.train.user_features` reads)."""
    n = len(batch)
    return {
        "user_id": batch.user_id,
        "user_bucket": user_buckets(batch.user_id),
        "profile": world.users.profile[batch.user_id].astype(np.int64),
        "hist_items": batch.history_items,
        "hist_scenarios": batch.history_scenarios,
        "scenario": np.full(n, batch.scenario, dtype=np.int64),
    }


@dataclass
class RecallPolicy:
    """One arm: a trained recall model served from per-scenario faiss indexes (see module doc)."""

    name: str
    world: World
    recaller: Recaller
    ranker: object
    candidates: int = 100
    index_spec: IndexSpec | None = None

    def __post_init__(self) -> None:
        self._indexes: dict[int, ItemIndex] = {}

    def index(self, scenario: int) -> ItemIndex:
        if scenario not in self._indexes:
            pool, vecs = self.recaller.item_vectors(scenario)
            self._indexes[scenario] = ItemIndex(pool, snap(vecs), self.index_spec)
        return self._indexes[scenario]

    def recall(self, batch: RequestBatch) -> tuple[np.ndarray, np.ndarray]:
        """B x N recalled item ids (-1 = none) and their recall scores, best first."""
        users = snap(self.recaller.user_vectors(request_features(self.world, batch)))
        index = self.index(batch.scenario)
        scores, ids = index.search(users, min(self.candidates, index.n_items))
        return ids, scores

    def serve(self, batch: RequestBatch) -> Slates:
        k = self.world.scenarios[batch.scenario].slate_size
        cand, recall = self.recall(batch)
        score = self.ranker.score(batch, cand, recall)
        # best first; ties broken by item id so the order never depends on the batch
        order = np.lexsort((cand, -score), axis=1)[:, :k]
        items = np.take_along_axis(cand, order, axis=1)
        if (items < 0).any():  # fewer candidates than slots: fill from the pool, keyed
            items = _fill(self.world, batch, items)
        ones = np.ones(items.shape, dtype=np.float64)
        return Slates(items.astype(np.int64), ones, np.zeros(len(batch), dtype=np.int8))


def _fill(world: World, batch: RequestBatch, items: np.ndarray) -> np.ndarray:
    pool = world.scenarios[batch.scenario].pool
    out = items.copy()
    for r in np.flatnonzero((items < 0).any(axis=1)):
        have = set(out[r][out[r] >= 0].tolist())
        u = keyed.uniform(0, "fill", batch.request_id[r], pool)
        extra = [int(i) for i in pool[np.argsort(u)] if int(i) not in have]
        slots = np.flatnonzero(out[r] < 0)
        out[r, slots] = extra[: slots.size]
    return out


def build_policy(
    name: str, world: World, recaller: Recaller, cfg: ServingConfig, seed: int
) -> RecallPolicy:
    return RecallPolicy(
        name,
        world,
        recaller,
        build_ranker(world, cfg, seed),
        candidates=cfg.candidates,
        index_spec=IndexSpec(kind=cfg.index),
    )


class OraclePolicy:
    """The world's own ranking: each user's top items by true affinity (an upper reference)."""

    def __init__(self, world: World, name: str = "oracle"):
        self.world, self.name = world, name

    def serve(self, batch: RequestBatch) -> Slates:
        sc = self.world.scenarios[batch.scenario]
        aff = self.world.affinity_matrix(sc.index, batch.user_id, sc.pool)
        order = np.lexsort((np.broadcast_to(sc.pool, aff.shape), -aff), axis=1)[:, : sc.slate_size]
        items = sc.pool[order]
        ones = np.ones(items.shape, dtype=np.float64)
        return Slates(items.astype(np.int64), ones, np.zeros(len(batch), dtype=np.int8))
