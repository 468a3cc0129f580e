"""abtest.stats.bootstrap: agrees with the delta-method CI; empty arms; argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest

from abtest.stats.bootstrap import bootstrap_lift_ci
from abtest.stats.lift import mean_test, ratio_test
from abtest.stats.moments import Moments
from core.errors import UserError
from tests.abtest.stats.generators import mean_users, ratio_users


@pytest.mark.parametrize("ratio", [False, True])
def test_bootstrap_ci_agrees_with_delta_method_on_a_large_sample(ratio):
    rng = np.random.default_rng(12)
    n = 5000
    if ratio:
        c, t = ratio_users(rng, n)[:, :2], ratio_users(rng, n, lift=0.05)[:, :2]
        r = ratio_test(Moments.from_array(c), Moments.from_array(t))
    else:
        c, t = mean_users(rng, n)[:, :1], mean_users(rng, n, effect=0.1)[:, :1]
        r = mean_test(Moments.from_array(c), Moments.from_array(t))
    # Rows are users; a list of per-user columns is accepted too.
    low, high = bootstrap_lift_ci(c, list(t.T), ratio=ratio, n_boot=1000, rng=rng)
    width = r.ci_high - r.ci_low
    assert abs(low - r.ci_low) < 0.1 * width
    assert abs(high - r.ci_high) < 0.1 * width


def test_empty_arm_gives_nan_not_exceptions():
    low, high = bootstrap_lift_ci(
        [np.zeros(0)], [np.ones(5)], ratio=False, n_boot=10, rng=np.random.default_rng(0)
    )
    assert math.isnan(low) and math.isnan(high)


BAD_INPUTS = [
    (
        lambda: bootstrap_lift_ci([np.ones(3)], [np.ones(3)], ratio=False, rng=0),
        r"^rng: must be a numpy Generator, got int",
    ),
    (
        lambda: bootstrap_lift_ci(
            [np.ones(3)], [np.ones(3)], ratio=True, rng=np.random.default_rng(0)
        ),
        r"^control_cols: must be at least 2 column",
    ),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUTS)
def test_bad_inputs_raise_user_error_naming_the_problem(call, message):
    with pytest.raises(UserError, match=message):
        call()
