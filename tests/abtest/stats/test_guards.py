"""abtest.stats.guards: the uniform UserError message and NaN-safe arithmetic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from abtest.stats.guards import check_prob, require, safe_div, safe_sqrt
from core.errors import UserError


def test_require_names_what_must_hold_and_what_came():
    require(True, "x", "anything", 1)
    with pytest.raises(UserError, match=r"^x: must be an integer >= 0, got -1$"):
        require(False, "x", "an integer >= 0", -1)


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, float("nan"), "0.5", None])
def test_check_prob_accepts_only_numbers_strictly_between_0_and_1(bad):
    check_prob(0.5, "alpha")
    check_prob(np.float32(0.01), "alpha")
    with pytest.raises(UserError, match=r"^alpha: must be a number in \(0, 1\), got "):
        check_prob(bad, "alpha")


@pytest.mark.usefixtures("no_warnings")
def test_degenerate_arithmetic_is_nan_without_warnings():
    assert safe_div(1.0, 4.0) == 0.25
    assert safe_div(np.float64(3.0), np.int64(2)) == 1.5
    for b in (0.0, float("inf"), float("nan")):
        assert math.isnan(safe_div(1.0, b))
    assert safe_sqrt(4.0) == 2.0
    assert math.isnan(safe_sqrt(-1.0)) and math.isnan(safe_sqrt(float("nan")))
