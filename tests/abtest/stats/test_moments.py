"""abtest.stats.moments: exact merging of per-user moments, immutability, argument checks."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytest

from abtest.stats.moments import Moments
from core.errors import UserError
from tests.abtest.stats.generators import moments_of


def test_merge_of_shards_equals_moments_of_concatenation():
    rng = np.random.default_rng(1)
    # A large offset makes naive sum-of-squares formulas lose digits; Chan's update does not.
    x = rng.normal(1e4, 3.0, (1000, 4)) + rng.poisson(2.0, (1000, 4))
    cuts = [0, 1, 137, 137, 600, 999, 1000]  # includes an empty and single-row shards
    shards = [Moments.from_array(x[a:b]) for a, b in itertools.pairwise(cuts)]
    merged = functools.reduce(Moments.merge, shards)
    summed = sum(shards[1:], shards[0])
    whole = Moments.from_array(x)
    for m in (merged, summed):
        assert m.n == whole.n == 1000
        np.testing.assert_allclose(m.mean, whole.mean, rtol=1e-12)
        np.testing.assert_allclose(m.comoment, whole.comoment, rtol=1e-9)
    np.testing.assert_allclose(whole.cov(), np.cov(x, rowvar=False), rtol=1e-9)


def test_moments_are_frozen_and_take_selects_columns():
    m = Moments.from_columns(np.arange(5.0), np.arange(5.0) ** 2, np.ones(5))
    with pytest.raises(ValueError):
        m.mean[0] = 1.0
    sub = m.take([2, 0])
    np.testing.assert_allclose(sub.mean, [1.0, 2.0])
    np.testing.assert_allclose(sub.comoment, m.comoment[np.ix_([2, 0], [2, 0])])


BAD_INPUTS = [
    (lambda: Moments(-1, [0.0], [[0.0]]), r"^n: must be an integer >= 0, got -1"),
    (lambda: Moments(2, [0.0, 0.0], np.zeros((3, 3))), r"^comoment: must be a 2 x 2 matrix"),
    (lambda: Moments.from_columns(np.ones(3), np.ones(4)), r"^columns: must be 1-D arrays"),
    (lambda: moments_of(2).merge(moments_of(3)), r"^moments: must be of 2 columns to merge, got 3"),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUTS)
def test_bad_inputs_raise_user_error_naming_the_problem(call, message):
    with pytest.raises(UserError, match=message):
        call()
