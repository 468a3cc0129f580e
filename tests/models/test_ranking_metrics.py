"""Ranking metrics: hand-computed cases, padding, and a check against a slow reference."""

import math

import numpy as np
import pytest

from core.errors import UserError
from models.ranking_metrics import ranking_metrics, summarise


def _reference(ranked, targets, ks):
    """Row by row, straight from the definitions."""
    out = {f"{m}@{k}": [] for k in ks for m in ("recall", "hr", "ndcg")}
    for row, target in zip(ranked, targets, strict=True):
        target = set(int(t) for t in target)
        for k in ks:
            seen, hits, dcg = set(), 0, 0.0
            for rank, item in enumerate(row[:k]):
                item = int(item)
                if item in target and item not in seen:
                    hits += 1
                    dcg += 1 / math.log2(rank + 2)
                seen.add(item)
            idcg = sum(1 / math.log2(r + 2) for r in range(min(len(target), k)))
            out[f"recall@{k}"].append(hits / len(target))
            out[f"hr@{k}"].append(float(hits > 0))
            out[f"ndcg@{k}"].append(dcg / idcg)
    return {name: np.array(values) for name, values in out.items()}


def test_hand_computed():
    m = ranking_metrics(np.array([[5, 3, 9, 1]]), [{3, 1}], ks=(2, 4))
    l3, l5 = math.log2(3), math.log2(5)
    assert set(m) == {"recall@2", "hr@2", "ndcg@2", "recall@4", "hr@4", "ndcg@4"}
    assert m["recall@2"][0] == pytest.approx(0.5)
    assert m["hr@2"][0] == 1.0
    assert m["ndcg@2"][0] == pytest.approx((1 / l3) / (1 + 1 / l3))
    assert m["recall@4"][0] == pytest.approx(1.0)
    assert m["hr@4"][0] == 1.0
    assert m["ndcg@4"][0] == pytest.approx((1 / l3 + 1 / l5) / (1 + 1 / l3))


def test_two_requests_and_idcg_capped_at_k():
    # Request 0: 3 targets, one hit at rank 0 -> IDCG@2 sums only 2 slots.
    # Request 1: hit at rank 2 only, so nothing @2.
    ranked = np.array([[7, 8, 0], [4, 5, 6]])
    m = ranking_metrics(ranked, [np.array([7, 20, 21]), np.array([6])], ks=(2, 3))
    l3, l4 = math.log2(3), math.log2(4)
    np.testing.assert_allclose(m["recall@2"], [1 / 3, 0.0])
    np.testing.assert_allclose(m["hr@2"], [1.0, 0.0])
    np.testing.assert_allclose(m["ndcg@2"], [1 / (1 + 1 / l3), 0.0])
    np.testing.assert_allclose(m["recall@3"], [1 / 3, 1.0])
    np.testing.assert_allclose(m["ndcg@3"], [1 / (1 + 1 / l3 + 1 / l4), (1 / l4) / 1.0])
    assert summarise(m)["recall@3"] == pytest.approx((1 / 3 + 1) / 2)


def test_miss_is_all_zeros():
    m = ranking_metrics(np.array([[1, 2, 3], [4, 5, 6]]), [[9], [10, 11]], ks=(1, 3))
    for values in m.values():
        np.testing.assert_array_equal(values, [0.0, 0.0])


def test_padding_never_hits():
    m = ranking_metrics(np.array([[-1, -1, 3, -1]]), [[3, 4]], ks=(2, 4))
    assert m["recall@2"][0] == 0.0 and m["hr@2"][0] == 0.0
    assert m["recall@4"][0] == pytest.approx(0.5)
    assert m["ndcg@4"][0] == pytest.approx((1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    with pytest.raises(UserError, match=">= 0"):
        ranking_metrics(np.array([[-1, 2]]), [[-1]], ks=(2,))


def test_repeated_items_count_once():
    m = ranking_metrics(np.array([[3, 3, 3]]), [[3, 4]], ks=(3,))
    assert m["recall@3"][0] == pytest.approx(0.5)
    assert m["ndcg@3"][0] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_perfect_ranking_scores_one():
    ranked = np.array([[10, 11, 12, 50, 51], [7, 60, 61, 62, 63]])
    m = ranking_metrics(ranked, [[12, 10, 11], [7]], ks=(3, 5))
    for name, values in m.items():
        np.testing.assert_allclose(values, 1.0, err_msg=name)
    assert summarise(m) == pytest.approx({name: 1.0 for name in m})


def test_matches_reference_on_random_requests():
    rng = np.random.default_rng(7)
    n_req, kmax, n_items, ks = 200, 30, 60, (1, 5, 10, 30)
    ranked = np.stack([rng.permutation(n_items)[:kmax] for _ in range(n_req)])
    ranked[rng.random(ranked.shape) < 0.05] = -1  # some padding
    ranked[rng.random(ranked.shape) < 0.02] = rng.integers(0, n_items)  # some repeats
    targets = [rng.integers(0, n_items, size=rng.integers(1, 15)) for _ in range(n_req)]
    got = ranking_metrics(ranked, targets, ks=ks)
    want = _reference(ranked, targets, ks)
    assert set(got) == set(want)
    for name in want:
        assert got[name].shape == (n_req,)
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, err_msg=name)
    assert 0 < want["recall@10"].mean() < 1  # the data exercise both hits and misses


@pytest.mark.parametrize(
    ("ranked", "targets", "ks", "match"),
    [
        (np.array([[1, 2]]), [[1]], (3,), "columns"),
        (np.array([[1, 2]]), [[1], [2]], (1,), "1 requests but 2 targets"),
        (np.array([[1, 2]]), [[]], (1,), "non-empty target"),
        (np.array([1, 2]), [[1]], (1,), "R x K"),
        (np.array([[1.0, 2.0]]), [[1]], (1,), "integers"),
        (np.array([[1, 2]]), [[1]], (0,), "positive"),
        (np.array([[-2, 2]]), [[1]], (1,), "padding"),
    ],
)
def test_bad_input(ranked, targets, ks, match):
    with pytest.raises(UserError, match=match):
        ranking_metrics(ranked, targets, ks=ks)
