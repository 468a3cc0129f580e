"""`python -m abtest generate` end to end on a tiny config."""

import json
import subprocess
import sys

import polars as pl

from abtest.cli import main
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
