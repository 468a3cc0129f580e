"""Item indexes: flat search is exact, ANN indexes find most of the exact top k, bad input."""

import numpy as np
import pytest

from core.errors import UserError
from models.index import (
    IndexReport,
    IndexSpec,
    ItemIndex,
    compare_indexes,
    ivf_nlist,
    recall_vs_flat,
)

# Observed on the clustered data below (seeds 0-2): HNSW (M=32, efSearch=64) ≈ 0.996-0.997,
# IVF (nlist 51, nprobe 8) ≈ 0.99; IVF with nprobe=1 drops to ≈ 0.58, so 0.95 separates a
# working index from a misconfigured one.
ANN_RECALL_MIN = 0.95


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _random(rng, n, d=16):
    return _unit(rng.standard_normal((n, d)))


@pytest.fixture(scope="module")
def clustered():
    """2,000 items and 200 queries, 32-d unit vectors around 20 shared centres."""
    rng = np.random.default_rng(0)
    centres = _unit(rng.standard_normal((20, 32)))

    def draw(n):
        return _unit(centres[rng.integers(0, 20, n)] + rng.standard_normal((n, 32)) / np.sqrt(32))

    return draw(2000), draw(200)


def _brute_force(vectors, ids, queries, k):
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), ids[order]


def test_flat_equals_brute_force_with_sparse_ids():
    rng = np.random.default_rng(1)
    vectors, queries = _random(rng, 500), _random(rng, 40)
    ids = 1000 + 7 * np.arange(500)
    scores, got = ItemIndex(ids, vectors).search(queries, 25)
    want_scores, want_ids = _brute_force(vectors, ids, queries, 25)
    assert scores.shape == (40, 25) and scores.dtype == np.float32
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)


def test_non_contiguous_inputs_are_accepted():
    rng = np.random.default_rng(2)
    wide = rng.standard_normal((100, 32))  # float64, and the slice below is strided
    vectors, queries = wide[:, ::2], np.asfortranarray(_random(rng, 5))
    assert not vectors.flags.c_contiguous and not queries.flags.c_contiguous
    _, got = ItemIndex(np.arange(100)[::-1], vectors).search(queries, 10)
    _, want = _brute_force(vectors.astype(np.float32), np.arange(100)[::-1], queries, 10)
    np.testing.assert_array_equal(got, want)


def test_k_larger_than_n_pads():
    rng = np.random.default_rng(3)
    vectors, queries = _random(rng, 4), _random(rng, 3)
    ids = np.array([40, 10, 30, 20])
    for spec in (IndexSpec("flat"), IndexSpec("hnsw"), IndexSpec("ivf")):
        scores, got = ItemIndex(ids, vectors, spec).search(queries, 6)
        assert scores.shape == got.shape == (3, 6)
        np.testing.assert_array_equal(got[:, 4:], -1)
        assert np.isneginf(scores[:, 4:]).all()
        assert (np.sort(got[:, :4], axis=1) == [10, 20, 30, 40]).all()
        assert (np.diff(scores[:, :4], axis=1) <= 1e-6).all()  # best first


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_ann_recall_with_defaults(clustered, kind):
    vectors, queries = clustered
    ids = 1000 + 7 * np.arange(len(vectors))
    flat = ItemIndex(ids, vectors)
    ann = ItemIndex(ids, vectors, IndexSpec(kind))
    recall = recall_vs_flat(ann, flat, queries, k=50)
    assert ANN_RECALL_MIN < recall <= 1.0
    assert recall_vs_flat(flat, flat, queries, k=50) == 1.0


def test_recall_vs_flat_sees_a_bad_index(clustered):
    vectors, queries = clustered
    ids = np.arange(len(vectors))
    flat = ItemIndex(ids, vectors)
    crippled = recall_vs_flat(
        ItemIndex(ids, vectors, IndexSpec("ivf", nprobe=1)), flat, queries, 50
    )
    assert crippled < 0.8


def test_ivf_nlist_is_capped():
    assert ivf_nlist(IndexSpec("ivf"), 2000) == 51  # 4 sqrt(2000) ≈ 179, capped at 2000 // 39
    assert ivf_nlist(IndexSpec("ivf"), 100_000) == round(4 * np.sqrt(100_000))
    assert ivf_nlist(IndexSpec("ivf", nlist=10), 2000) == 10
    assert ivf_nlist(IndexSpec("ivf"), 5) == 1


def test_compare_indexes(clustered):
    vectors, queries = clustered
    specs = [IndexSpec("flat"), IndexSpec("hnsw"), IndexSpec("ivf", nprobe=16)]
    reports = compare_indexes(np.arange(len(vectors)), vectors, queries, k=50, specs=specs)
    assert [r.kind for r in reports] == ["flat", "hnsw", "ivf"]
    assert all(isinstance(r, IndexReport) and r.n_items == 2000 and r.k == 50 for r in reports)
    assert reports[0].recall_vs_flat == 1.0
    assert all(r.recall_vs_flat > ANN_RECALL_MIN for r in reports)
    assert all(r.build_seconds >= 0 and r.search_seconds > 0 for r in reports)
    assert all(r.flat_search_seconds == reports[0].flat_search_seconds > 0 for r in reports)


def test_bad_vectors_raise():
    good = np.ones((3, 4), dtype=np.float32)
    nan = good.copy()
    nan[1, 2] = np.nan
    inf = good.copy()
    inf[0, 0] = np.inf
    cases = [
        (np.arange(3), nan, "NaN or infinite"),
        (np.arange(3), inf, "NaN or infinite"),
        (np.arange(3), np.full((3, 4), 1e300), "NaN or infinite"),
        (np.arange(2), good, "2 item ids but 3 item vectors"),
        (np.arange(3), good[0], "2-D"),
        (np.arange(0), np.zeros((0, 4)), "empty"),
        (np.array([0, 1, 1]), good, "unique"),
        (np.array([0, -1, 2]), good, ">= 0"),
        (np.array([0.0, 1.0, 2.0]), good, "integer"),
    ]
    for ids, vectors, match in cases:
        with pytest.raises(UserError, match=match):
            ItemIndex(ids, vectors)


def test_bad_queries_and_specs_raise():
    rng = np.random.default_rng(4)
    index = ItemIndex(np.arange(10), _random(rng, 10, d=8))
    with pytest.raises(UserError, match="have 5 dimensions, the index has 8"):
        index.search(np.ones((2, 5)), 3)
    with pytest.raises(UserError, match="NaN or infinite"):
        index.search(np.full((2, 8), np.nan), 3)
    with pytest.raises(UserError, match="k must be a positive integer"):
        index.search(np.ones((2, 8)), 0)
    with pytest.raises(UserError, match="index kind"):
        IndexSpec("annoy")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="nprobe"):
        IndexSpec("ivf", nprobe=0)
    other = ItemIndex(np.arange(5), _random(rng, 5, d=8))
    with pytest.raises(UserError, match="indexes differ"):
        recall_vs_flat(other, index, np.ones((1, 8)), 3)
