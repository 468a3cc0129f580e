"""Offline ranking metrics of recall results: recall@K, hit rate@K and NDCG@K per request.

A recall model ranks items for each request; these metrics score the ranking against the
items the request's user actually clicked. Everything is vectorised: a hit matrix marks
which ranked slots hold a relevant item, and each metric is a cumulative sum over it.

Relevance is binary. A ranked item counts once even if a row repeats it (only its first
occurrence can be a hit), and -1 padding ("no item") is never a hit. Targets are sets:
repeated ids in a target count once.

Shapes: R requests, Kmax ranked slots per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from core.errors import UserError

DEFAULT_KS = (20, 50, 100)


def _as_ids(target: Iterable[int] | np.ndarray) -> np.ndarray:
    arr = target if isinstance(target, np.ndarray) else np.fromiter(target, dtype=np.int64)
    if arr.ndim != 1:
        raise UserError(f"each target must be a 1-D set of item ids, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise UserError(f"target item ids must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check_ks(ks: Sequence[int], kmax: int) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or min(ks) < 1:
        raise UserError(f"ks must be positive cut-offs, got {ks}")
    if max(ks) > kmax:
        raise UserError(f"ranked has {kmax} columns but metrics @{max(ks)} were asked for")
    return ks


def hit_matrix(
    ranked: np.ndarray, targets: Sequence[Iterable[int] | np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """Hits (R x Kmax bool) of `ranked` against `targets`, and target sizes (R int64).

    `hits[r, j]` is True when `ranked[r, j]` is a relevant item of request r and its first
    occurrence in the row.
    """
    ranked = np.asarray(ranked)
    if ranked.ndim != 2:
        raise UserError(f"ranked must be an R x K matrix of item ids, got shape {ranked.shape}")
    if ranked.size and ranked.dtype.kind not in "iu":
        raise UserError(f"ranked item ids must be integers, got dtype {ranked.dtype}")
    ranked = ranked.astype(np.int64, copy=False)
    n_req, kmax = ranked.shape
    if len(targets) != n_req:
        raise UserError(f"ranked has {n_req} requests but {len(targets)} targets were given")
    if n_req == 0:
        return np.zeros((0, kmax), dtype=bool), np.zeros(0, dtype=np.int64)
    if ranked.min(initial=0) < -1:
        raise UserError("ranked item ids must be >= 0, or -1 for padding")

    arrays = [_as_ids(t) for t in targets]
    sizes = np.fromiter((a.size for a in arrays), dtype=np.int64, count=n_req)
    if (sizes == 0).any():
        raise UserError(
            f"every request needs a non-empty target; request {np.argmin(sizes)} has none"
        )
    flat_targets = np.concatenate(arrays)
    if flat_targets.min() < 0:
        raise UserError("target item ids must be >= 0 (-1 is reserved for padding)")

    # One int64 key per (request, item): request * span + item, with span > every item id.
    span = int(max(flat_targets.max(), ranked.max(initial=0))) + 1
    if n_req * span >= 2**62:
        raise UserError(f"item ids up to {span - 1} over {n_req} requests overflow int64 keys")
    request_of_target = np.repeat(np.arange(n_req, dtype=np.int64), sizes)
    target_keys = np.unique(request_of_target * span + flat_targets)
    sizes = np.bincount(target_keys // span, minlength=n_req).astype(np.int64)

    rows = np.arange(n_req, dtype=np.int64)[:, None]
    keys = (rows * span + ranked).ravel()
    # target_keys is sorted (np.unique), so membership is a binary search.
    pos = np.minimum(np.searchsorted(target_keys, keys), target_keys.size - 1)
    hit_at = np.flatnonzero((target_keys[pos] == keys) & (ranked.ravel() >= 0))
    # Only the first occurrence of a repeated item in a row can be a hit.
    _, first = np.unique(keys[hit_at], return_index=True)
    hits = np.zeros(keys.size, dtype=bool)
    hits[hit_at[first]] = True
    return hits.reshape(n_req, kmax), sizes


def ranking_metrics(
    ranked: np.ndarray,
    targets: Sequence[Iterable[int] | np.ndarray],
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, np.ndarray]:
    """Per-request recall@K, hr@K and ndcg@K (R float64 each) for every K in `ks`.

    `ranked` is R x Kmax item ids, best first, -1 = no item (Kmax >= max(ks)); `targets[r]`
    is the non-empty set of relevant item ids (>= 0) of request r.

    recall@K = |top K ∩ T| / |T|; hr@K = 1 if top K holds any hit; ndcg@K = DCG / IDCG with
    DCG = sum over hit ranks j (0-based) of 1/log2(j+2), IDCG = sum_{j < min(|T|, K)} 1/log2(j+2).
    """
    ranked = np.asarray(ranked)
    kmax = ranked.shape[1] if ranked.ndim == 2 else 0
    hits, sizes = hit_matrix(ranked, targets)
    ks = _check_ks(ks, kmax)

    discounts = 1.0 / np.log2(np.arange(kmax, dtype=np.float64) + 2.0)  # Kmax
    cum_hits = np.cumsum(hits, axis=1, dtype=np.int64)  # R x Kmax
    cum_dcg = np.cumsum(hits * discounts, axis=1)  # R x Kmax
    cum_ideal = np.cumsum(discounts)  # Kmax

    out: dict[str, np.ndarray] = {}
    for k in ks:
        n_hits = cum_hits[:, k - 1]
        dcg = cum_dcg[:, k - 1]
        idcg = cum_ideal[np.minimum(sizes, k) - 1]
        out[f"recall@{k}"] = n_hits / sizes
        out[f"hr@{k}"] = (n_hits > 0).astype(np.float64)
        out[f"ndcg@{k}"] = dcg / idcg
    return out


def summarise(per_request: dict[str, np.ndarray]) -> dict[str, float]:
    """The mean of each per-request metric (NaN for a metric with no requests)."""
    return {
        name: float(np.mean(values)) if len(values) else float("nan")
        for name, values in per_request.items()
    }
