"""Shared fixtures: the default config and a tiny world that simulates in about a second."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, settings

from core.config import Config, config_from_dict, load_config_tree

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
DEFAULT_YAML = ROOT / "scenarios.yaml"
OBD_SAMPLE = ROOT / ".cache" / "obd"  # `make obd-sample` (run by `make test`) puts it there

# hypothesis settings of the property tests: few examples, no deadline (2 slow cores)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture
def no_warnings():
    """A warning printed by a command breaks its one-line error contract: none allowed."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.fixture(scope="session")
def obd_sample() -> Path:
    """The Open Bandit Dataset sample folder (``<policy>/<campaign>/<campaign>.csv``); tests
    using it are marked ``realdata`` and skip when it has not been fetched."""
    if not (OBD_SAMPLE / "random" / "all" / "all.csv").is_file():
        pytest.skip(f"the Open Bandit Dataset sample is not in {OBD_SAMPLE}: run `make obd-sample`")
    return OBD_SAMPLE


def default_tree() -> dict:
    """The default scenarios.yaml as a plain dict (a fresh copy each call)."""
    return load_config_tree(DEFAULT_YAML)


def tiny_tree(**world) -> dict:
    tree = default_tree()
    tree["world"].update({"n_users": 300, "n_items": 500, "latent_dim": 8} | world)
    tree["periods"].update({"pre_days": 1, "experiment_days": 1})
    return tree


@pytest.fixture
def tiny_config() -> Config:
    return config_from_dict(tiny_tree(), "tiny")


@pytest.fixture
def write_yaml(tmp_path):
    def write(tree, name: str = "cfg.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(tree, sort_keys=False))
        return path

    return write


def logged_world(tmp_path_factory, tree: dict):
    """`tree`'s config, its generated log folder, its world and its logs."""
    from simulator.generation import generate
    from simulator.logs import read_logs
    from simulator.synthetic import SyntheticWorld

    cfg = config_from_dict(tree, "tiny")
    out = tmp_path_factory.mktemp("logs")
    generate(cfg, out, progress=False)
    logs = read_logs(out / "logs.parquet", scenarios=cfg.scenario_names)
    return cfg, out, SyntheticWorld(cfg), logs


AB_DAYS = 2


@pytest.fixture(scope="session")
def tiny_ab(tmp_path_factory):
    """The tiny world with 2 pre-period and AB_DAYS experiment days, generated once per
    session for the simulator tests: (config, world, logs)."""
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 2, "experiment_days": AB_DAYS})
    cfg, _, world, logs = logged_world(tmp_path_factory, tree)
    return cfg, world, logs
