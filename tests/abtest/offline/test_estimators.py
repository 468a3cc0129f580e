"""One class per estimator (abtest/offline/estimators.py): the registry, each class's terms
against the pure functions of ope, when it cannot run, when its interval is withheld."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from abtest.offline import ope
from abtest.offline.estimators import (
    ESTIMATORS,
    IPS,
    SNIPS,
    DoublyRobust,
    Inputs,
    Replay,
    estimators_named,
)
from core.errors import UserError

N = 50
RNG = np.random.default_rng(0)
X = Inputs(
    r=(RNG.random(N) < 0.4).astype(float),
    pi=RNG.uniform(0.1, 0.9, N),
    mu=RNG.uniform(0.2, 0.6, N),
    matched=RNG.random(N) < 0.5,
    q_logged=RNG.uniform(0.2, 0.5, N),
    q_target=RNG.uniform(0.2, 0.5, N),
    clusters=np.arange(N) // 5,
    top_shown=RNG.random(N) < 0.5,
)
MASK = RNG.random(N) < 0.7


def _same(a: ope.Terms, b: ope.Terms) -> None:
    np.testing.assert_array_equal(a.num, b.num)
    np.testing.assert_array_equal(a.den, b.den)
    assert (a.n, a.ess, a.max_weight, a.clipped) == (b.n, b.ess, b.max_weight, b.clipped)


def test_the_registry_names_each_class():
    assert tuple(ESTIMATORS) == ("replay", "ips", "snips", "dr")
    assert [c.name for c in ESTIMATORS.values()] == list(ESTIMATORS)
    assert ESTIMATORS["dr"] is DoublyRobust and not Replay.weighted and IPS.weighted
    assert estimators_named(["snips", "replay"], 3.0) == (SNIPS(3.0), Replay(3.0))


@pytest.mark.parametrize("names", [["ips", "magic"], []])
def test_unknown_estimators_are_a_user_error(names):
    with pytest.raises(UserError, match="unknown estimator"):
        estimators_named(names)


@pytest.mark.parametrize("clip", [None, 1.5])
def test_each_class_gives_the_terms_of_its_ope_function(clip):
    m = MASK
    x = X
    _same(Replay(clip).terms(x, m), ope.replay_terms(x.r[m], x.matched[m]))
    _same(IPS(clip).terms(x, m), ope.ips_terms(x.r[m], x.pi[m], x.mu[m], clip))
    _same(SNIPS(clip).terms(x, m), ope.snips_terms(x.r[m], x.pi[m], x.mu[m], clip))
    dr = ope.dr_terms(x.r[m], x.pi[m], x.mu[m], x.q_logged[m], x.q_target[m], clip)
    _same(DoublyRobust(clip).terms(x, m), dr)


def test_no_events_or_no_propensities_mean_no_terms():
    none = np.zeros(N, dtype=bool)
    for cls in ESTIMATORS.values():
        assert cls().terms(X, none) is None
    mu = X.mu.copy()
    mu[np.flatnonzero(MASK)[0]] = np.nan  # one evaluated event without a propensity
    no_mu = replace(X, mu=mu)
    assert all(cls().terms(no_mu, MASK) is None for cls in (IPS, SNIPS, DoublyRobust))
    assert Replay().terms(no_mu, MASK) is not None  # replay needs none
    assert Replay.missing == "no uniform-slice events"
    assert IPS.missing == "the log has no propensities"


def test_the_interval_is_withheld_on_too_little_evidence():
    few = ope.OPEResult(0.1, 0.0, 0.2, 0.05, 12, 12.0, 1.0, 0)
    many = ope.OPEResult(0.1, 0.0, 0.2, 0.05, 40, 40.0, 1.0, 0)
    assert Replay().withheld(few, X, MASK) == "12 matched events"
    rewarded = replace(X, r=np.ones(N))  # every event rewarded: enough of them
    assert Replay().withheld(many, rewarded, MASK) is None
    mean_w = float(np.mean(X.pi[MASK] / X.mu[MASK]))
    assert 0.5 <= mean_w <= 2.0
    assert IPS().withheld(few, X, MASK) == f"effective sample size 12, mean weight {mean_w:.2f}"
    assert IPS().withheld(many, rewarded, MASK) is None
    far = replace(X, pi=X.pi * 3)  # mean weight above 2: mass off the logs
    assert "mean weight" in SNIPS().withheld(many, far, MASK)


def test_the_interval_is_withheld_without_any_rewarded_event():
    """No rewarded event: every term is 0 and the normal CI would be [0, 0]."""
    many = ope.OPEResult(0.0, 0.0, 0.0, 0.0, 400, 400.0, 1.0, 0)
    n = 400
    base = Inputs(
        r=np.zeros(n), pi=np.full(n, 0.1), mu=np.full(n, 0.1), matched=np.ones(n, bool),
        q_logged=np.zeros(n), q_target=np.zeros(n), clusters=np.arange(n),
        top_shown=np.zeros(n, bool),
    )  # fmt: skip
    every = np.ones(n, dtype=bool)
    for est in (Replay(), IPS(), SNIPS(), DoublyRobust()):
        assert est.withheld(many, base, every) == "no rewarded event"
    one = base.r.copy()
    one[7] = 1.0
    for est in (Replay(), IPS(), SNIPS(), DoublyRobust()):
        assert est.withheld(many, replace(base, r=one), every) is None
