"""Keyed randomness: pure functions of their keys, uniform, independent across components."""

import numpy as np
from scipy import stats

from core import keyed


def test_same_keys_same_draws_any_batching():
    ids = np.arange(1000)
    whole = keyed.uniform(7, "click", ids[:, None], np.arange(5)[None, :])
    pieces = np.vstack([keyed.uniform(7, "click", ids[i : i + 37, None], np.arange(5)) for i in
                        range(0, 1000, 37)])  # fmt: skip
    assert np.array_equal(whole, pieces)
    assert keyed.uniform(7, "click", 3, 2) == whole[3, 2]


def test_seed_component_and_key_order_all_matter():
    base = keyed.uniform(1, "a", np.arange(100), 5)
    assert not np.array_equal(base, keyed.uniform(2, "a", np.arange(100), 5))
    assert not np.array_equal(base, keyed.uniform(1, "b", np.arange(100), 5))
    assert not np.array_equal(base, keyed.uniform(1, "a", 5, np.arange(100)))


def test_uniform_is_uniform_and_open_interval():
    u = keyed.uniform(11, "test", np.arange(200_000))
    assert u.min() > 0 and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 0.001
    # consecutive keys are not correlated
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


def test_components_are_independent():
    a = keyed.uniform(3, "x", np.arange(100_000))
    b = keyed.uniform(3, "y", np.arange(100_000))
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.015


def test_derived_distributions():
    keys = np.arange(100_000)
    assert stats.kstest(keyed.normal(5, "n", keys), "norm").pvalue > 0.001
    assert stats.kstest(keyed.exponential(5, "e", keys), "expon").pvalue > 0.001
    assert stats.kstest(keyed.beta(5, "b", 2.0, 5.0, keys), "beta", args=(2.0, 5.0)).pvalue > 0.001


def test_golden_values_pin_the_generator():
    # Changing the mixer or the key layout silently would change every simulated event.
    h = keyed.hash64(20221017, "click", 12345, 3)
    assert int(h) == int(keyed.hash64(20221017, "click", np.array([12345]), 3)[0])
    assert keyed.component_key("click") == keyed.component_key("click")
    assert int(h) == 10353259982791896302
    assert float(keyed.uniform(0, "u", 1)) == 0.41845547652279874
