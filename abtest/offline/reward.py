"""The reward model of the doubly robust estimator: a position-based model, cross-fitted.

q_hat(s, k, a) = base(s, k) * f(s, a), with base the mean reward at position k of scenario s
and f the item's observed / expected reward (expected = sum of base over its exposures) shrunk
towards 1 with ``PRIOR_EXPOSURES`` pseudo-exposures. Users are split into two folds by a keyed
hash (:func:`user_folds`); the exposures of one fold are scored by the model fitted on the
other (all logged time).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from core import keyed

PRIOR_EXPOSURES = 20.0


def user_folds(users: np.ndarray, seed: int) -> np.ndarray:
    """Each user's fold, 0 or 1, by a keyed hash of its id."""
    return (keyed.hash64(seed, "ope_fold", users) % np.uint64(2)).astype(np.int64)


@dataclass(frozen=True)
class RewardModel:
    """Cross-fitted position-based model: q_hat(s, k, a) = base[fold, k] * factor[fold, a]."""

    base: dict[int, np.ndarray]  # fold -> base reward per position (fitted on the other fold)
    factor: dict[int, dict[int, float]]  # fold -> item -> shrunk item factor

    @classmethod
    def fit(cls, logs: pl.DataFrame, reward: str, k: int, seed: int) -> RewardModel:
        """Fit on one scenario's exposures (all logged time), one model per held-out fold."""
        logs = logs.filter(pl.col(reward).is_not_null())
        fold = user_folds(logs["user_id"].to_numpy(), seed)
        base, factor = {}, {}
        for held_out in (0, 1):
            fit = logs.filter(pl.Series(fold != held_out))
            if fit.height == 0:
                fit = logs  # one fold only (tiny logs): no cross-fitting possible
            # numpy sums in row order: polars' parallel group_by sums are not reproducible in
            # the last bit from one call to the next, and the report must be (same seed, same
            # report)
            r = fit[reward].to_numpy().astype(np.float64)
            p = fit["position"].to_numpy().clip(0, k - 1)
            mean = float(r.mean()) if r.size else 0.0
            count = np.bincount(p, minlength=k)
            total = np.bincount(p, weights=r, minlength=k)
            b = np.where(count > 0, total / np.maximum(count, 1), mean)
            prior = PRIOR_EXPOSURES * max(mean, 1e-12)
            items, inverse = np.unique(fit["item_id"].to_numpy(), return_inverse=True)
            r_item = np.bincount(inverse, weights=r, minlength=items.size)
            e_item = np.bincount(inverse, weights=b[p], minlength=items.size)
            f = (r_item + prior) / (e_item + prior)
            base[held_out] = b
            factor[held_out] = dict(zip(items.tolist(), f.tolist(), strict=True))
        return cls(base, factor)

    def predict(self, fold: np.ndarray, pos: np.ndarray, items: np.ndarray) -> np.ndarray:
        """q_hat of each (fold, position, item), by the model fitted on the other fold."""
        out = np.empty(items.shape, dtype=np.float64)
        for f in (0, 1):
            m = fold == f
            fac = self.factor[f]
            out[m] = self.base[f][pos[m]] * np.array([fac.get(int(i), 1.0) for i in items[m]])
        return out

    def pool_mean(self, fold: np.ndarray, pos: np.ndarray, pool: np.ndarray) -> np.ndarray:
        """Mean q_hat over the pool's items at each (fold, position): the uniform part."""
        out = np.empty(fold.shape, dtype=np.float64)
        for f in (0, 1):
            fac = self.factor[f]
            mean_f = float(np.mean([fac.get(int(i), 1.0) for i in pool.tolist()]))
            m = fold == f
            out[m] = self.base[f][pos[m]] * mean_f
        return out
