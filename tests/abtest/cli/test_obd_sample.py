"""The real Open Bandit Dataset sample end to end: import, train and evaluate `mixed` and
`sass` with campaigns as scenarios, replay a model and one behaviour policy on the other's
logs (``realdata``: skipped when `make obd-sample` has not fetched the sample)."""

from __future__ import annotations

import datetime as dt
import json

import polars as pl
import pytest

from abtest.cli.main import main

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def imported(obd_sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("obd") / "logs"
    assert main(["import", "obd", str(obd_sample), "--out", str(out), "--quiet"]) == 0
    return out


def test_the_sample_imports_and_verifies(imported):
    from simulator.logfolder import problems
    from simulator.logs import read_logs

    assert problems(imported) == []
    manifest = json.loads((imported / "manifest.json").read_text())
    assert manifest["kind"] == "imported" and sorted(manifest["scenarios"]) == [
        "all",
        "men",
        "women",
    ]
    logs = read_logs(imported)
    assert logs.height == 60_000
    assert set(logs["policy"]) == {"uniform", "bts"}


def test_mixed_and_sass_train_and_evaluate_on_it(imported, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "offline"
    args = ["evaluate", "--logs", str(imported), "--models", "popular,mixed,sass",
            "--epochs", "1", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "offline.json").read_text())
    for model in ("popular", "mixed", "sass"):
        scores = result["models"][model]
        assert scores, f"{model}: no scenario evaluated"
        for entry in scores.values():
            assert 0 <= entry["recall@100"] <= 1


def test_replay_of_a_model_on_the_sample(imported, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "replay"
    args = ["replay", "--logs", str(imported), "--policy", "popular", "--out", str(out),
            "--quiet"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "replay.json").read_text())
    assert set(result["scenarios"]) <= {"all", "men", "women"} and result["scenarios"]


def test_bts_evaluated_on_the_uniform_logs(imported, tmp_path, capsys):
    """The Open Bandit Pipeline's classic check: the bts policy's item distribution as a
    policy table, estimated from the uniform policy's logs, against bts's own logged CTR."""
    from abtest.offline.policy_table import policy_table_from_logs
    from simulator.logs import read_logs

    logs = read_logs(imported)
    table = policy_table_from_logs(logs, "bts")
    path = tmp_path / "bts.parquet"
    table.write_parquet(path)
    uniform_only = tmp_path / "uniform"
    _keep_policy(imported, uniform_only, "uniform")
    out = tmp_path / "replay"
    args = ["replay", "--logs", str(uniform_only), "--policy-table", str(path),
            "--estimators", "ips,snips", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "replay.json").read_text())
    start = dt.datetime.fromisoformat(result["settings"]["evaluated_from"])
    bts = logs.filter(pl.col("policy") == "bts", pl.col("timestamp") >= start)
    on_policy = dict(bts.group_by("scenario").agg(pl.col("click").mean()).iter_rows())
    assert set(result["scenarios"]) == set(on_policy)
    for name, entry in result["scenarios"].items():
        assert entry["support"]["uncovered"] == 0  # the uniform policy showed every item
        for est in ("ips", "snips"):  # the on-policy CTR (about 20 clicks each) is covered
            assert entry[est]["ci_low"] <= on_policy[name] <= entry[est]["ci_high"], (name, est)


def _keep_policy(src, dst, policy):
    """A copy of the imported folder `src` with only `policy`'s rows (re-sealed)."""
    import shutil

    from simulator.logfolder import read_manifest, seal

    shutil.copytree(src, dst)
    logs = pl.read_parquet(dst / "logs.parquet").filter(pl.col("policy") == policy)
    logs.write_parquet(dst / "logs.parquet")
    seal(dst, read_manifest(dst))
