"""The simpy engine: determinism, batching invariance, traffic shares, sessions, histories."""

import numpy as np
import polars as pl
import pytest
from scipy import stats

from core.config import config_from_dict, load_config
from simulator.arrivals import DAY, PAGE_SLOTS, day_schedule
from simulator.engine import Engine
from simulator.policies import LoggingPolicy, Slates, UniformPolicy
from simulator.synthetic import SyntheticWorld
from tests.conftest import DEFAULT_YAML, tiny_tree
from tests.helpers import simulate


@pytest.fixture(scope="module")
def config():
    return config_from_dict(tiny_tree(n_users=600), "tiny")


@pytest.fixture(scope="module")
def logs(config):
    return simulate(config, LoggingPolicy)


def test_same_seed_gives_identical_logs(config, logs):
    again = simulate(config, LoggingPolicy)
    assert logs.height > 1000
    assert logs.equals(again)


def test_batch_window_does_not_change_events(config, logs):
    # 0.01 s serves almost every request alone; 1800 s batches a few hundred together.
    for window in (0.01, 1800.0):
        assert simulate(config, LoggingPolicy, window=window).equals(logs), window


def test_different_seed_gives_different_logs(config, logs):
    other = simulate(config.with_seed(config.seed + 1), LoggingPolicy)
    assert not other.equals(logs)


def test_sessions_are_well_formed(config, logs):
    pages = (
        logs.group_by("request_id")
        .agg(pl.col("session_id").first(), pl.col("position").max(), pl.col("timestamp").first())
        .with_columns(page=pl.col("request_id") % PAGE_SLOTS)
    )
    per_session = pages.group_by("session_id").agg(
        n=pl.len(), max_page=pl.col("page").max(),
        monotone=(pl.col("timestamp").sort_by("page").diff().dt.total_seconds() >= 2).all()
                 | (pl.len() == 1),
    )  # fmt: skip
    # pages of a session are 0..n-1, under the page cap, and at least the 2 s minimum apart
    assert (per_session["n"] == per_session["max_page"] + 1).all()
    assert per_session["n"].max() <= config.leave.max_pages
    assert per_session["monotone"].all()
    slate = {s.name: s.slate_size for s in config.scenarios}
    sizes = logs.group_by("request_id", "scenario").agg(k=pl.len())
    assert all(k == slate[s] for s, k in sizes.select("scenario", "k").iter_rows())


def test_traffic_shares_match_config():
    # Conditional on the total, per-scenario visit counts are multinomial(share).
    cfg = load_config(DEFAULT_YAML)
    world = SyntheticWorld(cfg)
    counts = np.zeros(len(cfg.scenarios))
    for day in range(3):
        sched = day_schedule(world, day, cfg.seed)
        counts += np.bincount(sched.scenario, minlength=len(cfg.scenarios))
    shares = np.array([s.traffic_share for s in cfg.scenarios])
    assert stats.chisquare(counts, counts.sum() * shares).pvalue > 0.001
    n = counts.sum()
    assert np.all(np.abs(counts / n - shares) < 4 * np.sqrt(shares * (1 - shares) / n))


def test_diurnal_profile_and_activity_tail():
    cfg = load_config(DEFAULT_YAML)
    world = SyntheticWorld(cfg)
    sched = day_schedule(world, 0, cfg.seed)
    hour = ((sched.start % DAY) // 3600).astype(int)
    by_hour = np.bincount(hour, minlength=24)
    peak = int(cfg.traffic.diurnal_peak_hour)
    assert by_hour[peak] > 2 * by_hour[(peak + 12) % 24]
    # heavy-tailed activity: the top 10% of users make far more than 10% of visits
    per_user = np.sort(np.bincount(sched.user, minlength=world.users.n))[::-1]
    assert per_user[: world.users.n // 10].sum() > 0.3 * per_user.sum()


def test_two_arms_route_users_and_histories_feed_back(config):
    world = SyntheticWorld(config)

    class Recording:
        """Uniform slates that remember the histories they were shown."""

        def __init__(self, name):
            self.inner, self.name, self.seen = UniformPolicy(world, 5), name, []

        def serve(self, batch):
            self.seen.append((batch.user_id, batch.timestamp, batch.history_items))
            s = self.inner.serve(batch)
            return Slates(s.items, s.propensity, np.zeros(len(batch), dtype=np.int8))

    arms = [Recording("a"), Recording("b")]
    eng = Engine(world, arms, [], seed=1, route=lambda u: u % 2)
    stats_ = eng.run(0, 2, progress=False)
    assert stats_.requests > 0
    for arm, rec in enumerate(arms):
        users = np.concatenate([u for u, _, _ in rec.seen])
        assert np.all(users % 2 == arm)
    # histories fill up over time and never contain the future
    hist = np.concatenate([h for _, _, h in arms[0].seen])
    assert (hist[:, 0] >= 0).mean() > 0.3
    assert np.all((eng.history.times[eng.history.items >= 0]) < np.inf)


def test_history_lookup_hides_clicks_after_the_request():
    from simulator.engine import History

    h = History(n_users=3, length=4)
    h.push(np.array([1, 1]), np.array([10, 11]), scenario=2, times=np.array([100.0, 200.0]))
    items, scen = h.lookup(np.array([1, 1, 1, 0]), np.array([50.0, 150.0, 250.0, 250.0]))
    assert items.tolist() == [[-1, -1, -1, -1], [-1, 10, -1, -1], [11, 10, -1, -1], [-1] * 4]
    assert scen[2].tolist() == [2, 2, -1, -1]
