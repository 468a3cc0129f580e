"""A recall model's view for the offline evaluation (:class:`Scorer`): per scenario its item
pool and its top-K over that pool for each logged request, by the model's own score (user
vector . item vector, ties by item id; no ranking stage — the engine's shared ``noisy_truth``
ranker needs the world, real logs have none).

On a generated or an imported log folder every model can score — the zoo's (trained on the
folder's pre-period if missing) and outside ones — with features rebuilt from the logs and
the folder's users table; on bare logs without a folder's side tables only the floors
(``popular``: click counts of the earlier part of those logs, ``random``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from abtest.offline.logged import Logged
from core.errors import UserError

Features = Callable[[int, pl.DataFrame], dict[str, np.ndarray]]


@dataclass
class Scorer:
    """A model's view for the replay: per scenario its pool and top-K over it per request."""

    name: str
    recaller: object  # models.recaller.Recaller
    item_code: dict[int, int] | None  # real logs: log item id -> dense code; None = identity
    features: Features  # (scenario code, requests frame) -> feature dict
    pools: tuple[np.ndarray, ...]  # per scenario: pool item ids in the log's id space

    def top(self, s: int, requests: pl.DataFrame, k: int) -> np.ndarray:
        """B x k item ids (log id space), best first, ties by item id."""
        from abtest.serving import snap

        users = snap(self.recaller.user_vectors(self.features(s, requests)))
        codes, vecs = self.recaller.item_vectors(s)
        vecs = snap(vecs)
        pool = self.pools[s]
        k = min(k, pool.size)
        out = np.empty((users.shape[0], k), dtype=np.int64)
        step = max(1, 2_000_000 // max(pool.size, 1))
        for i in range(0, users.shape[0], step):
            score = users[i : i + step].astype(np.float64) @ vecs.T.astype(np.float64)
            part = np.argpartition(-score, k - 1, axis=1)[:, :k]
            ps = np.take_along_axis(score, part, axis=1)
            order = np.lexsort((pool[part], -ps), axis=1)
            out[i : i + step] = pool[np.take_along_axis(part, order, axis=1)]
        del codes
        return out


def _dataset_scorer(name: str, logged: Logged, data, seed: int, progress: bool) -> Scorer:
    """A model trained on (or, outside, bound to) a log folder's dataset `data`."""
    from abtest.pipeline import get_model
    from models.data import SIDE_ID_COLUMNS, user_buckets
    from models.features import click_histories

    recaller = get_model(name, data, seed, progress=progress).recaller
    users = pl.read_parquet(logged.log_dir / "users.parquet")
    profile_cols = [c for c in users.columns if c not in SIDE_ID_COLUMNS]
    codes = {n: i for i, n in enumerate(data.scenario_names)}
    length = data.spec.history_length

    def features(s: int, req: pl.DataFrame) -> dict[str, np.ndarray]:
        hist = click_histories(logged.logs, req, length, codes)
        prof = req.select("user_id").join(users, on="user_id", how="left", maintain_order="left")
        uid = req["user_id"].to_numpy().astype(np.int64)
        return {
            "user_id": uid,
            "user_bucket": user_buckets(uid),
            "profile": prof.select(profile_cols).fill_null(0).to_numpy().astype(np.int64),
            "hist_items": hist.items,
            "hist_scenarios": hist.scenarios,
            "scenario": np.full(req.height, s, dtype=np.int64),
        }

    return Scorer(name, recaller, None, features, tuple(data.items.pools))


def _real_scorer(name: str, logged: Logged, seed: int) -> Scorer:
    from models.data import ItemTable
    from models.floors import PopularRecaller, RandomRecaller
    from models.zoo import FLOORS

    if name not in FLOORS:
        raise UserError(
            f"model {name!r} needs a log folder's users and items (written by `generate` or "
            f"`python -m abtest import`); on bare logs only the floors ({', '.join(FLOORS)}) "
            "can be replayed"
        )
    items = np.sort(logged.logs["item_id"].unique().to_numpy())
    code = {int(i): c for c, i in enumerate(items.tolist())}
    pools = tuple(
        np.sort(logged.logs.filter(pl.col("scenario") == s)["item_id"].unique().to_numpy())
        for s in logged.scenarios
    )
    n = items.size
    zeros = np.zeros(n, dtype=np.int64)
    table = ItemTable(zeros, zeros, zeros, tuple(np.searchsorted(items, p) for p in pools))
    pop = None
    if name == "popular":
        clicks = logged.earlier.filter(pl.col("click") == 1)
        pop = np.zeros((len(logged.scenarios), n))
        if clicks.height:
            s_idx = clicks["scenario"].replace_strict(
                {s: i for i, s in enumerate(logged.scenarios)}, return_dtype=pl.Int64
            )
            np.add.at(pop, (s_idx.to_numpy(), np.searchsorted(items, clicks["item_id"])), 1)
    recaller = (
        PopularRecaller(table, pop, seed) if name == "popular" else RandomRecaller(table, seed)
    )

    def features(s: int, req: pl.DataFrame) -> dict[str, np.ndarray]:
        return {
            "user_id": req["user_id"].to_numpy().astype(np.int64),
            "scenario": np.full(req.height, s, dtype=np.int64),
        }

    return Scorer(name, recaller, code, features, pools)


def build_scorer(
    name: str,
    logged: Logged,
    seed: int,
    progress: bool = False,
    cache: dict | None = None,
    config=None,
) -> Scorer:
    """Model `name` as a :class:`Scorer`: on a generated or imported log folder any model
    (a zoo model trained now if missing); on bare logs only the floors. `cache` shares the
    folder's dataset between the policy and the baseline; `config` supplies an imported
    folder's model settings (its history length)."""
    from models.data import load_dataset
    from models.zoo import check_model_spec

    check_model_spec(name)
    if not (logged.synthetic or logged.imported):
        return _real_scorer(name, logged, seed)
    cache = {} if cache is None else cache
    if "data" not in cache:
        if logged.imported and config is None:
            raise ValueError("an imported log folder needs the config's model settings")
        cache["data"] = load_dataset(logged.log_dir, logged.config or config)
    return _dataset_scorer(name, logged, cache["data"], seed, progress)
