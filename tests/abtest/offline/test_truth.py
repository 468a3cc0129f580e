"""The exact truth on synthetic logs (abtest/offline/truth.py): it depends on the policy."""

from __future__ import annotations

import pytest

from abtest.offline.run import run_offline
from tests.abtest.offline.conftest import HIGH_TRAFFIC, within


def test_the_truth_depends_on_the_policy(replayed, world_logs):
    run, _ = replayed
    cfg, root = world_logs
    assert run.scenarios["home_feed"].ctr.lift.truth != pytest.approx(0, abs=0.01)
    # with epsilon = 1 both targets are the uniform policy: equal truths, true lift 0
    flat = run_offline(cfg, "popular", "random", root / "logs", ["ips"], epsilon=1.0)
    for name in HIGH_TRAFFIC:  # the uniform target overlaps the logs well: a tight check
        sc = flat.scenarios[name].ctr
        ips = sc.estimates["ips"]
        assert ips.ess > 1000 and within(ips, sc.truth, 3)
    for scenario in flat.scenarios.values():
        sc = scenario.ctr
        assert sc.lift.truth == pytest.approx(0, abs=1e-12)
        assert sc.estimates["ips"].estimate == pytest.approx(sc.lift.estimators["ips"].policy)
        assert sc.lift.estimators["ips"].lift == pytest.approx(0, abs=1e-12)
