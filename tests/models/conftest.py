"""Shared by the model tests: a tiny logged world's dataset and small model configs."""

from __future__ import annotations

import pytest
import torch

from models.data import Dataset, load_dataset
from models.train import _tensors, user_features
from models.zoo import ModelConfig
from tests.conftest import logged_world, tiny_tree


@pytest.fixture(scope="session")
def data(tmp_path_factory) -> Dataset:
    return tiny_dataset(tmp_path_factory)


def tiny_dataset(tmp_path_factory) -> Dataset:
    """The tiny world with 3 pre-period days (the last one held out) and 1 experiment day."""
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    cfg, out, _, _ = logged_world(tmp_path_factory, tree)
    return load_dataset(out, cfg, valid_days=1)


def small_config(name: str, data: Dataset) -> ModelConfig:
    """A narrow `name` model (D 16), quick to build and train."""
    return ModelConfig(name, data.spec, dim=16, emb_dim=8, hidden=16)


def feature_batch(data: Dataset, n: int = 64):
    """The user features (tensors) and clicked items of the first `n` training clicks."""
    rows = data.train.request[:n]
    return _tensors(user_features(data.requests, rows)), torch.as_tensor(data.train.item[:n])
