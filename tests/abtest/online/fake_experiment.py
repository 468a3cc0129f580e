"""A made-up ExperimentData from a seeded generator, for analysis tests that must not depend
on the simulator: four scenarios (two low-traffic, one whose users have no pre-period, one
with a handful of users), holdout users, cold users, an arm without latency samples."""

from __future__ import annotations

import numpy as np

from abtest.online.experiment import ArmLatency, ExperimentData
from abtest.online.user_stats import CLICKS, IMPRESSIONS, PAGES, SESSIONS, WATCH, UserStats

SCENARIOS = ("home_feed", "immersive_video", "new_user_landing", "ghost")
TRAFFIC = {"home_feed": 0.6, "immersive_video": 0.32, "new_user_landing": 0.05, "ghost": 0.03}
EXPECTED = {"control": 0.45, "treatment": 0.45}
N_USERS, DAYS = 400, 3


def _outcomes(rng: np.random.Generator, visit: np.ndarray, ctr: float) -> np.ndarray:
    """S x U x D x 5 sums for users who visit at rate `visit` (S x U) with click rate `ctr`."""
    shape = (*visit.shape, DAYS)
    out = np.zeros((*shape, 5))
    sessions = rng.poisson(np.repeat(visit[..., None], DAYS, axis=-1))
    pages = sessions * (1 + rng.poisson(1.5, shape))
    impressions = pages * 6
    clicks = rng.binomial(impressions, ctr)
    out[..., SESSIONS], out[..., PAGES], out[..., IMPRESSIONS] = sessions, pages, impressions
    out[..., CLICKS] = clicks
    out[..., WATCH] = np.round(clicks * rng.exponential(20.0, shape), 3)
    return out


def fake_experiment(seed: int = 7, *, truth: bool = True) -> ExperimentData:
    rng = np.random.default_rng(seed)
    rates = np.array([0.9, 0.5, 0.15, 0.03])[:, None] * rng.gamma(2.0, 0.5, N_USERS)[None]
    # both arms share the users' visits; the treatment clicks a little more
    both = np.stack([_outcomes(rng, rates, 0.10), _outcomes(rng, rates, 0.11)])
    both[1, ..., SESSIONS] = both[0, ..., SESSIONS]
    assignment = rng.choice([-1, 0, 1], size=N_USERS, p=[0.1, 0.45, 0.45]).astype(np.int64)
    serve = np.where(assignment == 1, 1, 0)
    observed = np.zeros_like(both)
    for p in (0, 1):
        observed[p][:, serve == p] = both[p][:, serve == p]
    pre = _outcomes(rng, rates, 0.10).sum(axis=2)
    pre[:, rng.random(N_USERS) < 0.2] = 0.0  # cold users
    pre[2] = 0.0  # new users: no pre-period at all (CUPED falls back to the plain test)
    return ExperimentData(
        arms=("mixed", "sass"),
        scenarios=SCENARIOS,
        seed=seed,
        start_day=2,
        days=DAYS,
        assignment=assignment,
        observed=UserStats(observed, 2),
        pre=pre,
        truth=both if truth else None,
        latency={
            "control": ArmLatency(3.125, 9.5, 120),
            "treatment": ArmLatency(float("nan"), float("nan"), 0),
        },
        requests=1234,
        exposures=7404,
        wall_seconds=2.5,
        twin_wall_seconds=1.75,
    )
