"""`python -m abtest run` and `report` end to end on a tiny config (the results.json contract)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from abtest.cli.main import main
from tests.conftest import ROOT, tiny_tree

METRIC_KEYS = {
    "control", "treatment", "lift", "ci_low", "ci_high", "p_value", "p_adjusted",
    "significant", "true_lift", "mde", "cuped",
}  # fmt: skip


@pytest.fixture
def tiny_run(tmp_path, write_yaml, monkeypatch):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 2})
    return write_yaml(tree), tmp_path


def test_run_writes_the_report_and_honours_the_contract(tiny_run, capsys):
    cfg, tmp = tiny_run
    out = tmp / "run"
    args = ["run", "--treatment", "mixed", "--control", "popular", "--config", str(cfg),
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "home_feed" in printed and "report:" in printed
    res = json.loads((out / "results.json").read_text())
    assert res["treatment"] == "mixed" and res["control"] == "popular"
    assert res["days"] == 2 and isinstance(res["seed"], int)
    assert set(res["srm"]["users"]) == {"control", "treatment"} and 0 <= res["srm"]["p_value"] <= 1
    names = [s["name"] for s in tiny_tree()["scenarios"]]
    assert list(res["scenarios"]) == names
    for name in names:
        entry = res["scenarios"][name]
        assert 0 < entry["traffic_share"] < 1
        for metric in ("ctr", "watch_time_per_user"):
            m = entry["metrics"][metric]
            assert set(m) >= METRIC_KEYS
            assert m["true_lift"] is not None  # synthetic world: the twin knows the truth
            if m["ci_low"] is not None:
                assert m["ci_low"] <= m["lift"] <= m["ci_high"]
                assert m["p_value"] <= m["p_adjusted"] <= 1
    assert set(res["overall"]["metrics"]) >= {"ctr", "watch_time_per_user"}
    assert res["checkpoints"]["mixed"]["sha256"] and res["checkpoints"]["popular"]["path"] is None
    for f in ("report.md", "report.html", "lift.csv", "forest.png", "cumulative.png"):
        assert (out / f).stat().st_size > 0
    # the same seed gives the same statistics; `report` re-renders from results.json
    again = tmp / "again"
    assert main([*args[:-3], "--out", str(again), "--quiet"]) == 0
    res2 = json.loads((again / "results.json").read_text())
    assert res2["scenarios"] == res["scenarios"] and res2["overall"] == res["overall"]
    md = (out / "report.md").read_bytes()
    (out / "report.md").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_bytes() == md


def test_aa_run_has_zero_true_lift_and_no_srm(tiny_run):
    cfg, tmp = tiny_run
    out = tmp / "aa"
    args = ["run", "--treatment", "popular", "--control", "popular", "--config", str(cfg),
            "--out", str(out), "--quiet", "--no-cuped"]  # fmt: skip
    assert main(args) == 0
    res = json.loads((out / "results.json").read_text())
    assert not res["srm"]["flagged"]
    for entry in res["scenarios"].values():
        for m in entry["metrics"].values():
            assert m["true_lift"] == 0.0 and m["cuped"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--treatment", "sas", "--control", "mixed"], "known models: mixed"),
        (["--treatment", "sass", "--control", "mixed", "--days", "0"], "must be >= 1"),
        (["--treatment", "sass", "--control", "mixed", "--config", "nope.yaml"], "nope.yaml"),
    ],
)
def test_run_bad_input_is_one_line_exit_2(args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "abtest", "run", *args], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]


def test_report_of_a_missing_run_is_a_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "abtest", "report", str(tmp_path / "none")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "does not exist" in proc.stderr
