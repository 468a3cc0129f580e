"""The simulated A/B: serving, arms in the engine, per-user sums, the truth twin, latency."""

from __future__ import annotations

import dataclasses

import numpy as np
import polars as pl
import pytest

from abtest.online.experiment import run_experiment, simulate_period
from abtest.online.user_stats import CLICKS, IMPRESSIONS, PAGES, SESSIONS, WATCH
from abtest.serving import OraclePolicy
from simulator.policies import LoggingPolicy, RequestBatch, UniformPolicy
from simulator.world import World
from tests.conftest import AB_DAYS

DAYS = AB_DAYS


@pytest.fixture(scope="module")
def tiny(tiny_ab):
    return tiny_ab


def _run(tiny, policies, **kw):
    cfg, world, logs = tiny
    cfg = kw.pop("config", cfg)
    return run_experiment(
        cfg, world, policies, logs, names=("c", "t"), days=DAYS, seed=cfg.seed, progress=False, **kw
    )


def test_same_policy_in_both_arms_gives_identical_per_user_results(tiny):
    _, world, _ = tiny
    exp = _run(tiny, (UniformPolicy(world, 5), UniformPolicy(world, 5)))
    assert exp.truth is not None
    np.testing.assert_array_equal(exp.truth[0], exp.truth[1])
    # and each user's observed A/B outcome is their outcome under their arm in the twin
    for arm in (0, 1):
        users = np.flatnonzero(exp.assignment == arm)
        got = exp.observed.values[arm][:, users]
        np.testing.assert_array_equal(got, exp.truth[arm][:, users])
        assert got[..., PAGES].sum() > 0


def test_twin_equals_full_runs_of_each_policy(tiny):
    cfg, world, logs = tiny
    policies = (UniformPolicy(world, 5), OraclePolicy(world))
    exp = _run(tiny, policies)
    for p in (0, 1):
        route = np.full(world.users.n, p)
        full, _ = simulate_period(cfg, world, policies, logs, route, days=DAYS, seed=cfg.seed)
        np.testing.assert_array_equal(exp.truth[p], full.values[p])


def test_oracle_beats_random_in_every_scenario(tiny):
    _, world, _ = tiny
    exp = _run(tiny, (UniformPolicy(world, 5), OraclePolicy(world)))
    for s, sc in enumerate(world.scenarios):
        c = exp.truth[0, s].sum(axis=(0, 1))
        t = exp.truth[1, s].sum(axis=(0, 1))
        assert t[CLICKS] / t[IMPRESSIONS] > 1.5 * c[CLICKS] / c[IMPRESSIONS], sc.name
        assert t[WATCH] > c[WATCH], sc.name
        assert t[PAGES] > c[PAGES], sc.name  # better pages keep users longer
        assert t[SESSIONS] == c[SESSIONS]  # visits do not depend on the arm


def test_per_user_sums_equal_event_totals(tiny, tmp_path):
    _, world, _ = tiny
    events = tmp_path / "events.parquet"
    exp = _run(tiny, (LoggingPolicy(world, 1), OraclePolicy(world)), save_events=events)
    ev = pl.read_parquet(events)
    tot = exp.observed.totals()
    assert tot["impressions"] == ev.height == exp.exposures
    assert tot["clicks"] == ev["click"].sum()
    assert tot["watch_time"] == pytest.approx(ev["watch_time"].sum(), rel=1e-9)
    assert tot["pages"] == ev["request_id"].n_unique() == exp.requests
    assert tot["sessions"] == ev["session_id"].n_unique()
    assert set(ev["policy"].unique()) <= {"c", "t", "uniform"}
    # per arm: the events' policy column matches the arm the user is assigned to
    arm_of = ev.select("user_id", "policy").unique().filter(pl.col("policy") != "uniform")
    arms = exp.assignment[arm_of["user_id"].to_numpy()]
    assert ((arms == 1) == (arm_of["policy"] == "t").to_numpy()).all()


def test_results_do_not_depend_on_the_batch_window(tiny):
    cfg, world, _ = tiny
    policies = (UniformPolicy(world, 5), OraclePolicy(world))
    runs = []
    for window in (30.0, 1800.0):
        c = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, batch_window=window))
        runs.append(_run(tiny, policies, config=c, twin=False))
    a, b = runs[0].observed.values, runs[1].observed.values
    counts = [IMPRESSIONS, CLICKS, SESSIONS, PAGES]
    np.testing.assert_array_equal(a[..., counts], b[..., counts])
    # watch time: the same events, summed in another order
    np.testing.assert_allclose(a[..., WATCH], b[..., WATCH], rtol=1e-12, atol=0)


def test_latency_grows_when_capacity_shrinks(tiny):
    cfg, world, _ = tiny
    p99 = {}
    for capacity in (1, 8):
        serving = dataclasses.replace(
            cfg.serving, capacity=capacity, service_ms_per_batch=120_000.0
        )
        c = dataclasses.replace(
            cfg, serving=serving, engine=dataclasses.replace(cfg.engine, batch_window=5.0)
        )
        exp = _run(tiny, (UniformPolicy(world, 5), UniformPolicy(world, 5)), config=c, twin=False)
        p99[capacity] = exp.latency["control"].p99_ms
        assert exp.latency["control"].requests > 0
        # latency never changes the events: the logical timelines stay the same
        assert exp.observed.totals()["pages"] == exp.requests
    assert p99[1] > 2 * p99[8]
    assert p99[8] >= 120_000.0


