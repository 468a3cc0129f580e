"""abtest.stats.sequential: mSPRT keeps the type-I error under daily peeking, detects a true
effect, matches its formula; argument checks and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats as sps

from abtest.stats.sequential import msprt_p_values, msprt_tau2
from core.errors import UserError
from tests.abtest.stats.generators import ALPHA, FLOATS, binomial_tol
from tests.conftest import FAST


def _daily_looks(rng, sims: int, days: int, per_day: int, effect: float):
    """Cumulative (diff, variance) of per-user means at each daily look, vectorised."""
    looks = []
    for shift in (0.0, effect):
        y = rng.exponential(1.0, (sims, days, per_day)) + shift
        n = per_day * np.arange(1, days + 1)
        s1 = np.cumsum(y.sum(axis=2), axis=1)
        s2 = np.cumsum((y**2).sum(axis=2), axis=1)
        mean = s1 / n
        looks.append((mean, (s2 - n * mean**2) / (n - 1) / n))
    (mc, vc), (mt, vt) = looks
    return mt - mc, vc + vt


def test_msprt_controls_type_one_error_under_daily_peeking():
    rng = np.random.default_rng(10)
    sims, days = 1000, 14
    diffs, variances = _daily_looks(rng, sims, days, 100, effect=0.0)
    naive_p = 2 * sps.norm.sf(np.abs(diffs) / np.sqrt(variances))
    naive_rate = np.mean((naive_p < ALPHA).any(axis=1))
    tau2 = msprt_tau2(float(np.median(variances[:, -1])))
    always = np.array(
        [msprt_p_values(d, v, tau2=tau2) for d, v in zip(diffs, variances, strict=True)]
    )
    assert (np.diff(always, axis=1) <= 0).all()  # always-valid p-values never go back up
    always_rate = np.mean(always[:, -1] < ALPHA)
    assert always_rate <= ALPHA + binomial_tol(ALPHA, sims)
    assert naive_rate > ALPHA + 2 * binomial_tol(ALPHA, sims)  # peeking inflates ~4x here
    # The fixed-horizon test at the final look alone is still calibrated.
    assert abs(np.mean(naive_p[:, -1] < ALPHA) - ALPHA) < binomial_tol(ALPHA, sims)


def test_msprt_detects_a_true_effect():
    rng = np.random.default_rng(11)
    diffs, variances = _daily_looks(rng, 200, 14, 100, effect=0.2)
    tau2 = msprt_tau2(float(np.median(variances[:, -1])))
    final = [msprt_p_values(d, v, tau2=tau2)[-1] for d, v in zip(diffs, variances, strict=True)]
    assert np.mean(np.array(final) < ALPHA) > 0.9


def test_msprt_formula_and_missing_looks():
    d, v, tau2 = np.array([0.0, 0.3, 0.1]), np.array([np.nan, 0.01, 0.005]), 0.04
    p = msprt_p_values(d, v, tau2=tau2)
    lam = math.sqrt(0.01 / 0.05) * math.exp(tau2 * 0.09 / (2 * 0.01 * 0.05))
    assert p[0] == 1.0
    assert p[1] == pytest.approx(min(1.0, 1 / lam))
    assert p[2] <= p[1]
    assert msprt_tau2(0.01, expected_effect=0.2) == pytest.approx(0.04)


BAD_INPUTS = [
    (lambda: msprt_p_values([0.1], [0.1], tau2=0.0), r"^tau2: must be a number > 0, got 0.0"),
    (lambda: msprt_p_values([0.1, 0.2], [0.1], tau2=1.0), r"^diffs and variances: must be"),
    (lambda: msprt_tau2(-1.0), r"^final_variance: must be a number > 0"),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUTS)
def test_bad_inputs_raise_user_error_naming_the_problem(call, message):
    with pytest.raises(UserError, match=message):
        call()


@FAST
@given(
    st.lists(
        st.tuples(
            st.one_of(FLOATS, st.just(float("nan"))),
            st.one_of(FLOATS, st.sampled_from([0.0, -1.0, float("nan"), float("inf")])),
        ),
        max_size=10,
    ),
    st.one_of(st.sampled_from([1e-300, 1e-12, 1.0, 1e300]), st.floats(1e-6, 1e6)),
)
@pytest.mark.usefixtures("no_warnings")
def test_msprt_p_values_are_always_valid_p_values(looks, tau2):
    d = np.array([x[0] for x in looks], dtype=float)
    v = np.array([x[1] for x in looks], dtype=float)
    p = msprt_p_values(d, v, tau2=tau2)
    assert p.shape == d.shape
    assert ((p >= 0) & (p <= 1)).all()  # never NaN: a look without data keeps the last p
    assert (np.diff(p) <= 0).all()


@pytest.mark.usefixtures("no_warnings")
@FAST
@given(st.sampled_from([0.0, -1.0, float("nan"), float("inf"), "1", None]))
def test_msprt_rejects_bad_tau2_with_user_error(tau2):
    with pytest.raises(UserError, match=r"^tau2: must be a number > 0"):
        msprt_p_values([0.1], [1.0], tau2=tau2)
