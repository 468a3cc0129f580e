"""Faiss indexes over item embeddings, one per (model, scenario), searched by inner product.

An :class:`ItemIndex` holds the items of one model and scenario: exact (``flat``) or
approximate (``hnsw``, ``ivf``), chosen by an :class:`IndexSpec`. Search returns real item
ids, not faiss row positions, and always B x k results: when fewer than k items exist or
were found, the tail is padded with id -1 and score -inf.

:func:`recall_vs_flat` measures how much of the exact top k an approximate index finds, and
:func:`compare_indexes` reports that recall with build and search times for several specs.

Shapes: N items, D embedding dimensions, B queries, k results per query.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import faiss
import numpy as np

from core.errors import UserError

KINDS = ("flat", "hnsw", "ivf")
MIN_POINTS_PER_CENTROID = 39  # faiss warns when k-means gets fewer training points per list


@dataclass(frozen=True)
class IndexSpec:
    kind: Literal["flat", "hnsw", "ivf"] = "flat"
    hnsw_m: int = 32  # HNSW neighbours per node
    ef_search: int = 64  # HNSW search beam width (faiss uses at least k)
    nlist: int = 0  # IVF lists; 0 = auto ≈ 4 sqrt(N); capped at N / 39
    nprobe: int = 8  # IVF lists visited per query (capped at nlist)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise UserError(f"index kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.hnsw_m < 2:
            raise UserError(f"hnsw_m must be >= 2, got {self.hnsw_m}")
        if self.ef_search < 1:
            raise UserError(f"ef_search must be >= 1, got {self.ef_search}")
        if self.nlist < 0:
            raise UserError(f"nlist must be >= 0 (0 = auto), got {self.nlist}")
        if self.nprobe < 1:
            raise UserError(f"nprobe must be >= 1, got {self.nprobe}")


def ivf_nlist(spec: IndexSpec, n_items: int) -> int:
    """The number of IVF lists used for `n_items` items: the spec's (or ≈ 4 sqrt(N)), capped."""
    wanted = spec.nlist or round(4 * math.sqrt(n_items))
    return max(1, min(wanted, n_items // MIN_POINTS_PER_CENTROID))


def _finite_matrix(name: str, x: np.ndarray, dim: int | None = None) -> np.ndarray:
    """`x` as a C-contiguous float32 2-D matrix with finite entries, or a UserError."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise UserError(f"{name} must be a 2-D matrix, got shape {x.shape}")
    if x.dtype.kind not in "fiu":
        raise UserError(f"{name} must be numeric, got dtype {x.dtype}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise UserError(f"{name} is empty (shape {x.shape})")
    if dim is not None and x.shape[1] != dim:
        raise UserError(f"{name} have {x.shape[1]} dimensions, the index has {dim}")
    with np.errstate(over="ignore"):  # too large for float32 -> inf, reported below
        x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise UserError(f"{name} contain NaN or infinite values (or overflow float32)")
    return x


def _positive_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise UserError(f"k must be a positive integer, got {k!r}")
    return int(k)


class ItemIndex:
    """Inner-product nearest-neighbour search over one set of item embeddings."""

    def __init__(self, item_ids: np.ndarray, vectors: np.ndarray, spec: IndexSpec | None = None):
        """Build the index of `vectors` (N x D), row i being item `item_ids[i]` (N int64)."""
        self.spec = spec if spec is not None else IndexSpec()
        ids = np.asarray(item_ids)
        if ids.ndim != 1 or (ids.size and ids.dtype.kind not in "iu"):
            raise UserError(f"item_ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
        vectors = _finite_matrix("item vectors", vectors)
        if ids.size != vectors.shape[0]:
            raise UserError(f"{ids.size} item ids but {vectors.shape[0]} item vectors")
        ids = ids.astype(np.int64)
        if ids.min() < 0:
            raise UserError("item ids must be >= 0 (-1 is reserved for 'no item')")
        if np.unique(ids).size != ids.size:
            raise UserError("item ids must be unique")
        self.item_ids = ids  # N int64, row position -> item id
        self.n_items, self.dim = vectors.shape
        self.index = self._build(vectors)

    @property
    def kind(self) -> str:
        return self.spec.kind

    def _build(self, vectors: np.ndarray) -> faiss.Index:
        spec, dim = self.spec, self.dim
        if spec.kind == "flat":
            index = faiss.IndexFlatIP(dim)
        elif spec.kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, spec.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efSearch = spec.ef_search
        else:
            nlist = ivf_nlist(spec, self.n_items)
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            if self.n_items < MIN_POINTS_PER_CENTROID * nlist:  # tiny N, one list: no warning
                index.cp.min_points_per_centroid = 1
            index.train(vectors)
            index.nprobe = min(spec.nprobe, nlist)
            self._quantizer = quantizer  # the IVF index does not own it: keep it alive
        index.add(vectors)
        return index

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top `k` items of each query: scores (B x k float32) and item ids (B x k int64).

        Best first; missing results (k > N, or fewer found by an approximate index) are
        id -1 with score -inf.
        """
        k = _positive_k(k)
        queries = _finite_matrix("queries", queries, dim=self.dim)
        scores, positions = self.index.search(queries, min(k, self.n_items))
        missing = positions < 0
        ids = np.where(missing, -1, self.item_ids[np.where(missing, 0, positions)])
        scores = np.where(missing, -np.inf, scores).astype(np.float32)
        if k > self.n_items:
            pad = ((0, 0), (0, k - self.n_items))
            ids = np.pad(ids, pad, constant_values=-1)
            scores = np.pad(scores, pad, constant_values=-np.inf)
        return scores, ids.astype(np.int64)


def _overlap(ann_ids: np.ndarray, flat_ids: np.ndarray, k: int) -> float:
    """Mean over rows of |ann row ∩ flat row| / k, ignoring -1 (both B x k, rows unique)."""
    cols = np.arange(k, dtype=np.int64)
    # Give each -1 a distinct negative value so padding never matches anything.
    a = np.where(ann_ids < 0, -1 - cols, ann_ids)
    f = np.where(flat_ids < 0, -1 - k - cols, flat_ids)
    both = np.sort(np.concatenate([a, f], axis=1), axis=1)  # B x 2k
    common = (both[:, 1:] == both[:, :-1]).sum(axis=1)
    return float(np.mean(common / k))


def recall_vs_flat(index: ItemIndex, flat: ItemIndex, queries: np.ndarray, k: int) -> float:
    """Mean over queries of |top k of `index` ∩ exact top k of `flat`| / k.

    Both indexes must hold the same items; k is capped at N so that a perfect index scores 1.
    """
    if flat.kind != "flat":
        raise UserError(f"recall_vs_flat needs a flat reference index, got {flat.kind!r}")
    if (index.n_items, index.dim) != (flat.n_items, flat.dim):
        raise UserError(
            f"indexes differ: {index.n_items} x {index.dim} vs flat {flat.n_items} x {flat.dim}"
        )
    k = min(_positive_k(k), flat.n_items)
    _, ann_ids = index.search(queries, k)
    _, flat_ids = flat.search(queries, k)
    return _overlap(ann_ids, flat_ids, k)


@dataclass(frozen=True)
class IndexReport:
    kind: str
    n_items: int
    k: int
    recall_vs_flat: float
    build_seconds: float
    search_seconds: float  # all queries, one batch
    flat_search_seconds: float  # the exact search of the same queries, for comparison


DEFAULT_SPECS = (IndexSpec("flat"), IndexSpec("hnsw"), IndexSpec("ivf"))


def compare_indexes(
    item_ids: np.ndarray,
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int = 50,
    specs: Sequence[IndexSpec] = DEFAULT_SPECS,
) -> list[IndexReport]:
    """One report per spec: recall against exact search, build and search times."""
    flat = ItemIndex(item_ids, vectors, IndexSpec("flat"))
    k = min(_positive_k(k), flat.n_items)
    start = time.perf_counter()
    _, flat_ids = flat.search(queries, k)
    flat_seconds = time.perf_counter() - start

    reports = []
    for spec in specs:
        start = time.perf_counter()
        index = ItemIndex(item_ids, vectors, spec)
        built = time.perf_counter()
        _, ids = index.search(queries, k)
        searched = time.perf_counter()
        reports.append(
            IndexReport(
                kind=spec.kind,
                n_items=index.n_items,
                k=k,
                recall_vs_flat=_overlap(ids, flat_ids, k),
                build_seconds=built - start,
                search_seconds=searched - built,
                flat_search_seconds=flat_seconds,
            )
        )
    return reports
