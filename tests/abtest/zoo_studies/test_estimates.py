"""Mean ± s.e. over seeds and paired differences, against numpy/scipy and by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from abtest.zoo_studies.estimates import MeanSe, paired_difference
from tests.conftest import FAST

finite = st.floats(-1, 1, allow_nan=False, allow_infinity=False)


@FAST
@given(st.lists(finite, min_size=2, max_size=12))
def test_mean_and_se_match_numpy_and_scipy(values):
    x = MeanSe.of(values)
    assert x.mean == pytest.approx(float(np.mean(values)), abs=1e-12)
    assert x.se == pytest.approx(float(stats.sem(values)), abs=1e-12)
    assert x.values == tuple(values) and x.known


def test_one_seed_has_no_se_and_is_never_clearly_away_from_zero():
    x = MeanSe.of([0.25])
    assert (x.mean, x.se, x.values) == (0.25, None, (0.25,))
    assert not x.clearly_above_zero() and not x.clearly_below_zero()
    assert x.to_dict() == {"mean": 0.25, "se": None, "values": [0.25]}


@pytest.mark.parametrize("values", [[], [0.1, math.nan], [math.nan]])
def test_no_values_or_a_nan_gives_an_unknown_mean(values):
    x = MeanSe.of(values)
    assert math.isnan(x.mean) and x.se is None and not x.known
    assert len(x.values) == len(values)
    assert not x.clearly_above_zero() and not x.clearly_below_zero()


def test_clearly_away_from_zero_is_the_student_t_interval_over_the_seeds():
    values = [0.01, 0.02, 0.03]
    x = MeanSe.of(values)
    want = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert x.interval() == pytest.approx(want)
    # 3.5 s.e. above zero: beyond a +-2 s.e. rule, inside the 3-seed t-interval (4.30 s.e.)
    assert x.mean > 3 * x.se and not x.clearly_above_zero()
    assert MeanSe.of([0.05, 0.051, 0.052]).clearly_above_zero()
    assert MeanSe.of([-0.05, -0.051, -0.052]).clearly_below_zero()
    assert not MeanSe.of([-0.05, -0.051, -0.052]).clearly_above_zero()
    assert MeanSe.of([0.05]).interval() is None


def test_paired_difference_by_hand():
    a = MeanSe.of([0.30, 0.34, 0.29])
    b = MeanSe.of([0.25, 0.30, 0.27])
    d = paired_difference(a, b)
    diffs = [0.05, 0.04, 0.02]  # seed by seed
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / 2)
    assert d.values == pytest.approx(diffs)
    assert d.mean == pytest.approx(mean) and d.se == pytest.approx(sd / math.sqrt(3))
    # pairing removes what the seed does to both: the unpaired s.e. is larger here
    assert d.se < math.hypot(a.se, b.se)


def test_paired_difference_of_different_seed_counts_raises():
    with pytest.raises(ValueError, match="paired seeds differ in number: 2 vs 3"):
        paired_difference(MeanSe.of([0.1, 0.2]), MeanSe.of([0.1, 0.2, 0.3]))


def test_paired_difference_with_a_nan_seed_is_unknown():
    d = paired_difference(MeanSe.of([0.1, math.nan]), MeanSe.of([0.1, 0.2]))
    assert not d.known and d.se is None
