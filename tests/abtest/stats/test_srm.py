"""abtest.stats.srm: sample-ratio mismatch flags, no-user case, argument checks, properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from abtest.stats.srm import srm_test
from core.errors import UserError
from tests.conftest import FAST


def test_srm_flags_48_52_at_100k_but_not_an_exact_split_or_a_holdout():
    flagged = srm_test({"control": 48_000, "treatment": 52_000}, {"control": 0.5, "treatment": 0.5})
    assert flagged.flagged
    assert flagged.statistic == pytest.approx(160.0)
    fine = srm_test({"control": 50_000, "treatment": 50_000}, {"control": 0.5, "treatment": 0.5})
    assert not fine.flagged
    assert fine.p_value == pytest.approx(1.0)
    # 10% holdout: arms own 45% each, which is still an even split between them.
    holdout = srm_test({"a": 45_000, "b": 45_000}, {"a": 0.45, "b": 0.45})
    assert not holdout.flagged
    assert holdout.expected_share == pytest.approx({"a": 0.5, "b": 0.5})
    uneven = srm_test({"a": 20_000, "b": 60_000}, {"a": 0.2, "b": 0.6})
    assert not uneven.flagged
    assert srm_test({"a": 20_000, "b": 60_000}, {"a": 0.3, "b": 0.6}).flagged


def test_srm_with_no_users_is_nan_not_flagged():
    r = srm_test({"a": 0, "b": 0}, {"a": 0.5, "b": 0.5})
    assert math.isnan(r.p_value)
    assert not r.flagged


BAD_INPUTS = [
    (lambda: srm_test({"a": 1}, {"a": 0.5, "b": 0.5}), r"^users: must be counts for the same"),
    (lambda: srm_test({"a": -1, "b": 2}, {"a": 1, "b": 1}), r"^users\['a'\]: must be an integer"),
    (lambda: srm_test({"a": 1, "b": 2}, {"a": 1, "b": 0}), r"^expected\['b'\]: must be a number"),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUTS)
def test_bad_inputs_raise_user_error_naming_the_problem(call, message):
    with pytest.raises(UserError, match=message):
        call()


@FAST
@given(
    st.dictionaries(
        st.sampled_from(["control", "treatment", "holdout"]),
        st.one_of(st.integers(0, 3), st.integers(0, 10**15)),
        min_size=2,
    ),
    st.lists(st.floats(1e-9, 1.0), min_size=3, max_size=3),
)
@pytest.mark.usefixtures("no_warnings")
def test_srm_test_on_degenerate_counts(users, shares):
    expected = dict(zip(["control", "treatment", "holdout"], shares, strict=True))
    expected = {a: expected[a] for a in users}
    res = srm_test(users, expected)
    assert (0.0 <= res.p_value <= 1.0) or math.isnan(res.p_value)
    assert isinstance(res.flagged, bool)
    assert not (res.flagged and math.isnan(res.p_value))


@FAST
@given(
    st.dictionaries(st.sampled_from(["control", "treatment"]), st.integers(0, 5), min_size=2),
    st.sampled_from([0.0, -0.5, float("nan"), float("inf")]),
)
@pytest.mark.usefixtures("no_warnings")
def test_srm_test_rejects_bad_shares_with_user_error(users, share):
    with pytest.raises(UserError, match=r"expected\["):
        srm_test(users, {"control": share, "treatment": 0.5})
