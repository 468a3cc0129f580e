"""What the engine asks of a recommender, and the policies that serve logged traffic.

A :class:`Policy` turns a batch of requests in one scenario into slates with the
probability, under that policy, of showing each item at its position (NaN when the
policy cannot say). The engine calls it once per batch; it must be a pure function of
the requests (randomness keyed by request id), so results do not depend on batching.

* :class:`UniformPolicy`: a uniformly random slate from the scenario's pool. Every item
  has probability 1/N at every position.
* :class:`LoggingPolicy`: the production-like policy of the logs. It scores the pool by
  item popularity (quality) plus a noisy view of the user's true affinity (the error is
  keyed by user, item and day, like a model retrained daily), ranks the top
  ``slate_size * tier_size`` items, and fills position k by a softmax draw among the k-th
  tier of ``tier_size`` items, so better items sit higher yet every tier is stochastic.
  With probability ``epsilon`` the whole slate is uniformly random instead (the random
  slice that replay estimators use). The recorded propensity is the exact marginal
  ``P(item at position k) = (1 - eps) q_k(item) + eps / N``.

  The design card suggested Plackett-Luce sampling; its position-wise marginals have no
  closed form (only the first position's), so logged propensities would have to be
  Monte-Carlo estimates. Tiered softmax keeps what matters (stochastic, ordered,
  personalised, full support through epsilon) with exact propensities.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy import special

from core import keyed
from simulator.world import World


@dataclass(frozen=True)
class RequestBatch:
    """B requests of one scenario, waiting to be served together."""

    scenario: int
    request_id: np.ndarray  # B int64
    session_id: np.ndarray  # B int64
    user_id: np.ndarray  # B int64
    page: np.ndarray  # B int64, 0 for the first page of a session
    timestamp: np.ndarray  # B float64 seconds since the start of day 0 (logical time)
    history_items: np.ndarray  # B x H int64, most recent first, -1 = empty
    history_scenarios: np.ndarray  # B x H int64, scenario of each history click, -1 = empty

    def __len__(self) -> int:
        return int(self.request_id.shape[0])

    @property
    def day(self) -> np.ndarray:
        return (self.timestamp // 86_400.0).astype(np.int64)


@dataclass(frozen=True)
class Slates:
    items: np.ndarray  # B x K int64 item ids
    propensity: np.ndarray  # B x K float64, P(item at position) under the policy; NaN if unknown
    component: np.ndarray  # B int8: which part of the policy served (0 = main, 1 = uniform slice)
    # B x K int8 for interleaved slates: 0 = the control's item, 1 = the treatment's, -1 =
    # neither (filled); None otherwise
    team: np.ndarray | None = None


class Policy(Protocol):
    name: str

    def serve(self, batch: RequestBatch) -> Slates: ...


def uniform_slates(world: World, batch: RequestBatch, seed: int, component: str) -> np.ndarray:
    """B x K items drawn uniformly without replacement from the pool (Gumbel-top-k)."""
    sc = world.scenarios[batch.scenario]
    pool = sc.pool
    keys = keyed.uniform(seed, component, batch.request_id[:, None], pool[None, :])
    top = np.argpartition(keys, sc.slate_size - 1, axis=1)[:, : sc.slate_size]
    order = np.take_along_axis(keys, top, axis=1).argsort(axis=1)
    return pool[np.take_along_axis(top, order, axis=1)]


class UniformPolicy:
    """Uniformly random slates; propensity 1/N at every position."""

    def __init__(self, world: World, seed: int, name: str = "uniform"):
        self.world, self.seed, self.name = world, seed, name

    def serve(self, batch: RequestBatch) -> Slates:
        items = uniform_slates(self.world, batch, self.seed, "uniform_policy")
        prop = np.full(items.shape, 1.0 / self.world.scenarios[batch.scenario].pool.size)
        return Slates(items, prop, np.ones(len(batch), dtype=np.int8))


class LoggingPolicy:
    """The production-like logging policy with an epsilon-uniform slice (see module doc)."""

    def __init__(self, world: World, seed: int, name: str = "logging"):
        self.world, self.seed, self.name = world, seed, name
        self.cfg = world.config.logging_policy
        self._cache: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._cache_day = -1

    def tiers(self, batch: RequestBatch) -> tuple[np.ndarray, np.ndarray]:
        """Production tiers: items B x K x m (ranked) and their within-tier probabilities.

        They depend only on (user, scenario, day), like recommendations precomputed by a
        daily job, so they are cached for the current day.
        """
        day = batch.day
        keys = list(zip(batch.user_id.tolist(), day.tolist(), strict=True))
        if self._cache_day != int(day.max()):
            self._cache = {(s, u, d): v for (s, u, d), v in self._cache.items() if d >= day.min()}
            self._cache_day = int(day.max())
        s = batch.scenario
        todo = [i for i, (u, d) in enumerate(keys) if (s, u, d) not in self._cache]
        if todo:
            idx = np.array(todo)
            items, prob = self._compute_tiers(s, batch.user_id[idx], day[idx])
            for j, i in enumerate(todo):
                self._cache[(s, *keys[i])] = (items[j], prob[j])
        got = [self._cache[(s, u, d)] for u, d in keys]
        return np.stack([g[0] for g in got]), np.stack([g[1] for g in got])

    def _compute_tiers(self, scenario: int, users: np.ndarray, day: np.ndarray):
        w, cfg = self.world, self.cfg
        sc = w.scenarios[scenario]
        pool = sc.pool
        k, m = sc.slate_size, cfg.tier_size
        quality = w.items.quality[pool]
        personal = w.affinity_matrix(sc.index, users, pool) - quality[None, :]
        noise = keyed.normal(
            self.seed, "logging_noise", users[:, None], day[:, None], pool[None, :]
        )
        score = cfg.popularity_weight * quality[None, :] + cfg.personalization_weight * (
            personal + cfg.personalization_noise * noise
        )
        top = np.argpartition(-score, k * m - 1, axis=1)[:, : k * m]
        top_score = np.take_along_axis(score, top, axis=1)
        order = np.lexsort((pool[top], -top_score), axis=1)
        top = np.take_along_axis(top, order, axis=1)
        top_score = np.take_along_axis(top_score, order, axis=1).reshape(len(users), k, m)
        prob = special.softmax(top_score / cfg.temperature, axis=2)
        return pool[top].reshape(len(users), k, m), prob

    def serve(self, batch: RequestBatch) -> Slates:
        sc = self.world.scenarios[batch.scenario]
        eps, n_pool = self.cfg.epsilon, sc.pool.size
        tier_items, tier_prob = self.tiers(batch)
        k = tier_items.shape[1]
        u = keyed.uniform(self.seed, "logging_tier", batch.request_id[:, None], np.arange(k))
        pick = (tier_prob.cumsum(axis=2) < u[:, :, None]).sum(axis=2)
        pick = np.minimum(pick, tier_prob.shape[2] - 1)  # guard the cumsum's last rounding
        items = np.take_along_axis(tier_items, pick[:, :, None], axis=2)[:, :, 0]
        is_random = keyed.uniform(self.seed, "logging_epsilon", batch.request_id) < eps
        if is_random.any():
            sub = _subset(batch, is_random)
            items[is_random] = uniform_slates(self.world, sub, self.seed, "logging_uniform")
        in_tier = tier_items == items[:, :, None]
        q = (tier_prob * in_tier).sum(axis=2)
        prop = (1 - eps) * q + eps / n_pool
        return Slates(items.astype(np.int64), prop, is_random.astype(np.int8))


def _subset(batch: RequestBatch, mask: np.ndarray) -> RequestBatch:
    return RequestBatch(
        batch.scenario,
        batch.request_id[mask],
        batch.session_id[mask],
        batch.user_id[mask],
        batch.page[mask],
        batch.timestamp[mask],
        batch.history_items[mask],
        batch.history_scenarios[mask],
    )
