"""Power analysis: minimum detectable effect, power at an effect, users needed."""

from __future__ import annotations

import math

from scipy import stats as sps

from abtest.stats.guards import check_prob, require, safe_div


def mde(control_mean: float, diff_se: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """Relative minimum detectable effect: (z_{1-α/2} + z_power) · se / |control|."""
    check_prob(alpha, "alpha")
    check_prob(power, "power")
    require(not diff_se < 0, "diff_se", ">= 0", repr(diff_se))
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return safe_div(z * diff_se, abs(control_mean))


def power_at(
    effect_rel: float, control_mean: float, diff_se: float, *, alpha: float = 0.05
) -> float:
    """Power of the two-sided level-alpha z-test to detect a relative lift ``effect_rel``.

    Both rejection tails are counted, so power_at(0) = alpha; at the MDE the wrong-sign tail
    adds under 1e-5 to the nominal power.
    """
    check_prob(alpha, "alpha")
    require(not diff_se < 0, "diff_se", ">= 0", repr(diff_se))
    x = safe_div(abs(effect_rel * control_mean), diff_se)
    z = sps.norm.ppf(1 - alpha / 2)
    return float(sps.norm.cdf(x - z) + sps.norm.cdf(-x - z))


def required_users(
    effect_rel: float, control_mean: float, sd: float, *, alpha: float = 0.05, power: float = 0.8
) -> int:
    """Users per arm (two equal arms) to detect a relative lift with the given power.

    ``sd`` is the per-user standard deviation of the metric: for a ratio metric, that of its
    linearisation, i.e. ``sqrt(n) * se`` of :func:`~abtest.stats.estimates.ratio_estimate`.
    """
    check_prob(alpha, "alpha")
    check_prob(power, "power")
    require(math.isfinite(sd) and sd > 0, "sd", "a number > 0", repr(sd))
    effect = abs(effect_rel * control_mean)
    require(math.isfinite(effect) and effect > 0, "effect_rel * control_mean", "non-zero", effect)
    z = sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power)
    return math.ceil(2 * (z * sd / effect) ** 2)
