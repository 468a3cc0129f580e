"""abtest.online.plan: the design advisor on the tiny world (every scenario planned, users
needed within the search, days needed and recommendations consistent, the true lifts and
users as the analysis has them, the JSON round trip) and its recommendation rule on
hand-made designs."""

from __future__ import annotations

import json
import math

import pytest

import abtest.online.plan as plan_module
from abtest.online.analysis import HEADLINE_METRICS, AnalysisOptions, analyse
from abtest.online.experiment import ARMS
from abtest.online.plan import (
    DESIGNS,
    HI_PER_AVAILABLE,
    LO,
    OVERALL,
    DesignPlan,
    Plan,
    recommend,
    run_plan,
)
from abtest.report.format import strict_json_text
from abtest.stats import UsersNeeded
from core.config import config_from_dict
from core.errors import UserError
from tests.conftest import tiny_tree

REPS = 30  # re-randomisations per size: enough for the checks here, and quick


def _tree() -> dict:
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    return tree


@pytest.fixture(scope="module")
def planned(tmp_path_factory):
    """run_plan on the tiny world (popular vs random), with the runs it simulated."""
    cfg = config_from_dict(_tree(), "tiny")
    runs = {}
    real_ab, real_il = plan_module.run_experiment, plan_module.run_interleaving

    def ab(*args, **kw):
        runs["ab"] = real_ab(*args, **kw)
        return runs["ab"]

    def il(*args, **kw):
        runs["il"] = real_il(*args, **kw)
        return runs["il"]

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ABTEST_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setattr(plan_module, "run_experiment", ab)
        mp.setattr(plan_module, "run_interleaving", il)
        plan = run_plan(cfg, "popular", "random", world=None, reps=REPS, progress=False,
                        say=lambda m: None)  # fmt: skip
    return cfg, plan, runs["ab"], runs["il"]


def test_every_scenario_and_metric_is_planned(planned):
    cfg, plan, _, _ = planned
    names = [*cfg.scenario_names, OVERALL]
    assert [(r.scenario, r.metric) for r in plan.rows] == [
        (n, m) for n in names for m in HEADLINE_METRICS
    ]
    assert plan.scenarios == cfg.scenario_names and plan.days == 1 and plan.reps == REPS
    assert plan.treatment == "popular" and plan.control == "random" and plan.seed == cfg.seed
    assert set(plan.estimands) == set(DESIGNS) and plan.caveats and plan.assumptions
    assert plan.simulation.ab_requests > 0 and plan.simulation.interleaving_requests > 0


def test_users_needed_days_and_recommendations_are_consistent(planned):
    _, plan, _, _ = planned
    for r in plan.rows:
        assert r.users_by_day[-1] == r.users_available
        if r.users_available < 2:
            assert r.designs == () and r.recommended is None
            continue
        assert [d.design for d in r.designs] == list(DESIGNS)
        for d in r.designs:
            u = d.needed
            assert u.lo == LO and u.hi == max(LO, HI_PER_AVAILABLE * r.users_available)
            assert u.reps == REPS and u.grid[0] == LO and list(u.grid) == sorted(u.grid)
            if u.n is None:
                assert u.status == "beyond hi" and d.days_needed is None and not d.fits
            else:
                assert u.status in ("found", "at most lo") and LO <= u.n <= u.hi
                assert d.days_needed == pytest.approx(plan.days * u.n / r.users_available)
                assert d.fits == (u.n <= r.users_available)
                if d.fits:  # the first day by whose end enough users had come
                    k = d.days_by_accrual
                    assert r.users_by_day[k - 1] >= u.n and (k == 1 or r.users_by_day[k - 2] < u.n)
                else:
                    assert d.days_by_accrual is None
        found = [d for d in r.designs if d.needed.n is not None]
        assert (r.recommended is None) == (not found)
        if found:
            best = min(d.needed.n for d in found)
            assert r.recommended in DESIGNS and r.design(r.recommended).needed.n == best
        assert r.reason
    # popular beats random clearly enough on the tiny world for a recommendation somewhere
    assert any(r.recommended is not None for r in plan.rows)


