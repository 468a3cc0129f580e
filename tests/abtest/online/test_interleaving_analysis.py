"""The interleaving analysis on a hand-built credit array: hand-computed shares and wins,
pooled overall users, the multiple-testing correction, degenerate scenarios and the JSON
round trip."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import numpy as np
import pytest
from scipy import special
from scipy import stats as sps

from abtest import stats
from abtest.online.interleaving import CONTROL, TREATMENT, InterleavingData
from abtest.online.interleaving_analysis import (
    LOW_TRAFFIC_SHARE,
    analyse_interleaving,
    from_json,
    to_json,
)
from abtest.online.results import RunInfo
from abtest.online.user_stats import UserStats
from core.errors import UserError

SCENARIOS = ("home", "video", "landing")
TRAFFIC = {"home": 0.6, "video": 0.35, "landing": 0.05}
N_USERS, DAYS = 6, 2
IMP, CLICK, WATCH = range(3)


def _credit() -> np.ndarray:
    """S x U x D x 2 x 3 credit. home: users 0-3 exposed (user 3 without credit), video:
    users 1, 2, 4 exposed, landing: users 0 and 5 exposed, no clicks or watch time."""
    credit = np.zeros((len(SCENARIOS), N_USERS, DAYS, 2, 3))

    def put(s, u, team, imp, clicks, watch, day=0):
        credit[s, u, day, team] += [imp, clicks, watch]

    # home: (t, c) clicks per user 0..3 = (3, 1), (1, 2), (2, 0), (0, 0)
    put(0, 0, TREATMENT, 4, 2, 20.0)
    put(0, 0, TREATMENT, 2, 1, 10.0, day=1)  # days add up
    put(0, 0, CONTROL, 5, 1, 5.0)
    put(0, 1, TREATMENT, 3, 1, 4.0)
    put(0, 1, CONTROL, 3, 2, 30.0)
    put(0, 2, TREATMENT, 2, 2, 8.0)
    put(0, 2, CONTROL, 1, 0, 0.0)
    put(0, 3, TREATMENT, 1, 0, 0.0)
    put(0, 3, CONTROL, 1, 0, 0.0, day=1)
    # video: (t, c) clicks for users 1, 2, 4 = (4, 1), (2, 2), (3, 0)
    put(1, 1, TREATMENT, 6, 4, 40.0)
    put(1, 1, CONTROL, 4, 1, 12.0)
    put(1, 2, TREATMENT, 3, 2, 9.0)
    put(1, 2, CONTROL, 3, 2, 9.0)
    put(1, 4, TREATMENT, 5, 3, 15.0, day=1)
    put(1, 4, CONTROL, 1, 0, 0.0)
    # landing: seen, never clicked
    put(2, 0, TREATMENT, 2, 0, 0.0)
    put(2, 5, CONTROL, 3, 0, 0.0)
    return credit


def fake_data(credit: np.ndarray | None = None) -> InterleavingData:
    """An interleaving run of "random" (control) vs "truth" (treatment) with `credit`."""
    credit = _credit() if credit is None else credit
    return InterleavingData(
        arms=("random", "truth"),
        scenarios=SCENARIOS,
        seed=7,
        start_day=3,
        days=DAYS,
        variant="recall",
        credit=credit,
        observed=UserStats.empty(1, len(SCENARIOS), N_USERS, 3, DAYS),
        requests=40,
        exposures=int(credit[..., IMP].sum()) + 3,
        wall_seconds=1.25,
        uncredited=np.array([2, 0, 1]),
    )


def fake_results(**kw):
    return analyse_interleaving(fake_data(), TRAFFIC, **kw)


def _hand_share(t: list[float], c: list[float]) -> tuple[float, float, float]:
    """share, delta-method se and the sign-flip test's two-sided p of share = 1/2, from the
    formulas of abtest.stats.preference: Var = Σ (t_i - share·s_i)² / ((n - 1)·n·s̄²) and
    z = Σ d_i / sqrt(Σ d_i²), d_i = t_i - c_i."""
    t_arr, s = np.array(t, float), np.array(t, float) + np.array(c, float)
    keep = s > 0
    t_arr, s = t_arr[keep], s[keep]
    n = t_arr.size
    share = t_arr.sum() / s.sum()
    se = math.sqrt(((t_arr - share * s) ** 2).sum() / ((n - 1) * n * s.mean() ** 2))
    d = 2 * t_arr - s
    z = d.sum() / math.sqrt((d**2).sum())
    return share, se, 2 * float(special.ndtr(-abs(z)))


def test_scenario_share_wins_and_impressions_match_hand_computations():
    r = fake_results()
    home = r.scenarios["home"]
    clicks = home.metrics["clicks"]
    share, se, p = _hand_share([3, 1, 2, 0], [1, 2, 0, 0])
    assert clicks.share.share == pytest.approx(6 / 9) == pytest.approx(share)
    assert clicks.share.share_se == pytest.approx(se)
    assert clicks.share.p_value == pytest.approx(p)
    assert clicks.share.delta == pytest.approx(2 * 6 / 9 - 1)
    assert clicks.share.ci_low == pytest.approx(share - 1.959964 * se, rel=1e-6)
    assert (clicks.share.n_users, clicks.share.n_excluded) == (3, 1)  # user 3: exposed, no credit
    assert (clicks.share.total_treatment, clicks.share.total_control) == (6, 3)
    w = clicks.wins
    assert (w.wins, w.losses, w.ties, w.n_users, w.n_excluded) == (2, 1, 1, 4, 0)
    assert w.p_value == pytest.approx(sps.binomtest(2, 3).pvalue)
    assert w.delta_ab == pytest.approx(0.25)
    watch = home.metrics["watch_time"]
    share, se, p = _hand_share([30, 4, 8, 0], [5, 30, 0, 0])
    assert watch.share.share == pytest.approx(42 / 77)
    assert (watch.share.share_se, watch.share.p_value) == (pytest.approx(se), pytest.approx(p))
    assert (watch.wins.wins, watch.wins.losses, watch.wins.ties) == (2, 1, 1)
    assert (home.users, home.engaged_users) == (4, 3)
    imp = home.impressions
    assert (imp.treatment, imp.control, imp.uncredited) == (12, 10, 2)
    assert imp.share == pytest.approx(12 / 22)
    assert home.traffic_share == 0.6 and home.low_traffic is False
    video = r.scenarios["video"].metrics["clicks"]
    assert video.share.share == pytest.approx(9 / 12)
    assert (video.wins.wins, video.wins.losses, video.wins.ties) == (2, 0, 1)
    assert r.scenarios["landing"].low_traffic is True and LOW_TRAFFIC_SHARE == 0.10
    assert r.arms == ("random", "truth") and (r.control, r.treatment) == ("random", "truth")
    assert (r.seed, r.days, r.variant, r.requests, r.wall_seconds) == (7, 2, "recall", 40, 1.25)


def test_overall_pools_each_users_credit_over_the_scenarios():
    data = fake_data()
    r = analyse_interleaving(data, TRAFFIC)
    per_user = data.credit.sum(axis=(0, 2))  # U x team x sums
    exposed = per_user[:, :, IMP].sum(axis=1) > 0
    assert r.overall.users == int(exposed.sum()) == N_USERS
    for k, metric in ((CLICK, "clicks"), (WATCH, "watch_time")):
        t, c = per_user[exposed, TREATMENT, k], per_user[exposed, CONTROL, k]
        got = r.overall.metrics[metric]
        want = stats.preference_share(t, c)
        assert got.share.share == pytest.approx(want.share)
        assert got.share.share_se == pytest.approx(want.share_se)
        assert got.share.n_users == want.n_users
        wins = stats.preference_wins(t, c)
        assert (got.wins.wins, got.wins.losses, got.wins.ties) == (
            wins.wins,
            wins.losses,
            wins.ties,
        )
    # user 1 is in home (1 vs 2 clicks) and video (4 vs 1): pooled 5 vs 3, a win overall
    assert r.overall.metrics["clicks"].share.total_treatment == 15
    assert r.overall.metrics["clicks"].wins.wins == 4  # users 0, 1, 2 and 4
    assert r.overall.impressions.uncredited == 3
    assert r.overall.traffic_share is None and r.overall.low_traffic is None


@pytest.mark.parametrize("correction", ["bh", "holm"])
def test_p_values_are_corrected_across_scenario_x_metric_and_overall_on_its_own(correction):
    r = fake_results(correction=correction)
    cells = [r.scenarios[s].metrics[m] for s in SCENARIOS for m in ("clicks", "watch_time")]
    want = stats.adjust_p_values([m.share.p_value for m in cells], method=correction)
    got = [m.p_adjusted for m in cells]
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert np.isnan(got[-2:]).all()  # landing: no p-values, not counted in the family
    assert all(m.significant == (m.p_adjusted < r.alpha) for m in cells)
    overall = [r.overall.metrics[m] for m in ("clicks", "watch_time")]
    want = stats.adjust_p_values([m.share.p_value for m in overall], method=correction)
    np.testing.assert_allclose([m.p_adjusted for m in overall], want, rtol=1e-10)
    assert r.correction == correction


def test_a_scenario_without_credited_engagement_is_nan_with_a_reason():
    landing = fake_results().scenarios["landing"]
    for metric in ("clicks", "watch_time"):
        m = landing.metrics[metric]
        assert math.isnan(m.share.share) and math.isnan(m.share.p_value)
        assert math.isnan(m.p_adjusted) and m.significant is False
        assert m.reason == m.share.reason == "no credited engagement"
        assert (m.wins.ties, m.wins.reason) == (2, "only ties: no wins or losses")
    assert (landing.users, landing.engaged_users) == (2, 0)
    assert landing.impressions.share == pytest.approx(0.4)


def test_an_empty_run_gives_nan_everywhere_and_does_not_raise():
    data = fake_data(np.zeros((len(SCENARIOS), N_USERS, DAYS, 2, 3)))
    r = analyse_interleaving(data, {})  # no traffic shares known either
    for p in [*r.scenarios.values(), r.overall]:
        assert p.users == 0 and math.isnan(p.impressions.share)
        assert p.traffic_share is None and p.low_traffic is None
        for m in p.metrics.values():
            assert m.reason == "no credited engagement" and m.wins.reason == "no exposed users"
            assert math.isnan(m.p_adjusted)


def test_bad_arguments_are_refused():
    with pytest.raises(UserError, match="correction"):
        fake_results(correction="bonferroni")
    with pytest.raises(UserError, match="alpha"):
        fake_results(alpha=1.5)


def _round_trip(doc: dict) -> dict:
    return json.loads(json.dumps(doc, allow_nan=False))


def test_json_round_trip_gives_the_same_results():
    run = RunInfo(
        command="abtest interleave --seed 7",
        created="2024-01-02T03:04:05",
        config_fingerprint="abc123",
        config={"seed": 7, "periods": {"pre_days": 3}},
    )
    r = fake_results(alpha=0.1, run=run)
    doc = _round_trip(to_json(r))
    back = from_json(doc)
    assert to_json(back) == doc
    assert back.run == run
    assert back.scenarios["home"] == r.scenarios["home"]  # no NaN in it: equal as objects
    assert back.scenarios["video"] == r.scenarios["video"]
    assert back.overall == r.overall
    assert dataclasses.replace(back, scenarios={}) == dataclasses.replace(r, scenarios={})
    assert doc["scenarios"]["landing"]["metrics"]["clicks"]["share"]["share"] is None
    assert math.isnan(back.scenarios["landing"].metrics["clicks"].share.share)
    assert list(doc) == ["control", "treatment", "seed", "days", "variant", "alpha",
                         "correction", "low_traffic_share", "requests", "exposures",
                         "wall_seconds", "scenarios", "overall", "run"]  # fmt: skip
    assert "traffic_share" not in doc["overall"]


def test_from_json_refuses_a_document_missing_a_required_key():
    doc = _round_trip(to_json(fake_results()))
    for key in ("variant", "overall"):
        bad = copy.deepcopy(doc)
        del bad[key]
        with pytest.raises(UserError, match=f"interleaving.json is missing required key '{key}'"):
            from_json(bad, source="interleaving.json")
    bad = copy.deepcopy(doc)
    del bad["scenarios"]["video"]["metrics"]["clicks"]["wins"]
    with pytest.raises(UserError, match=r"'scenarios.video.metrics.clicks' is missing .*'wins'"):
        from_json(bad)
    with pytest.raises(UserError, match="must be a JSON object"):
        from_json([doc])
