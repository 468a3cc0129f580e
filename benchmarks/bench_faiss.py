"""Section ``faiss``: flat, HNSW and IVF indexes: recall@50 against flat and queries/s.

On clustered synthetic vectors at the default pool size and 10x / 100x, and on the random
recaller's own vectors; plus an IVF ``nprobe`` sweep up to 10x.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.section import Section
from benchmarks.worlds import random_recaller
from core.config import Config


def clustered(n: int, dim: int, centers: np.ndarray, spread: float, rng) -> np.ndarray:
    c = centers[rng.integers(0, centers.shape[0], n)]
    x = c + spread * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def bench_faiss(config: Config, world, multiples: tuple[int, ...], n_queries: int) -> Section:
    from models.index import IndexSpec, ItemIndex, compare_indexes, recall_vs_flat

    sec = Section("faiss")
    rng = np.random.default_rng(7)
    base = max(sc.pool.size for sc in world.scenarios)
    dim = config.world.latent_dim
    centers = rng.standard_normal((config.world.n_categories, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    cases = []
    for m in multiples:
        n = base * m
        items = clustered(n, dim, centers, 0.7, rng)
        queries = clustered(n_queries, dim, centers, 1.0, rng)
        cases.append((f"clustered x{m}", np.arange(n), items, queries))
    rec = random_recaller(world, 1)
    pool, vecs = rec.item_vectors(0)
    users = rng.choice(world.users.n, n_queries)
    q = rec.user_vectors({"scenario": np.zeros(n_queries, dtype=np.int64), "user_id": users})
    cases.append(("random recaller x1", pool, vecs, q))
    rows = []
    for label, ids, items, queries in cases:
        reports = compare_indexes(ids, items, queries, k=50)
        flat_qps = n_queries / reports[0].search_seconds
        for r in reports:
            qps = n_queries / r.search_seconds
            rows.append(
                {
                    "vectors": label,
                    "n_items": r.n_items,
                    "dim": items.shape[1],
                    "kind": r.kind,
                    "recall@50_vs_flat": round(r.recall_vs_flat, 4),
                    "build_s": round(r.build_seconds, 3),
                    "queries_per_s": round(qps),
                    "speedup_vs_flat": round(qps / flat_qps, 2),
                }
            )
            if r.kind != "flat":
                sec.target(
                    f"{r.kind} {label} (N={r.n_items:,}): qps / flat qps",
                    round(qps / flat_qps, 2),
                    "",
                    None,
                    f"recall@50 {r.recall_vs_flat:.3f}",
                )
    # IVF's recall falls with N at the default nprobe (8 of ~4 sqrt(N) lists): sweep nprobe on
    # one built index (sizes up to 10x; the 100x build alone takes ~30 s).
    for label, ids, items, queries in cases:
        if items.shape[0] > 10 * base:
            continue
        flat = ItemIndex(ids, items, IndexSpec("flat"))
        t0 = time.perf_counter()
        flat.search(queries, 50)
        flat_qps = n_queries / (time.perf_counter() - t0)
        ivf = ItemIndex(ids, items, IndexSpec("ivf"))
        for nprobe in (8, 32, 128):
            ivf.index.nprobe = min(nprobe, ivf.index.nlist)
            t0 = time.perf_counter()
            ivf.search(queries, 50)
            qps = n_queries / (time.perf_counter() - t0)
            rows.append(
                {
                    "vectors": label,
                    "n_items": ivf.n_items,
                    "dim": items.shape[1],
                    "kind": f"ivf nlist={ivf.index.nlist} nprobe={ivf.index.nprobe}",
                    "recall@50_vs_flat": round(recall_vs_flat(ivf, flat, queries, 50), 4),
                    "build_s": None,
                    "queries_per_s": round(qps),
                    "speedup_vs_flat": round(qps / flat_qps, 2),
                }
            )
    sec.figures = {"queries": n_queries, "k": 50, "default_pool": base, "rows": rows}
    return sec
