"""`load_dataset` on an imported log folder: scenarios, pools, features and the time split
come from the folder, only the history length from the config."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import polars as pl
import pytest

from core.config import config_from_dict
from core.errors import UserError
from models.data import VALID_FRACTION, load_dataset
from simulator.logfolder import seal
from tests.conftest import logged_world, tiny_tree
from tests.helpers import as_imported


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    cfg, out, _, logs = logged_world(tmp_path_factory, tree)
    return cfg, out, logs


@pytest.fixture(scope="module")
def imported(generated, tmp_path_factory):
    _, out, _ = generated
    return as_imported(out, tmp_path_factory.mktemp("imported"))


def test_scenarios_pools_and_features_come_from_the_folder(generated, imported):
    _, _, logs = generated
    other = tiny_tree()
    other["world"]["n_users"] = 11  # the config's world does not shape an imported folder
    data = load_dataset(imported, config_from_dict(other, "other"))
    manifest = json.loads((imported / "manifest.json").read_text())
    assert data.scenario_names == tuple(manifest["scenarios"])
    for s, name in enumerate(data.scenario_names):
        logged = np.sort(logs.filter(pl.col("scenario") == name)["item_id"].unique().to_numpy())
        assert np.array_equal(data.items.pools[s], logged)
    items = pl.read_parquet(imported / "items.parquet")
    assert data.spec.n_categories == items["category"].max() + 1
    assert data.spec.n_content_types == 1 and set(data.items.content_type) == {0}
    assert set(data.items.duration_bucket) == {0}  # no duration: one constant code
    users = pl.read_parquet(imported / "users.parquet")
    assert len(data.spec.profile_cards) == users.width - 2  # not user_id, source_id
    assert data.spec.history_length == other["world"]["history_length"]


def test_time_split_is_the_folders_own(imported):
    data = load_dataset(imported, config_from_dict(tiny_tree(), "t"))
    manifest = json.loads((imported / "manifest.json").read_text())
    start = dt.datetime.fromisoformat(manifest["start"])
    pre_end = dt.datetime.fromisoformat(manifest["pre_period_end"])
    cut = pre_end - (pre_end - start) * VALID_FRACTION
    logs = pl.read_parquet(imported / "logs.parquet")
    pre = logs.filter(pl.col("timestamp") < pre_end)
    assert len(data.train) == pre.filter(pl.col("timestamp") < cut, pl.col("click") == 1).height
    assert len(data.valid) == pre.filter(pl.col("timestamp") >= cut, pl.col("click") == 1).height
    assert len(data.pretrain) == pre.filter(pl.col("timestamp") < cut).height


def test_data_hash_depends_on_tables_and_history_length_only(imported, tmp_path):
    tree = tiny_tree()
    a = load_dataset(imported, config_from_dict(tree, "t")).data_hash
    tree["world"]["n_users"] = 50
    assert load_dataset(imported, config_from_dict(tree, "t")).data_hash == a
    tree["world"]["history_length"] = 5
    assert load_dataset(imported, config_from_dict(tree, "t")).data_hash != a


@pytest.mark.parametrize(
    "scenarios, match",
    [
        ([], "scenarios: a list of distinct names"),
        (["home_feed", "home_feed"], "scenarios: a list of distinct names"),
        ("home_feed", "scenarios: a list of distinct names"),
        (["home_feed"], "has scenarios not in the config"),
    ],
)
def test_a_bad_scenario_list_is_refused(generated, tmp_path, scenarios, match):
    _, out, _ = generated
    folder = as_imported(out, tmp_path / "imp", scenarios=scenarios)
    with pytest.raises(UserError, match=match):
        load_dataset(folder, config_from_dict(tiny_tree(), "t"))


def test_a_folder_without_validation_clicks_is_refused(generated, tmp_path):
    _, out, _ = generated
    folder = as_imported(out, tmp_path / "imp")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["pre_period_end"] = manifest["start"]
    seal(folder, manifest)
    with pytest.raises(UserError, match="no logged traffic before"):
        load_dataset(folder, config_from_dict(tiny_tree(), "t"))
