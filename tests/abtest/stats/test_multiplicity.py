"""abtest.stats.multiplicity: BH and Holm against statsmodels, NaNs, argument checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.multitest import multipletests

from abtest.stats.multiplicity import adjust_p_values
from core.errors import UserError
from tests.conftest import FAST


@pytest.mark.parametrize("method", ["bh", "holm"])
def test_adjust_p_values_match_statsmodels_and_skip_nans(method):
    rng = np.random.default_rng(4)
    p = np.concatenate([rng.uniform(0, 1, 30), rng.uniform(0, 0.01, 10)])
    p[[3, 17, 33]] = np.nan
    rng.shuffle(p)
    ok = ~np.isnan(p)
    ref = multipletests(p[ok], method={"bh": "fdr_bh", "holm": "holm"}[method])[1]
    adjusted = adjust_p_values(p, method)
    assert np.isnan(adjusted[~ok]).all()
    np.testing.assert_allclose(adjusted[ok], ref, rtol=1e-12)
    assert adjust_p_values([np.nan, np.nan], method).tolist() == pytest.approx(
        [np.nan, np.nan], nan_ok=True
    )


BAD_INPUTS = [
    (lambda: adjust_p_values([0.1], "bonferroni"), r"^method: must be 'bh' or 'holm'"),
    (lambda: adjust_p_values([0.1, 1.2]), r"^p: must be p-values in \[0, 1\] or NaN, got \[1.2"),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUTS)
def test_bad_inputs_raise_user_error_naming_the_problem(call, message):
    with pytest.raises(UserError, match=message):
        call()


P_VALUES = st.one_of(st.floats(0.0, 1.0), st.just(float("nan")), st.sampled_from([0.0, 1.0]))


@pytest.mark.usefixtures("no_warnings")
@FAST
@given(st.lists(P_VALUES, max_size=20), st.sampled_from(["bh", "holm"]))
def test_adjusted_p_values_stay_in_range(p, method):
    out = adjust_p_values(p, method)
    raw = np.array(p, dtype=float)
    assert out.shape == raw.shape
    assert np.array_equal(np.isnan(out), np.isnan(raw))
    ok = ~np.isnan(out)
    assert ((out[ok] >= 0) & (out[ok] <= 1)).all()
    assert (out[ok] >= raw[ok] - 1e-12).all()


@pytest.mark.usefixtures("no_warnings")
@FAST
@given(st.lists(st.one_of(P_VALUES, st.sampled_from([-0.1, 1.1, float("inf")])), min_size=1))
def test_adjust_p_values_rejects_bad_input_with_user_error(p):
    if all(math.isnan(x) or 0 <= x <= 1 for x in p):
        adjust_p_values(p)
        return
    with pytest.raises(UserError, match=r"^p: must be p-values in \[0, 1\]"):
        adjust_p_values(p)
