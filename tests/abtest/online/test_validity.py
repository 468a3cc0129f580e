"""Validity studies: re-randomisation equals a real A/B run; A/A false positives; coverage."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from abtest.online.analysis import AnalysisOptions
from abtest.online.experiment import run_experiment
from abtest.online.validity import aa_study, binomial_band, coverage_study, power_table, rerandomise
from abtest.serving import OraclePolicy
from simulator.policies import UniformPolicy
from tests.conftest import logged_world, tiny_tree

DAYS = 2


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tree = tiny_tree(n_users=600)
    tree["periods"].update({"pre_days": 2, "experiment_days": DAYS})
    cfg, _, world, logs = logged_world(tmp_path_factory, tree)
    twin = run_experiment(
        cfg, world, (UniformPolicy(world, 5), OraclePolicy(world)), logs, names=("u", "o"),
        days=DAYS, seed=cfg.seed, progress=False,
    )  # fmt: skip
    traffic = {s.name: s.traffic_share for s in cfg.scenarios}
    return cfg, world, logs, twin, traffic


def test_rerandomising_the_twin_equals_running_that_assignment(tiny):
    cfg, world, logs, twin, _ = tiny
    salt = "another-salt"
    c = dataclasses.replace(cfg, experiment=dataclasses.replace(cfg.experiment, salt=salt))
    real = run_experiment(
        c, world, (UniformPolicy(world, 5), OraclePolicy(world)), logs, names=("u", "o"),
        days=DAYS, seed=cfg.seed, progress=False, twin=False,
    )  # fmt: skip
    fake = rerandomise(twin, salt, dict(cfg.experiment.allocation))
    np.testing.assert_array_equal(fake.assignment, real.assignment)
    np.testing.assert_array_equal(fake.observed.values, real.observed.values)


def _aa_data(twin):
    both = np.stack([twin.truth[0], twin.truth[0]])  # everyone under the same policy
    return dataclasses.replace(twin, truth=both)


@pytest.mark.slow
def test_aa_false_positive_rate_is_alpha_within_a_binomial_band(tiny):
    cfg, _, _, twin, traffic = tiny
    runs = 300
    res = aa_study(_aa_data(twin), traffic, dict(cfg.experiment.allocation), runs)
    lo, hi = binomial_band(0.05, runs)
    # Scenarios with enough users: each rate within 3 sd of alpha. (In this tiny world the
    # low-traffic scenarios have a few dozen users; normal approximations are not promised
    # there, and the default-world figures are in the issue notes.)
    big = ["home_feed", "immersive_video", "overall"]
    rates = [r for s in big for r in res.rate[s].values()]
    assert all(lo <= r <= hi for r in rates), res.rate
    assert abs(np.mean(rates) - 0.05) < 0.02
    from scipy import stats as sps

    pooled = [p for s in big for m in ("ctr", "watch_time_per_user") for p in res.p_values[s][m]]
    assert sps.kstest(pooled, "uniform").pvalue > 1e-3
    for per in res.true_lift.values():
        assert all(v == 0.0 for v in per.values() if v is not None)


def test_aa_study_runs_and_reports_every_scenario(tiny):
    cfg, _, _, twin, traffic = tiny
    res = aa_study(_aa_data(twin), traffic, dict(cfg.experiment.allocation), 20)
    assert set(res.rate) == {*cfg.scenario_names, "overall"}
    assert all(0 <= r <= 1 for per in res.rate.values() for r in per.values() if r == r)
    assert len(res.p_values["home_feed"]["ctr"]) == 20


@pytest.mark.slow
def test_coverage_of_the_true_lift_is_near_95_percent(tiny):
    cfg, _, _, twin, traffic = tiny
    runs = 200
    res = coverage_study(twin, traffic, dict(cfg.experiment.allocation), runs,
                         AnalysisOptions(cuped=False))  # fmt: skip
    lo, _ = binomial_band(0.95, runs)
    rates = [r for per in res.rate.values() for r in per.values() if r == r]
    # over re-randomisation the superpopulation CIs are conservative: at least ~95%
    assert all(r >= lo for r in rates), res.rate


def test_power_table_mde_shrinks_with_days(tiny):
    cfg, _, _, twin, traffic = tiny
    table = power_table(_aa_data(twin), traffic, dict(cfg.experiment.allocation), 0.05)
    mdes = table.scenarios["overall"]["watch_time_per_user"].mde_by_day
    assert len(mdes) == DAYS and mdes[-1] < mdes[0]
    need = table.scenarios["overall"]["watch_time_per_user"].days_needed
    assert need is not None and need >= 1
