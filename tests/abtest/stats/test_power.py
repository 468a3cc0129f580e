"""abtest.stats.power: MDE, power and required users agree with each other; checks."""

from __future__ import annotations

import math

import pytest

from abtest.stats.power import mde, power_at, required_users
from core.errors import UserError


def test_mde_and_power_are_consistent():
    se, control = 0.012, 0.8
    effect = mde(control, se, alpha=0.05, power=0.8)
    assert effect == pytest.approx((1.959964 + 0.841621) * se / control, rel=1e-6)
    # The wrong-sign rejection tail (Φ(-4.76) ≈ 1e-6) is the only difference.
    assert power_at(effect, control, se, alpha=0.05) == pytest.approx(0.8, abs=1e-5)
    assert power_at(0.0, control, se, alpha=0.05) == pytest.approx(0.05)
    assert power_at(-effect, control, se) == pytest.approx(power_at(effect, control, se))
    sd = 1.5
    n = required_users(effect, control, sd)
    assert mde(control, sd * math.sqrt(2 / n)) <= effect
    assert mde(control, sd * math.sqrt(2 / (n - 1))) > effect


def test_mde_with_a_zero_control_mean_is_nan():
    assert math.isnan(mde(0.0, 0.1))


BAD_INPUTS = [
    (lambda: mde(1.0, 0.1, power=1.0), r"^power: must be a number in \(0, 1\), got 1.0"),
    (lambda: mde(1.0, -0.1), r"^diff_se: must be >= 0"),
    (lambda: required_users(0.0, 1.0, 1.0), r"^effect_rel \* control_mean: must be non-zero"),
]


@pytest.mark.parametrize(("call", "message"), BAD_INPUTS)
def test_bad_inputs_raise_user_error_naming_the_problem(call, message):
    with pytest.raises(UserError, match=message):
        call()
