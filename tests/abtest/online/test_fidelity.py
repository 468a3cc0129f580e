"""The fidelity study's summaries, on hand-made lifts (against scipy and by hand)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from abtest.online.fidelity import PairLift, _summary


def _lift(model, scenario, metric, real, fitted, ci=(None, None), seed=1):
    return PairLift(model, seed, scenario, metric, real, fitted, ci)


def test_summary_matches_scipy_and_counts_by_hand():
    rng = np.random.default_rng(0)
    rows = []
    for m in ("a", "b", "c", "d"):
        for s in ("x", "y"):
            real = float(rng.normal(0, 0.05))
            fitted = real + float(rng.normal(0, 0.02))
            rows.append(_lift(m, s, "ctr", real, fitted, (fitted - 0.03, fitted + 0.03)))
    rows.append(_lift("e", "x", "ctr", None, 0.1))  # unknown: left out
    got = _summary(rows, ["x", "y"])["by_metric"]["ctr"]
    known = [r for r in rows if r.known]
    real = np.array([r.real for r in known])
    fit = np.array([r.fitted for r in known])
    assert got["pairs"] == 8
    assert got["kendall_tau"] == pytest.approx(stats.kendalltau(fit, real).statistic)
    assert got["sign_agreement"] == pytest.approx(np.mean(np.sign(fit) == np.sign(real)))
    assert got["mean_abs_error"] == pytest.approx(np.mean(np.abs(fit - real)))
    covered = [lo <= r.real <= hi for r in known for lo, hi in [r.fitted_ci]]
    assert got["ci_covers_real"] == pytest.approx(np.mean(covered))


VALUES = {"a": 0.01, "b": -0.02, "c": 0.03, "d": 0.04}


def test_a_perfect_and_a_reversed_fit():
    perfect = [_lift(m, "x", "ctr", v, v) for m, v in VALUES.items()]
    assert _summary(perfect, ["x"])["overall"]["kendall_tau"] == pytest.approx(1.0)
    assert _summary(perfect, ["x"])["overall"]["sign_agreement"] == 1.0
    reversed_ = [_lift(m, "x", "ctr", v, -v) for m, v in VALUES.items()]
    assert _summary(reversed_, ["x"])["overall"]["kendall_tau"] == pytest.approx(-1.0)
    assert _summary(reversed_, ["x"])["overall"]["sign_agreement"] == 0.0
    assert _summary([], ["x"])["overall"] == {"pairs": 0}
