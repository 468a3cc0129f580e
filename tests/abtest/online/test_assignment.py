"""abtest.online.assignment: the documented hash, pinned buckets, allocation, independence."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from abtest.online.assignment import N_BUCKETS, Layer, _to_buckets, buckets, hash64
from core.errors import UserError

SALT_A = "recall-ab-1"
SALT_B = "layer-b"
INT_IDS = [0, 1, 2, 42, 123456789, 2**63 - 1, 2**64 - 1]
STR_IDS = ["0", "1", "user-42", "héllo", ""]

# Computed once from the implementation; they must never change (it would reassign users).
GOLDEN_INT = {
    SALT_A: [2216, 8657, 8623, 591, 9234, 3572, 4091],
    SALT_B: [9495, 6445, 8512, 4829, 2253, 8073, 795],
}
GOLDEN_STR = {
    SALT_A: [1433, 3790, 5229, 8381, 7267],
    SALT_B: [5835, 6769, 8593, 3623, 1766],
}
GOLDEN_HASH = {
    SALT_A: [0x38BD000ED3FF7049, 0xDDA072248BAB7074, 0xDCC6172AAB6474F4],
    SALT_B: [0xF3175743DB4BA92C, 0xA5003CE6BAD0902F, 0xD9E96A5837D73421],
}


# --- an independent pure-Python reimplementation of the module docstring -------------------

M64 = 2**64


def _ref_mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % M64
    return z ^ (z >> 31)


def _ref_hash_int(salt: str, user: int) -> int:
    key = int.from_bytes(hashlib.blake2b(salt.encode(), digest_size=8).digest(), "little")
    return _ref_mix(key ^ ((user % M64) * 0x9E3779B97F4A7C15 % M64))


def _ref_hash_str(salt: str, user: str) -> int:
    digest = hashlib.blake2b((salt + "\x1f" + user).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _ref_bucket(h: int) -> int:
    return (h * N_BUCKETS) >> 64


# --- golden values and the documented hash ---------------------------------------------------


@pytest.mark.parametrize("salt", [SALT_A, SALT_B])
def test_golden_buckets(salt: str) -> None:
    ints = np.array(INT_IDS, dtype=np.uint64)
    assert buckets(ints, salt).tolist() == GOLDEN_INT[salt]
    assert buckets(STR_IDS, salt).tolist() == GOLDEN_STR[salt]
    assert hash64(ints[:3], salt).tolist() == GOLDEN_HASH[salt]
    assert Layer(salt, {"a": 1.0}).buckets(STR_IDS).tolist() == GOLDEN_STR[salt]


@pytest.mark.parametrize("salt", [SALT_A, SALT_B, "", "ünïcode salt"])
def test_docstring_hash_matches_code(salt: str) -> None:
    rng = np.random.default_rng(7)
    ints = [*INT_IDS, *rng.integers(0, 2**64, size=50, dtype=np.uint64).tolist()]
    strs = [*STR_IDS, *(f"u{v}" for v in ints[:20]), "日本語", "a\x00b"]
    got_h = hash64(np.array(ints, dtype=np.uint64), salt).tolist()
    assert got_h == [_ref_hash_int(salt, v) for v in ints]
    assert buckets(np.array(ints, dtype=np.uint64), salt).tolist() == [
        _ref_bucket(_ref_hash_int(salt, v)) for v in ints
    ]
    assert hash64(strs, salt).tolist() == [_ref_hash_str(salt, v) for v in strs]
    assert buckets(strs, salt).tolist() == [_ref_bucket(_ref_hash_str(salt, v)) for v in strs]


def test_bucket_multiply_shift_edges() -> None:
    # exact floor(h * 10000 / 2**64) at the ends of the range
    hs = [0, 1, 2**64 // N_BUCKETS, 2**64 // N_BUCKETS + 1, 2**63, 2**64 - 1]
    got = _to_buckets(np.array(hs, dtype=np.uint64)).tolist()
    assert got == [_ref_bucket(h) for h in hs]
    assert got[0] == 0
    assert got[-1] == N_BUCKETS - 1


# --- id types --------------------------------------------------------------------------------


def test_int_dtypes_and_lists_agree() -> None:
    ids = [0, 1, 5, 99, 12345, 2**31 - 1]
    expected = buckets(np.array(ids, dtype=np.int64), SALT_A)
    assert expected.dtype == np.int64
    for arr in (
        np.array(ids, dtype=np.uint64),
        np.array(ids, dtype=np.int32),
        ids,
        tuple(ids),
        range(0, 0),
    ):
        got = buckets(arr, SALT_A)
        if len(arr):
            np.testing.assert_array_equal(got, expected)
        else:
            assert got.shape == (0,)
    assert buckets((i for i in ids), SALT_A).tolist() == expected.tolist()
    assert buckets([np.int64(i) for i in ids], SALT_A).tolist() == expected.tolist()
    # deterministic across calls
    np.testing.assert_array_equal(buckets(ids, SALT_A), buckets(ids, SALT_A))


def test_uint64_extremes_and_twos_complement() -> None:
    ext = np.array([0, 2**63 - 1, 2**64 - 1], dtype=np.uint64)
    b = buckets(ext, SALT_A)
    assert ((b >= 0) & (b < N_BUCKETS)).all()
    assert b.tolist() == [GOLDEN_INT[SALT_A][i] for i in (0, 5, 6)]
    # -1 as int64 is the 64-bit pattern of 2**64 - 1; a Python list mixing both works too
    assert buckets(np.array([-1], dtype=np.int64), SALT_A).tolist() == [b[2]]
    assert buckets([-1, 2**64 - 1], SALT_A).tolist() == [b[2], b[2]]
    assert (
        buckets([-(2**63)], SALT_A).tolist()
        == buckets(np.array([2**63], dtype=np.uint64), SALT_A).tolist()
    )


def test_string_ids_list_and_arrays_agree() -> None:
    expected = buckets(STR_IDS, SALT_A).tolist()
    assert buckets(np.array(STR_IDS), SALT_A).tolist() == expected
    assert buckets(np.array(STR_IDS, dtype=object), SALT_A).tolist() == expected
    assert buckets(tuple(STR_IDS), SALT_A).tolist() == expected
    # int 5 and string "5" are different users, as documented
    assert hash64([5], SALT_A)[0] != hash64(["5"], SALT_A)[0]


@pytest.mark.parametrize(
    ("ids", "match"),
    [
        ([1, "a"], "all integers or all strings"),
        ([1.5, 2.0], "all integers or all strings"),
        (np.array([1.0, 2.0]), "dtype float64"),
        (np.array([True, False]), "dtype bool"),
        ([True, False], "all integers or all strings"),
        ([2**64], "outside"),
        ([-(2**63) - 1], "outside"),
        ("abc", "single str"),
        (np.zeros((2, 2), dtype=np.int64), "one-dimensional"),
    ],
)
def test_bad_ids(ids: object, match: str) -> None:
    with pytest.raises(UserError, match=match):
        buckets(ids, SALT_A)  # type: ignore[arg-type]


# --- allocation ------------------------------------------------------------------------------


def test_ranges_tile_and_rounding() -> None:
    assert Layer("s", {"control": 0.5, "treatment": 0.5}).ranges == {
        "control": (0, 5000),
        "treatment": (5000, 10000),
    }
    lay = Layer("s", {"a": 0.45, "b": 0.45})
    assert lay.ranges == {"a": (0, 4500), "b": (4500, 9000)}
    assert lay.holdout == (9000, 10000)
    assert lay.arms == ("a", "b")
    # thirds: cumulative round-half-up tiles [0, 10000) exactly
    thirds = Layer("s", {"x": 1 / 3, "y": 1 / 3, "z": 1 / 3}).ranges
    assert thirds == {"x": (0, 3333), "y": (3333, 6667), "z": (6667, 10000)}
    # float noise in the sum is tolerated; the smallest share is one bucket
    assert Layer("s", {"a": 0.1, "b": 0.2, "c": 0.7}).ranges["c"] == (3000, 10000)
    assert Layer("s", {"tiny": 1e-4}).ranges == {"tiny": (0, 1)}
    # order matters: the mapping's order decides the ranges
    assert Layer("s", {"t": 0.1, "c": 0.9}).ranges == {"t": (0, 1000), "c": (1000, 10000)}


def test_ranges_tile_random_allocations() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        k = int(rng.integers(1, 8))
        shares = (
            rng.dirichlet(np.ones(k + 1))[:k] if rng.random() < 0.5 else rng.dirichlet(np.ones(k))
        )
        shares = np.maximum(shares, 2e-4)
        shares = shares / max(1.0, shares.sum())
        lay = Layer("s", {f"arm{i}": float(v) for i, v in enumerate(shares)})
        start = 0
        for (lo, hi), share in zip(lay.ranges.values(), shares, strict=True):
            assert lo == start
            assert hi > lo
            assert abs((hi - lo) - share * N_BUCKETS) <= 1
            start = hi
        assert start <= N_BUCKETS
        assert abs(start - shares.sum() * N_BUCKETS) <= 0.5 + 1e-6


@pytest.mark.parametrize(
    "allocation",
    [
        {"control": 0.5, "treatment": 0.5},
        {"control": 0.1, "treatment": 0.9},
        {"control": 0.45, "treatment": 0.45},
    ],
)
@pytest.mark.parametrize("kind", ["int", "str"])
def test_arm_shares_within_binomial_tolerance(allocation: dict[str, float], kind: str) -> None:
    n = 200_000
    ids: object = np.arange(n, dtype=np.int64) if kind == "int" else [f"user-{i}" for i in range(n)]
    lay = Layer(SALT_A, allocation)
    idx = lay.arm_index(ids)  # type: ignore[arg-type]
    assert idx.dtype == np.int64
    expected = {**allocation, None: 1.0 - sum(allocation.values())}
    for arm, share in expected.items():
        i = -1 if arm is None else lay.arms.index(arm)
        count = int((idx == i).sum())
        if share < 1e-12:
            assert count == 0
            continue
        sd = np.sqrt(n * share * (1 - share))
        assert abs(count - n * share) < 4 * sd, (arm, count, n * share)
    assert set(np.unique(idx).tolist()) <= {-1, 0, 1}


def test_arm_of_and_arm_index_agree_with_buckets() -> None:
    lay = Layer(SALT_B, {"c": 0.45, "t": 0.45})
    ids = np.arange(5000)
    b = lay.buckets(ids)
    idx = lay.arm_index(ids)
    names = lay.arm_of(ids)
    assert len(names) == len(ids)
    for bucket, i, name in zip(b.tolist(), idx.tolist(), names, strict=True):
        if bucket < 4500:
            assert (i, name) == (0, "c")
        elif bucket < 9000:
            assert (i, name) == (1, "t")
        else:
            assert (i, name) == (-1, None)
    assert lay.arm_of([]) == []
    assert lay.arm_index([]).shape == (0,)


def test_bucket_uniformity_chi_square() -> None:
    n = 400_000
    for ids in (np.arange(n), np.arange(n) * 1_000_003 + 17):
        counts = np.bincount(buckets(ids, SALT_A), minlength=N_BUCKETS)
        assert counts.shape == (N_BUCKETS,)
        assert stats.chisquare(counts).pvalue > 1e-4
    str_counts = np.bincount(buckets([f"u{i}" for i in range(100_000)], SALT_B), minlength=100)
    coarse = np.bincount(np.arange(N_BUCKETS) // 100, weights=str_counts, minlength=100)
    assert stats.chisquare(coarse).pvalue > 1e-4


@pytest.mark.parametrize("kind", ["int", "str"])
def test_layers_with_different_salts_are_independent(kind: str) -> None:
    n = 100_000
    ids: object = np.arange(n) if kind == "int" else [str(i) for i in range(n)]
    first = Layer("exp-ranking", {"c": 0.5, "t": 0.5})
    second = Layer("exp-recall", {"c": 0.5, "t": 0.5})
    a, b = first.arm_index(ids), second.arm_index(ids)  # type: ignore[arg-type]
    table = np.zeros((2, 2), dtype=np.int64)
    np.add.at(table, (a, b), 1)
    assert stats.chi2_contingency(table).pvalue > 1e-3
    # finer: bucket deciles in the two layers
    da = first.buckets(ids) // 1000  # type: ignore[arg-type]
    db = second.buckets(ids) // 1000  # type: ignore[arg-type]
    deciles = np.zeros((10, 10), dtype=np.int64)
    np.add.at(deciles, (da, db), 1)
    assert stats.chi2_contingency(deciles).pvalue > 1e-3
    # the same salt: perfect dependence
    same = Layer("exp-ranking", {"x": 0.5, "y": 0.5}).arm_index(ids)  # type: ignore[arg-type]
    np.testing.assert_array_equal(same, a)
    table_same = np.zeros((2, 2), dtype=np.int64)
    np.add.at(table_same, (a, same), 1)
    assert table_same[0, 1] == table_same[1, 0] == 0
    assert stats.chi2_contingency(table_same).pvalue < 1e-100


BAD_ALLOCATIONS = [
    ({}, "empty"),
    ({"control": 0.0, "treatment": 0.5}, r"allocation\['control'\].*> 0, got 0\.0"),
    ({"control": 0.5, "treatment": -0.1}, r"allocation\['treatment'\].*got -0\.1"),
    ({"control": 0.6, "treatment": 0.5}, "sum to at most 1, got 1.1"),
    ({"control": 0.5, "treatment": 0.00004}, r"allocation\['treatment'\] = 4e-05 rounds to 0"),
    ({"control": float("nan")}, r"allocation\['control'\].*got nan"),
    ({"control": float("inf")}, r"allocation\['control'\].*got inf"),
    ({"control": "0.5"}, r"allocation\['control'\] must be a number, got '0.5'"),
    ({"control": True}, r"allocation\['control'\] must be a number, got True"),
    ({"": 0.5}, "non-empty strings"),
    ({1: 0.5}, "non-empty strings, got 1"),
    ([("control", 0.5)], "must be a mapping"),
]


@pytest.mark.parametrize(("allocation", "match"), BAD_ALLOCATIONS)
def test_bad_allocation(allocation: object, match: str) -> None:
    with pytest.raises(UserError, match=match):
        Layer("salt", allocation)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("salt", "match"),
    [(None, "salt must be a string, got NoneType"), (7, "got int 7"), ("a\x1fb", "separator")],
)
def test_bad_salt(salt: object, match: str) -> None:
    with pytest.raises(UserError, match=match):
        Layer(salt, {"a": 0.5})  # type: ignore[arg-type]
    with pytest.raises(UserError, match=match):
        buckets([1], salt)  # type: ignore[arg-type]


def test_layer_is_frozen_equal_and_hashable() -> None:
    src = {"c": 0.5, "t": 0.5}
    lay = Layer("s", src)
    src["c"] = 0.9  # the layer keeps its own copy
    assert lay.allocation == {"c": 0.5, "t": 0.5}
    with pytest.raises(AttributeError):
        lay.salt = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        lay.allocation["c"] = 0.1  # type: ignore[index]
    assert lay == Layer("s", {"c": 0.5, "t": 0.5})
    assert lay != Layer("s", {"t": 0.5, "c": 0.5})  # order decides the ranges
    assert lay != Layer("s2", {"c": 0.5, "t": 0.5})
    assert len({lay, Layer("s", {"c": 0.5, "t": 0.5})}) == 1
    assert repr(lay) == "Layer(salt='s', allocation={'c': 0.5, 't': 0.5})"


def test_does_not_import_simulator() -> None:
    code = (
        "import sys, abtest.online.assignment; "
        "sys.exit(any(m.split('.')[0] == 'simulator' for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
