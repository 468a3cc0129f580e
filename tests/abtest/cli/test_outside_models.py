"""Outside models through the commands: an embeddings folder exported from `mixed` serves
exactly as `mixed` does, and a factory model runs, evaluates and replays."""

from __future__ import annotations

import json

import numpy as np
import pytest

from abtest.cli.main import main
from tests.conftest import tiny_tree

FACTORY = "tests.models.outside_factories:make_good"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny world whose models read no click history (history_length 0): `mixed`'s user
    vector is then a function of the user and the scenario, which an embeddings folder holds."""
    import yaml

    root = tmp_path_factory.mktemp("outside")
    tree = tiny_tree(history_length=0)
    tree["periods"].update({"pre_days": 3, "experiment_days": 2})
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tree))
    return root, cfg


@pytest.fixture
def cache(world, monkeypatch):
    monkeypatch.setenv("ABTEST_CACHE", str(world[0] / "cache"))


def _export_mixed(cfg_path, folder):
    from abtest.pipeline import get_model, load_data
    from core.config import load_config
    from models.outside import export_embeddings, user_rows
    from simulator.synthetic import SyntheticWorld

    cfg = load_config(cfg_path)
    data = load_data(cfg, progress=False)
    recaller = get_model("mixed", data, cfg.seed, progress=False).recaller
    world = SyntheticWorld(cfg)
    users = user_rows(np.arange(world.users.n), world.users.profile, range(len(cfg.scenarios)), 0)
    return export_embeddings(recaller, folder, users, cfg.scenario_names)


def _run(cfg, treatment, out):
    args = ["run", "--treatment", treatment, "--control", "popular", "--config", str(cfg),
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow  # two tiny `run`s (about 40 s); CI runs the slow tests
def test_an_exported_embeddings_folder_runs_exactly_as_its_model(world, cache, capsys):
    root, cfg = world
    folder = _export_mixed(cfg, root / "mixed_vectors")
    by_model = _run(cfg, "mixed", root / "run_mixed")
    by_folder = _run(cfg, str(folder), root / "run_folder")
    assert by_folder["treatment"] == str(folder)
    assert by_folder["scenarios"] == by_model["scenarios"]  # result for result
    assert by_folder["overall"] == by_model["overall"]
    assert by_folder["srm"] == by_model["srm"]


@pytest.mark.slow
def test_a_factory_model_runs_and_evaluates(world, cache, capsys):
    root, cfg = world
    res = _run(cfg, FACTORY, root / "run_factory")
    assert res["treatment"] == FACTORY
    assert res["checkpoints"][FACTORY]["path"] is None
    for entry in res["scenarios"].values():
        assert entry["metrics"]["ctr"]["true_lift"] is not None
    out = root / "offline"
    args = ["evaluate", "--config", str(cfg), "--models", f"popular,{FACTORY}", "--out",
            str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "offline.json").read_text())
    assert set(result["models"]) == {"popular", FACTORY}


def test_default_report_folder_of_an_outside_model_is_a_plain_name():
    from abtest.online.runner import default_out

    name = default_out("tests.models.x:make", "../vectors/").name
    assert name.endswith("-tests.models.x_make-vs-vectors")
