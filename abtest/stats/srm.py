"""Sample-ratio mismatch: are the observed users per arm consistent with the allocation?"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from abtest.stats.guards import NAN, check_prob, require

SRM_THRESHOLD = 0.001


@dataclass(frozen=True)
class SRMResult:
    """Chi-square goodness of fit of observed users per arm against the allocation."""

    statistic: float
    p_value: float
    flagged: bool
    observed_share: Mapping[str, float]
    expected_share: Mapping[str, float]


def srm_test(
    users: Mapping[str, int], expected: Mapping[str, float], *, threshold: float = SRM_THRESHOLD
) -> SRMResult:
    """Sample-ratio mismatch: flagged when p < threshold (0.001).

    ``expected`` holds each arm's allocation; it is normalised to sum to 1, since the arms
    may leave part of the traffic to a holdout.
    """
    require(
        set(users) == set(expected) and len(users) >= 2,
        "users",
        f"counts for the same >= 2 arms as expected ({sorted(expected)})",
        sorted(users),
    )
    arms = sorted(expected)
    for arm in arms:
        count = users[arm]
        require(
            isinstance(count, int | np.integer) and not isinstance(count, bool) and count >= 0,
            f"users[{arm!r}]",
            "an integer >= 0",
            repr(count),
        )
        share = expected[arm]
        require(
            isinstance(share, int | float | np.number) and math.isfinite(share) and share > 0,
            f"expected[{arm!r}]",
            "a number > 0",
            repr(share),
        )
    check_prob(threshold, "threshold")
    observed = np.array([users[a] for a in arms], dtype=float)
    shares = np.array([expected[a] for a in arms], dtype=float)
    shares /= shares.sum()
    total = observed.sum()
    expected_share = dict(zip(arms, shares.tolist(), strict=True))
    if total == 0:
        return SRMResult(NAN, NAN, False, dict.fromkeys(arms, NAN), expected_share)
    statistic, p_value = sps.chisquare(observed, shares * total)
    return SRMResult(
        float(statistic),
        float(p_value),
        bool(p_value < threshold),
        dict(zip(arms, (observed / total).tolist(), strict=True)),
        expected_share,
    )
