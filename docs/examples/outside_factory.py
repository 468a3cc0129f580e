"""An outside recall model in a few lines of numpy, for docs/outside_models.md.

*Category affinity*: a user's vector is the share of each item category among their recent
clicks (the ``hist_items`` of the request), plus a constant; an item's vector is the one-hot
of its category, plus its scenario's click popularity in the logs. The inner product is

    score(user, item) = share of the item's category in the user's clicks
                        + 0.1 * popularity of the item in the scenario (0..1)

so a user is recalled the most clicked items of the categories they click, and a user
without clicks the scenario's most clicked items.

Served from the repository root with (``docs`` is a package for this):

    python -m abtest run --treatment docs.examples.outside_factory:make --control mixed

The harness calls ``make(context)`` once; `context` is a :class:`models.outside.ModelContext`.
"""

from __future__ import annotations

import numpy as np

POPULARITY_WEIGHT = 0.1


class CategoryAffinity:
    def __init__(self, context):
        data = context.dataset
        if data is None:
            raise ValueError("category affinity learns from the logs: it needs context.dataset")
        self.category = context.items.category  # item id -> category code
        self.n_categories = context.spec.n_categories
        # clicks of the training window per scenario and item, log-scaled to 0..1
        n_scenarios, n_items = context.spec.n_scenarios, context.spec.n_items
        scenario = data.requests.scenario[data.train.request]
        clicks = np.bincount(
            scenario * n_items + data.train.item, minlength=n_scenarios * n_items
        ).reshape(n_scenarios, n_items)
        self.popularity = np.log1p(clicks) / max(np.log1p(clicks.max()), 1.0)

    def user_vectors(self, features: dict[str, np.ndarray]) -> np.ndarray:
        hist = features["hist_items"]  # B x H, -1 = no click
        clicked = hist >= 0
        n_rows, n_cat = hist.shape[0], self.n_categories
        cat = np.where(clicked, self.category[np.maximum(hist, 0)], n_cat)  # n_cat = none
        rows = np.repeat(np.arange(n_rows), hist.shape[1]).reshape(hist.shape)
        counts = np.bincount((rows * (n_cat + 1) + cat).ravel(), minlength=n_rows * (n_cat + 1))
        counts = counts.reshape(n_rows, n_cat + 1)[:, :n_cat]
        share = counts / np.maximum(clicked.sum(axis=1, keepdims=True), 1)
        return np.hstack([share, np.full((n_rows, 1), POPULARITY_WEIGHT)]).astype(np.float32)

    def pool_vectors(self, scenario: int, pool: np.ndarray) -> np.ndarray:
        onehot = np.zeros((pool.size, self.n_categories), dtype=np.float32)
        onehot[np.arange(pool.size), self.category[pool]] = 1.0
        return np.hstack([onehot, self.popularity[scenario, pool][:, None]]).astype(np.float32)


def make(context) -> CategoryAffinity:
    return CategoryAffinity(context)
