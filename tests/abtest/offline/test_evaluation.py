"""One scenario and metric, and the day walker (abtest/offline/evaluation.py)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from abtest.offline import ope
from abtest.offline.estimators import Inputs, estimators_named
from abtest.offline.evaluation import daily, evaluate_metric


def test_daily_accumulation_ends_at_the_final_estimate(replayed):
    run, _ = replayed
    days = run.daily["home_feed"]
    # two experiment days (the last sessions may run past midnight into a third)
    assert [d.day for d in days][:2] == [0, 1] and len(days) <= 3
    last = days[-1]
    final = run.scenarios["home_feed"].ctr
    for e in ("ips", "snips", "dr"):
        assert last.estimates[e].estimate == pytest.approx(final.estimates[e].estimate)
    assert last.truth == pytest.approx(final.truth)
    # the first day used fewer exposures: a different, wider interval
    width = lambda v: v.ci_high - v.ci_low  # noqa: E731
    assert width(days[0].estimates["ips"]) > width(last.estimates["ips"])


def test_the_day_walker_sees_the_exposures_logged_so_far():
    day = np.array([0, 0, 2, 1, 2])
    assert daily(day, lambda m: int(m.sum()), 3) == [(0, 2), (1, 3), (2, 5)]


def _inputs(n: int, seed: int, mu: float = 0.5) -> Inputs:
    rng = np.random.default_rng(seed)
    r = (rng.random(n) < 0.3).astype(float)
    pi = rng.uniform(0.2, 0.8, n)
    q = np.full(n, 0.3)
    matched = rng.random(n) < 0.5
    users = np.arange(n) // 2
    return Inputs(r, pi, np.full(n, mu), matched, q, q, users, rng.random(n) < 0.9)


def test_evaluate_metric_runs_every_estimator_with_the_lift_and_the_truth():
    pol, base = _inputs(400, 1), _inputs(400, 2)
    names = ("replay", "ips", "snips", "dr")
    mask = np.ones(400, dtype=bool)
    truth, truth_base = np.full(400, 0.2), np.full(400, 0.25)
    res = evaluate_metric(estimators_named(names), pol, base, truth, truth_base, mask)
    assert tuple(res.estimates) == names and tuple(res.lift.estimators) == names
    assert res.truth == pytest.approx(0.2)
    assert res.lift.has_truth and res.lift.truth == pytest.approx(0.2 / 0.25 - 1)
    ips = ope.estimate(ope.ips_terms(pol.r, pol.pi, pol.mu), pol.clusters)
    assert res.estimates["ips"].estimate == pytest.approx(ips.estimate)
    assert res.estimates["ips"].se == pytest.approx(ips.se)
    assert not any("overlap" in w for w in res.warnings)
    assert res.logging is None and res.baseline_estimates is None
    # without a truth the true lift is unknown; without a baseline there is no lift at all
    unknown = evaluate_metric(estimators_named(["ips"]), pol, base, None, None, mask)
    assert not unknown.lift.has_truth and unknown.lift.truth is None and unknown.truth is None
    assert evaluate_metric(estimators_named(["ips"]), pol, None, truth, None, mask).lift is None


def test_evaluate_metric_says_what_it_could_not_do():
    pol = _inputs(400, 3, mu=float("nan"))  # a log without propensities
    mask = np.zeros(400, dtype=bool)
    mask[:20] = True  # a handful of events: replay's interval is withheld
    res = evaluate_metric(estimators_named(["replay", "ips"]), pol, None, None, None, mask)
    assert res.estimates["ips"] is None
    assert "ips: not computed (the log has no propensities)" in res.warnings
    rep = res.estimates["replay"]
    assert rep.ci_withheld and rep.ci_low is None and rep.ci_high is None
    assert rep.estimate is not None
    assert any(w.startswith("replay: CI withheld") for w in res.warnings)
    top_poor = replace(_inputs(400, 4), top_shown=np.zeros(400, dtype=bool))
    res = evaluate_metric(estimators_named(["ips"]), top_poor, None, None, None, mask | True)
    assert any(w.startswith("overlap:") for w in res.warnings)
