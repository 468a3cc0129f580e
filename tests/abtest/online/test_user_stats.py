"""abtest.online.user_stats: the per-user sums sink, its merge, and the pre-period sums."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from abtest.online.experiment import run_experiment
from abtest.online.user_stats import (
    CLICKS,
    IMPRESSIONS,
    PAGES,
    SESSIONS,
    SUMS,
    WATCH,
    UserStats,
    pre_period_stats,
)
from simulator.policies import UniformPolicy
from tests.conftest import AB_DAYS


def test_user_stats_shape_and_metric_names(tiny_ab):
    cfg, world, logs = tiny_ab
    policies = (UniformPolicy(world, 5), UniformPolicy(world, 5))
    exp = run_experiment(
        cfg,
        world,
        policies,
        logs,
        names=("c", "t"),
        days=AB_DAYS,
        seed=cfg.seed,
        progress=False,
        twin=False,
    )
    assert exp.observed.values.shape == (2, len(world.scenarios), world.users.n, AB_DAYS, 5)
    assert SUMS == ("impressions", "clicks", "watch_time", "sessions", "pages")
    assert exp.pre.shape == (len(world.scenarios), world.users.n, 5)
    assert exp.pre[..., PAGES].sum() > 0


def test_merge_adds_the_sums_and_refuses_other_shapes_or_days():
    a = UserStats.empty(2, 1, 3, start_day=2, n_days=2)
    b = UserStats.empty(2, 1, 3, start_day=2, n_days=2)
    a.values[0, 0, 1, 0, CLICKS] = 2.0
    b.values[0, 0, 1, 0, CLICKS] = 3.0
    b.values[1, 0, 2, 1, WATCH] = 7.5
    merged = a.merge(b)
    assert merged.start_day == 2
    assert merged.totals() == {
        "impressions": 0.0,
        "clicks": 5.0,
        "watch_time": 7.5,
        "sessions": 0.0,
        "pages": 0.0,
    }
    with pytest.raises(ValueError, match="same shape and days"):
        a.merge(UserStats.empty(2, 1, 3, start_day=3, n_days=2))
    with pytest.raises(ValueError, match="same shape and days"):
        a.merge(UserStats.empty(2, 1, 4, start_day=2, n_days=2))


def test_pre_period_stats_sum_each_users_requests_before_the_end():
    t0 = dt.datetime(2024, 1, 1)
    end = t0 + dt.timedelta(days=1)
    rows = [  # (minutes, request, session, user, scenario, click, watch)
        (0, 1, 10, 0, "b", 1, 4.0),
        (0, 1, 10, 0, "b", 0, 0.0),
        (5, 2, 10, 0, "b", 1, 2.0),
        (9, 3, 11, 0, "a", 0, 1.0),
        (30, 4, 12, 2, "a", 0, 0.5),
        (60 * 24, 5, 13, 2, "a", 1, 9.0),  # at the end: not in the pre-period
        (40, 6, 14, 7, "a", 1, 1.0),  # a user outside the world is dropped
    ]
    logs = pl.DataFrame(
        {
            "timestamp": [t0 + dt.timedelta(minutes=r[0]) for r in rows],
            "request_id": [r[1] for r in rows],
            "session_id": [r[2] for r in rows],
            "user_id": [r[3] for r in rows],
            "scenario": [r[4] for r in rows],
            "click": [r[5] for r in rows],
            "watch_time": [r[6] for r in rows],
        }
    )
    pre = pre_period_stats(logs, ("a", "b"), 3, end)
    assert pre.shape == (2, 3, len(SUMS))
    np.testing.assert_array_equal(pre[1, 0], [3, 2, 6.0, 1, 2])  # user 0 in "b"
    np.testing.assert_array_equal(pre[0, 0], [1, 0, 1.0, 1, 1])  # user 0 in "a"
    np.testing.assert_array_equal(pre[0, 2], [1, 0, 0.5, 1, 1])
    assert pre[:, 1].sum() == 0
    assert pre[..., IMPRESSIONS].sum() == 5 and pre[..., SESSIONS].sum() == 3
