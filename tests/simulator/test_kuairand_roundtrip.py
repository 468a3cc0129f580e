"""A synthetic world's logs written in KuaiRand's format and imported back: what the
importer reads of a real KuaiRand folder matches the known logs."""

from __future__ import annotations

import json

import polars as pl

from abtest.cli.main import main
from tests.conftest import logged_world, tiny_tree
from tests.helpers import write_kuairand


def test_a_synthetic_world_round_trips_through_kuairand_format(tmp_path_factory, capsys):
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 2, "experiment_days": 1})
    _, generated, _, logs = logged_world(tmp_path_factory, tree)
    src, names = write_kuairand(generated, tmp_path_factory.mktemp("kuairand"))
    out = tmp_path_factory.mktemp("imported") / "logs"
    assert main(["import", "kuairand", str(src), "--out", str(out), "--quiet"]) == 0
    imported = pl.read_parquet(out / "logs.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    assert imported.height == logs.height  # every exposure one interaction
    by_tab = {f"tab{i}": n for i, n in enumerate(names)}
    assert set(manifest["scenarios"]) == set(by_tab)  # 5 tabs: all of them
    clicks = logs.group_by("scenario").agg(pl.col("click").sum())
    got = imported.group_by("scenario").agg(pl.col("click").sum())
    assert {by_tab[t]: c for t, c in got.iter_rows()} == dict(clicks.iter_rows())
    assert (imported["policy"] == "uniform").sum() == (logs["policy"] == "uniform").sum()
    # dense ids map back to the world's ids through source_id
    users = pl.read_parquet(out / "users.parquet")
    items = pl.read_parquet(out / "items.parquet")
    back = imported.join(users.select("user_id", "source_id"), on="user_id").join(
        items.select("item_id", pl.col("source_id").alias("item_source")), on="item_id"
    )
    pairs = back.select(pl.col("source_id").cast(pl.Int64), pl.col("item_source").cast(pl.Int64))
    assert sorted(pairs.rows()) == sorted(logs.select("user_id", "item_id").rows())
    assert users.height == logs["user_id"].n_unique() and "age" in users.columns
    assert {"category", "content_type", "duration"} <= set(items.columns)
    ours = pl.read_parquet(generated / "items.parquet").select("item_id", "duration")
    dur = items.select(pl.col("source_id").cast(pl.Int64).alias("item_id"), "duration")
    joined = dur.join(ours, on="item_id", suffix="_world")
    assert ((joined["duration"] - joined["duration_world"]).abs() < 1e-3).all()