def test_true_lifts_and_users_are_the_analysis(planned):
    cfg, plan, data, _ = planned
    assert (data.assignment >= 0).all()  # no holdout: the analysis sees every active user
    traffic = {s.name: s.traffic_share for s in cfg.scenarios}
    expected = {a: cfg.experiment.allocation[a] for a in ARMS}
    res = analyse(data, traffic, expected, AnalysisOptions(), daily=False, extras=False)
    populations = {**res.scenarios, OVERALL: res.overall}
    for r in plan.rows:
        pop = populations[r.scenario]
        assert r.users_available == pop.users.control + pop.users.treatment
        truth = pop.metric(r.metric).true_lift
        if truth is None:
            assert r.true_lift is None
        else:
            assert r.true_lift == pytest.approx(truth, rel=1e-9, abs=1e-12)


def test_the_json_round_trips(planned):
    _, plan, _, _ = planned
    body = json.loads(strict_json_text(plan.to_json()))
    assert body["kind"] == "plan" and body["search"] == {"lo": LO, "hi_per_available": 100}
    row = body["rows"][0]
    assert set(row) >= {"scenario", "metric", "users_available", "true_lift", "designs",
                        "recommended", "reason", "preference_share"}  # fmt: skip
    assert list(row["designs"]) == list(DESIGNS)
    assert set(row["designs"]["ab"]) == {"users_needed", "days_needed", "fits", "days_by_accrual"}
    assert set(row["designs"]["ab"]["users_needed"]) >= {"n", "status", "grid", "powers"}
    assert Plan.from_json(body) == plan


def test_planning_the_same_runs_again_gives_the_same_rows(planned):
    cfg, plan, data, il = planned
    for metric in HEADLINE_METRICS:  # the busiest scenario (the whole plan takes seconds)
        again = plan_module._plan_row(data, il, 0, metric, reps=REPS, alpha=plan.alpha,
                                      power=plan.power)  # fmt: skip
        assert again == plan.row(cfg.scenario_names[0], metric)


def test_bad_days_or_reps_are_refused_before_any_work(tiny_config):
    for kw in ({"days": 0}, {"reps": 0}, {"days": 1.5}):
        with pytest.raises(UserError, match="must be an integer >= 1"):
            run_plan(tiny_config, "popular", "random", world=None, **kw)


# ------------------------------------------------------------------- the recommendation


def _design(name: str, n: float | None, available: int, days: int = 7, lo: int = LO):
    status = "beyond hi" if n is None else "at most lo" if n == lo else "found"
    hi = HI_PER_AVAILABLE * available
    needed = UsersNeeded(n, status, None, (lo,), (0.0,), 0.8, 10, lo, hi, None)
    days_needed = None if n is None else days * n / available
    return DesignPlan(name, needed, days_needed, n is not None and n <= available)


def _designs(ab, cuped, inter, available=1000):
    return tuple(_design(d, n, available) for d, n in zip(DESIGNS, (ab, cuped, inter), strict=True))


@pytest.mark.parametrize(
    "needed, lift, share, design, words",
    [
        ((800, 600, 300), 0.05, 0.6, "interleaving", ["fewest users", "A/B + CUPED needs 600"]),
        ((800, 600, None), 0.05, 0.6, "ab_cuped", ["fewest users: 600 of the 1,000"]),
        ((800, 600, None), -0.05, 0.6, "ab_cuped", ["points against the true lift"]),
        ((3000, 2000, None), 0.05, 0.6, "ab_cuped", ["no design fits", "fewest days: 14"]),
        ((None, None, 1500), 0.05, 0.6, "interleaving", ["no A/B design reaches the power"]),
        ((600, 600, None), 0.05, 0.6, "ab_cuped", ["A/B + CUPED"]),  # a tie: CUPED first
        ((None, None, None), 0.001, 0.6, None, ["too small for this traffic"]),
        ((None, None, None), 0.0, 0.5, None, ["no effect to detect"]),
    ],
)
def test_recommend(needed, lift, share, design, words):
    got, reason = recommend(_designs(*needed), 1000, 7, lift, share)
    assert got == design
    for w in words:
        assert w in reason, reason


def test_recommend_at_the_smallest_size_says_so():
    designs = (
        _design("ab", 400, 30, days=1),
        _design("ab_cuped", 300, 30, days=1),
        _design("interleaving", LO, 30, days=1),
    )
    got, reason = recommend(designs, 30, 1, 0.1, 0.7)
    assert got == "interleaving" and "the smallest size searched" in reason
    assert math.isclose(designs[2].days_needed, LO / 30)
    assert recommend((), 1, 1, None) == (
        None,
        "fewer than 2 users in the scenario: nothing to plan",
    )
