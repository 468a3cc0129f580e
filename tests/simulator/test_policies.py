"""The logging policy's propensities are true probabilities; IPS from its logs is unbiased."""

import numpy as np
import polars as pl
import pytest

from core.config import config_from_dict
from simulator.arrivals import DAY
from simulator.policies import LoggingPolicy, RequestBatch, UniformPolicy
from simulator.synthetic import SyntheticWorld
from tests.conftest import tiny_tree
from tests.helpers import simulate


def _batch(world, scenario, n, user=7, day=0):
    h = world.config.world.history_length
    return RequestBatch(
        scenario=scenario,
        request_id=np.arange(n, dtype=np.int64) * 1024,
        session_id=np.arange(n, dtype=np.int64),
        user_id=np.full(n, user, dtype=np.int64),
        page=np.zeros(n, dtype=np.int64),
        timestamp=np.full(n, day * DAY + 3600.0),
        history_items=np.full((n, h), -1),
        history_scenarios=np.full((n, h), -1),
    )


@pytest.fixture(scope="module")
def eps_world():
    tree = tiny_tree()
    tree["logging_policy"]["epsilon"] = 0.3
    return SyntheticWorld(config_from_dict(tree, "tiny"))


def test_marginals_sum_to_one_over_the_pool(eps_world):
    policy = LoggingPolicy(eps_world, seed=1)
    cfg = eps_world.config.logging_policy
    for sc in eps_world.scenarios:
        batch = _batch(eps_world, sc.index, 5, user=3)
        tier_items, tier_prob = policy.tiers(batch)
        n = sc.pool.size
        # P(i at k) over the whole pool: (1 - eps) q_k(i) + eps / N
        marg = np.full((5, sc.slate_size, n), cfg.epsilon / n)
        pos_in_pool = np.searchsorted(sc.pool, tier_items)
        for b in range(5):
            for k in range(sc.slate_size):
                marg[b, k, pos_in_pool[b, k]] += (1 - cfg.epsilon) * tier_prob[b, k]
        np.testing.assert_allclose(marg.sum(axis=2), 1.0, atol=1e-12)
        # tiers are disjoint, so an item has positive production mass at one position only
        assert len(np.unique(tier_items[0])) == tier_items[0].size


@pytest.mark.parametrize("scenario", [0, 1])
def test_recorded_propensities_match_empirical_frequencies(eps_world, scenario):
    policy = LoggingPolicy(eps_world, seed=1)
    sc = eps_world.scenarios[scenario]
    n = 20_000
    slates = policy.serve(_batch(eps_world, scenario, n))
    for k in range(sc.slate_size):
        items, counts = np.unique(slates.items[:, k], return_counts=True)
        for item, count in zip(items, counts, strict=True):
            props = slates.propensity[:, k][slates.items[:, k] == item]
            assert np.ptp(props) < 1e-12  # the same (user, day): one propensity per item
            p = props[0]
            assert abs(count / n - p) < 4.5 * np.sqrt(p * (1 - p) / n) + 1e-9, (k, item)
        # the shown items' propensities cover all the mass that lands on shown items
        shown_mass = sum(slates.propensity[:, k][slates.items[:, k] == i][0] for i in items)
        assert shown_mass <= 1 + 1e-9
    # uniform-slice rows are marked
    assert slates.component.mean() == pytest.approx(0.3, abs=4.5 * np.sqrt(0.21 / n))


def test_uniform_policy_is_uniform(eps_world):
    sc = eps_world.scenarios[0]
    slates = UniformPolicy(eps_world, seed=2).serve(_batch(eps_world, 0, 4000))
    assert np.all(slates.propensity == 1 / sc.pool.size)
    assert all(len(set(row)) == sc.slate_size for row in slates.items.tolist())
    counts = np.bincount(np.searchsorted(sc.pool, slates.items[:, 0]), minlength=sc.pool.size)
    from scipy import stats

    assert stats.chisquare(counts).pvalue > 0.001


def test_ips_of_uniform_policy_from_logs_matches_its_on_policy_ctr():
    """IPS on the logging policy's logs estimates what the uniform policy does when it serves.

    First pages only: their requests (users, scenarios, times) do not depend on the policy,
    so both estimate the same quantity. Standard errors are clustered by request.
    """
    tree = tiny_tree(n_users=1500)
    tree["logging_policy"]["epsilon"] = 0.2
    cfg = config_from_dict(tree, "tiny")
    world = SyntheticWorld(cfg)
    logged = simulate(cfg, LoggingPolicy, world=world, days=2)
    served = simulate(cfg, UniformPolicy, world=world, days=2)
    pools = pl.DataFrame({"scenario": [s.name for s in world.scenarios],
                          "pool": [s.pool.size for s in world.scenarios]})  # fmt: skip
    first = (pl.col("request_id") % 1024) == 0

    logged = logged.filter(first).join(pools, on="scenario")
    per_req = logged.group_by("request_id").agg(
        y=(pl.col("click") / (pl.col("pool") * pl.col("propensity"))).sum(), n=pl.len()
    )
    n_exp = per_req["n"].sum()
    ips = per_req["y"].sum() / n_exp
    ips_se = per_req["y"].std() * np.sqrt(per_req.height) / n_exp

    on = served.filter(first).group_by("request_id").agg(y=pl.col("click").sum(), n=pl.len())
    assert on["n"].sum() == n_exp  # identical first-page requests under both policies
    ctr = on["y"].sum() / n_exp
    ctr_se = on["y"].std() * np.sqrt(on.height) / n_exp
    assert abs(ips - ctr) < 3.5 * np.hypot(ips_se, ctr_se), (ips, ctr, ips_se, ctr_se)
    # and the logging policy itself does better than uniform (it is personalised)
    assert logged["click"].mean() > ctr
