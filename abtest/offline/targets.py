"""The target policy a model stands for in the offline evaluation, on one scenario's logged
slots (:class:`Target`, :func:`target_on`).

A model is turned into a stochastic slate policy per logged request: its deterministic slate
is the top-K of the scenario's pool by the model's own score (:mod:`abtest.offline.scorers`);
position k then shows the k-th item with probability 1 - eps and a uniformly random pool item
with probability eps (``TARGET_EPSILON``). So pi_k(a | x) = (1 - eps) 1[a = top_k(x)] + eps / N
> 0 wherever the logging policy can show a, and every estimator targets the same estimand:
this policy's expected reward **per exposure** on the logged requests. Replay (uniform slice
only) matches the logged item against a draw from pi_k (the top-K item, or with probability
eps a uniform one, keyed by request and position), which is Li et al.'s rejection replay of a
stochastic policy and unbiased for the same value.

A :class:`Target` carries, besides the per-exposure quantities every estimator reads, what DR
and the exact truth need of the policy (:meth:`Target.q_target`, :meth:`Target.truth`); a
policy given as a table of probabilities builds its own kind of target
(:class:`abtest.offline.policy_table.TableTarget`) with the same fields and methods.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from abtest.offline.logged import Slots
from abtest.offline.reward import RewardModel
from abtest.offline.scorers import Scorer
from abtest.offline.truth import PerMetric, truth_values
from core import keyed

TARGET_EPSILON = 0.05


@dataclass(frozen=True)
class Target:
    """A policy's per-exposure quantities on one scenario's slots."""

    top: np.ndarray  # R x K deterministic slate
    top_at: np.ndarray  # per exposure: the top-K item at the logged position
    pi: np.ndarray  # per exposure: pi_k(logged item | x)
    matched: np.ndarray  # per exposure: uniform-slice event whose logged item = a draw from pi
    epsilon: float  # the eps-uniform part of the model's slate policy

    @property
    def shown(self) -> np.ndarray:
        """Per exposure: the policy shows an item at that slot (a model always does)."""
        return np.ones(self.pi.shape, dtype=bool)

    def own_choice(self, items: np.ndarray) -> np.ndarray:
        """Per exposure: the logged item is the policy's own choice (here: its top-K item)."""
        return items == self.top_at

    def q_target(
        self, qm: RewardModel, fold: np.ndarray, pos: np.ndarray, items: np.ndarray, pool
    ) -> np.ndarray:
        """DR's sum_a pi_k(a | x) q_hat(a, k) at each exposure's slot (`items`: logged)."""
        q_top = qm.predict(fold, pos, np.where(self.top_at >= 0, self.top_at, items))
        q_pool = qm.pool_mean(fold, pos, pool)
        return (1 - self.epsilon) * q_top + self.epsilon * q_pool

    def truth(self, world, slots: Slots) -> PerMetric:
        """The exact per-exposure value of the policy (synthetic logs: `world`)."""
        return truth_values(world, slots, self.top, self.epsilon)


def target_on(
    scorer: Scorer, slots: Slots, epsilon: float, seed: int, uniform: np.ndarray
) -> Target:
    """`scorer`'s eps-uniform slate policy on `slots`; `uniform` flags the uniform slice."""
    top = scorer.top(slots.scenario, slots.requests, slots.k)
    ex = slots.exposures
    req = ex["req"].to_numpy()
    pos = ex["position"].to_numpy()
    item = ex["item_id"].to_numpy()
    n_pool = slots.pool.size
    inside = pos < top.shape[1]
    top_at = np.where(inside, top[req, np.minimum(pos, top.shape[1] - 1)], -1)
    in_pool = np.isin(item, slots.pool)
    pi = np.where(in_pool, (1 - epsilon) * (item == top_at) + epsilon / n_pool, 0.0)
    rid = ex["request_id"].to_numpy()
    explore = keyed.uniform(seed, "ope_target_eps", rid, pos) < epsilon
    pick = np.minimum((keyed.uniform(seed, "ope_target_item", rid, pos) * n_pool), n_pool - 1)
    draw = np.where(explore, slots.pool[pick.astype(np.int64)], top_at)
    return Target(top, top_at, pi, uniform & (draw == item), epsilon)
