"""The typed results and their one JSON form (abtest/offline/results.py): the replay.json
contract, its key order, and the round trips run -> JSON -> run and JSON -> run -> JSON."""

from __future__ import annotations

import json

from abtest.offline.results import ReplayRun, from_json, to_json
from abtest.offline.run import run_offline
from simulator.converters import obd_to_logs, read_kuairand_dir
from tests.abtest.offline.conftest import overlap_tree, write_logs
from tests.conftest import FIXTURES

ESTIMATOR_KEYS = ["replay", "ips", "snips", "dr"]
METRIC_KEYS = [*ESTIMATOR_KEYS, "truth", "lift", "warnings"]


def test_json_contract(replayed):
    run, out = replayed
    on_disk = json.loads((out / "replay.json").read_text())
    assert on_disk == json.loads(json.dumps(to_json(run)))
    assert on_disk["policy"] == "popular" and on_disk["baseline"] == "random"
    assert set(on_disk["scenarios"]) == {s["name"] for s in overlap_tree()["scenarios"]}
    for sc in on_disk["scenarios"].values():
        for e in ("replay", "ips", "snips", "dr"):
            assert {"estimate", "ci_low", "ci_high", "n", "ess"} <= set(sc[e])
        assert isinstance(sc["truth"], float) and 0 < sc["truth"] < 1
        assert isinstance(sc["warnings"], list)
        assert {"replay", "ips", "snips", "dr", "truth"} <= set(sc["lift"])
        assert sc["watch_time"]["truth"] > 0 and "dr" in sc["watch_time"]


def test_json_key_order(replayed):
    """replay.json's keys, in the order they have always been written."""
    run, out = replayed
    d = to_json(run)
    assert (out / "replay.json").read_text() == json.dumps(d, indent=2) + "\n"
    assert list(d) == ["policy", "baseline", "scenarios", "settings", "daily"]
    assert list(d["settings"]) == [
        "logs", "kind", "evaluated_from", "estimators", "estimand", "target_policy",
        "clusters", "clip", "seed",
    ]  # fmt: skip
    sc = d["scenarios"]["home_feed"]
    assert list(sc) == [
        *METRIC_KEYS, "logging", "exposures", "uniform_exposures", "baseline_estimates",
        "watch_time",
    ]  # fmt: skip
    assert list(sc["watch_time"]) == [*METRIC_KEYS, "logging", "baseline_estimates"]
    assert list(sc["baseline_estimates"]) == METRIC_KEYS
    assert sc["baseline_estimates"]["lift"] is None
    assert list(sc["ips"]) == [
        "estimate", "ci_low", "ci_high", "n", "ess", "se", "max_weight", "clipped",
        "ci_withheld",
    ]  # fmt: skip
    assert list(sc["lift"]) == [*ESTIMATOR_KEYS, "truth"]
    assert list(sc["lift"]["ips"]) == [
        "lift", "ci_low", "ci_high", "se", "policy", "baseline", "n",
    ]  # fmt: skip
    assert list(sc["logging"]) == ["observed", "truth"]
    day = d["daily"]["home_feed"][0]
    assert list(day) == ["day", *ESTIMATOR_KEYS, "truth"]
    assert len(day["ips"]) == 3


def _round_trips(run: ReplayRun) -> None:
    d = to_json(run)
    back = from_json(d)
    assert back == run
    assert json.dumps(to_json(back)) == json.dumps(d)  # same keys, values and key order
    assert from_json(json.loads(json.dumps(d))) == run


def test_round_trip_of_a_synthetic_run(replayed):
    _round_trips(replayed[0])


def test_round_trips_of_runs_on_real_logs(tmp_path):
    logs, _, _ = read_kuairand_dir(FIXTURES / "kuairand")
    kuairand = run_offline(None, "popular", "random", write_logs(tmp_path / "kr", logs))
    lift = next(iter(kuairand.scenarios.values())).ctr.lift
    assert not lift.has_truth and "truth" not in to_json(kuairand)["scenarios"]["tab0"]["lift"]
    _round_trips(kuairand)
    rnd, _, _ = obd_to_logs(FIXTURES / "obd" / "random" / "all" / "all.csv")
    obd = run_offline(None, "popular", None, write_logs(tmp_path / "rnd", rnd), ["replay", "ips"])
    sc = to_json(obd)["scenarios"]["all"]
    assert "baseline_estimates" not in sc and sc["lift"] is None and sc["watch_time"] is None
    _round_trips(obd)
