"""`python -m abtest generate` end to end on a tiny config."""

import json
import subprocess
import sys

import polars as pl

from abtest.cli.main import main
from simulator.logs import read_logs
from tests.conftest import ROOT, tiny_tree


def test_generate_writes_logs_tables_and_summary(tmp_path, write_yaml, capsys):
    cfg = write_yaml(tiny_tree())
    out = tmp_path / "out"
    assert main(["generate", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    for name in ("home_feed", "new_user_landing", "all", "requests/s"):
        assert name in printed
    logs = read_logs(out / "logs.parquet", scenarios=[s["name"] for s in tiny_tree()["scenarios"]])
    users, items = pl.read_parquet(out / "users.parquet"), pl.read_parquet(out / "items.parquet")
    assert users.height == 300 and items.height == 500
    assert logs["user_id"].is_in(users["user_id"].implode()).all()
    assert logs["item_id"].is_in(items["item_id"].implode()).all()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["engine"]["requests"] == logs["request_id"].n_unique()
    assert {r["scenario"] for r in manifest["summary"]} >= {"home_feed", "all"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left behind
    # --seed overrides the config's seed and changes the logs
    out2 = tmp_path / "out2"
    assert (
        main(["generate", "--config", str(cfg), "--out", str(out2), "--quiet", "--seed", "5"]) == 0
    )
    assert json.loads((out2 / "manifest.json").read_text())["seed"] == 5
    assert not read_logs(out2).equals(logs)


def test_unwritable_output_folder_is_a_clear_error(tmp_path, write_yaml):
    cfg = write_yaml(tiny_tree())
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cmd = ["generate", "--config", str(cfg), "--out", str(blocker / "x")]
    proc = subprocess.run(
        [sys.executable, "-m", "abtest", *cmd], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and "not writable" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert blocker.read_text() == "not a folder"


def test_unknown_model_lists_the_known_ones(tmp_path):
    for cmd in (["train", "--model", "sas"], ["evaluate", "--models", "mixed,bogus"]):
        proc = subprocess.run(
            [sys.executable, "-m", "abtest", *cmd], cwd=ROOT, capture_output=True, text=True
        )
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in proc.stderr
        assert "known models: mixed, single, shared_bottom, mmoe, star, sass_base, sass" in lines[0]


def test_evaluate_writes_offline_table(tmp_path, write_yaml, monkeypatch, capsys):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    cfg = write_yaml(tree)
    out = tmp_path / "offline"
    args = ["evaluate", "--config", str(cfg), "--models", "popular,random,mixed", "--seeds", "2",
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "offline.json").read_text())
    assert set(result["models"]) == {"popular", "random", "mixed"}
    assert result["seeds"] == [tree["seed"], tree["seed"] + 1]
    home = result["models"]["mixed"]["home_feed"]
    for k in (20, 50, 100):
        for m in ("recall", "hr", "ndcg"):
            assert 0 <= home[f"{m}@{k}"] <= 1 and home[f"{m}@{k}_se"] is not None
    assert home["recall@20"] <= home["recall@50"] <= home["recall@100"]
    assert "| mixed |" in (out / "offline.md").read_text()
    # the checkpoints were cached: a second run trains nothing and gives the same numbers
    ckpts = sorted((tmp_path / "cache" / "models").rglob("*.pt"))
    assert len(ckpts) == 2
    mtimes = [p.stat().st_mtime_ns for p in ckpts]
    assert main([*args[:-3], "--out", str(tmp_path / "again"), "--quiet"]) == 0
    again = json.loads((tmp_path / "again" / "offline.json").read_text())
    assert again["models"] == result["models"]
    assert [p.stat().st_mtime_ns for p in ckpts] == mtimes
