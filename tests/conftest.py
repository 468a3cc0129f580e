"""Shared fixtures: the default config and a tiny world that simulates in about a second."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from abtest.config import Config, config_from_dict

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_YAML = ROOT / "scenarios.yaml"


def default_tree() -> dict:
    """The default scenarios.yaml as a plain dict (a fresh copy each call)."""
    return copy.deepcopy(yaml.safe_load(DEFAULT_YAML.read_text()))


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