def test_holdout_users_are_served_control_and_flagged(tiny):
    cfg, world, _ = tiny
    exp_cfg = dataclasses.replace(cfg.experiment, allocation={"control": 0.3, "treatment": 0.3})
    c = dataclasses.replace(cfg, experiment=exp_cfg)
    exp = _run(tiny, (UniformPolicy(world, 5), OraclePolicy(world)), config=c, twin=False)
    share = np.bincount(exp.assignment + 1, minlength=3) / world.users.n
    assert share[0] == pytest.approx(0.4, abs=0.1)  # holdout
    hold = np.flatnonzero(exp.assignment == -1)
    assert exp.observed.values[1][:, hold].sum() == 0


def test_unknown_arm_names_in_allocation_are_refused(tiny):
    from core.errors import UserError

    cfg, world, _ = tiny
    c = dataclasses.replace(
        cfg, experiment=dataclasses.replace(cfg.experiment, allocation={"a": 0.5, "b": 0.5})
    )
    with pytest.raises(UserError, match="exactly 'control' and 'treatment'"):
        _run(tiny, (UniformPolicy(world, 5), UniformPolicy(world, 5)), config=c)


@pytest.mark.parametrize("fixed", [False, True])
def test_replay_reproduces_the_logged_stream(tiny, fixed):
    """Replaying the logged experiment-period sessions with the logging policy gives the log."""
    from simulator.logs import LogWriter

    cfg, world, logs = tiny
    start = logs["timestamp"].min().replace(hour=0, minute=0, second=0, microsecond=0)
    cut = start + __import__("datetime").timedelta(days=cfg.periods.pre_days)
    logged = logs.filter(pl.col("timestamp") >= cut)
    policy = LoggingPolicy(world, cfg.seed)
    with LogWriter(world, [policy.name]) as writer:
        route = np.zeros(world.users.n, dtype=np.int64)
        simulate_period(
            cfg, world, [policy], logs, route, days=DAYS, seed=cfg.seed, sinks=[writer],
            replay=logged, fixed_sessions=fixed,
        )  # fmt: skip
        replayed = writer.lazy().sort("timestamp", "request_id", "position").collect()
    assert replayed.height == logged.height > 0
    others = [c for c in replayed.columns if c != "timestamp"]
    assert replayed.select(others).equals(logged.select(others))
    # logs keep microseconds: a replayed session starts at the rounded time, so later pages
    # may land one microsecond away from the logged ones
    drift = (replayed["timestamp"] - logged["timestamp"]).dt.total_microseconds().abs()
    assert drift.max() <= 1


def test_replay_of_foreign_users_is_refused(tiny):
    from core.errors import UserError

    cfg, world, logs = tiny
    bad = logs.with_columns(pl.col("user_id") + 10_000)
    route = np.zeros(world.users.n, dtype=np.int64)
    with pytest.raises(UserError, match="is not a user of this world"):
        simulate_period(
            cfg, world, [UniformPolicy(world, 1)], logs, route, days=DAYS, seed=1, replay=bad
        )


class _HistoryPolicy:
    """A toy policy that reads the click history: favours the last clicked item's category."""

    name = "history"

    def __init__(self, world: World):
        self.world = world

    def serve(self, batch: RequestBatch):
        from core import keyed
        from simulator.policies import Slates

        sc = self.world.scenarios[batch.scenario]
        last = batch.history_items[:, 0]
        cat = np.where(last >= 0, self.world.items.category[np.maximum(last, 0)], -1)
        noise = keyed.uniform(7, "toy", batch.user_id[:, None], sc.pool[None, :])
        score = noise + (self.world.items.category[sc.pool][None, :] == cat[:, None])
        top = np.argsort(-score, axis=1, kind="stable")[:, : sc.slate_size]
        items = sc.pool[top]
        ones = np.ones(items.shape)
        return Slates(items, ones, np.zeros(len(batch), dtype=np.int8))


def test_history_reading_policies_do_not_depend_on_the_batch_window(tiny):
    """A user's sessions are served in order, so every page sees the same clicks."""
    cfg, world, _ = tiny
    policies = (_HistoryPolicy(world), OraclePolicy(world))
    runs = []
    for window in (10.0, 3600.0):
        c = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, batch_window=window))
        runs.append(_run(tiny, policies, config=c, twin=False))
    a, b = runs[0].observed.values, runs[1].observed.values
    np.testing.assert_array_equal(
        a[..., [IMPRESSIONS, CLICKS, PAGES]], b[..., [IMPRESSIONS, CLICKS, PAGES]]
    )
    np.testing.assert_allclose(a[..., WATCH], b[..., WATCH], rtol=1e-12, atol=0)
