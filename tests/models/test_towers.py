"""The torch models: shapes, normalisation, per-scenario item vectors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.data import FeatureSpec, ItemTable
from models.towers import TwoTower, build_model
from models.zoo import LEARNED, ModelConfig
from tests.models.conftest import feature_batch, small_config


@pytest.mark.parametrize("name", LEARNED)
def test_forward_shapes_and_normalisation(data, name):
    torch.manual_seed(0)
    model = build_model(small_config(name, data), data.items)
    f, items = feature_batch(data)
    u = model.user(f)
    assert u.shape == (64, 16)
    torch.testing.assert_close(u.norm(dim=1), torch.ones(64))
    for s in range(data.spec.n_scenarios):
        v = model.item(items, s)
        assert v.shape == (64, 16)
        torch.testing.assert_close(v.norm(dim=1), torch.ones(64))
    per, _ = model.items_in(items, [0, 2])
    assert per.shape == (2, 64, 16)
    torch.testing.assert_close(per[1], model.item(items, 2))
    # a row's scenario tensor and the int form agree
    scen = torch.full((64,), 3)
    torch.testing.assert_close(model.item(items, scen), model.item(items, 3))
    # scenario-aware models represent an item differently per scenario; mixed does not
    differs = not torch.allclose(model.item(items, 0), model.item(items, 1))
    assert differs == (name != "mixed")


def test_sass_items_in_every_scenario_matches_one_scenario_at_a_time():
    """The batched all-scenario item path equals running the body once per scenario."""
    rng = np.random.default_rng(0)
    spec = FeatureSpec(100, (3, 4), 50, 5, 3, 8, 5, 10)
    items = ItemTable(
        rng.integers(0, 5, 50),
        rng.integers(0, 3, 50),
        rng.integers(0, 8, 50),
        tuple(np.arange(50) for _ in range(5)),
    )
    torch.manual_seed(0)
    model = TwoTower(ModelConfig("sass", spec), items)
    ids = torch.arange(50)
    fast, glob = model.items_in(ids, [0, 2, 4])
    x = model.item_encoder(ids)
    for j, s in enumerate([0, 2, 4]):
        out, g = model.item_body(x, s)
        torch.testing.assert_close(fast[j], F.normalize(out, dim=-1))
        torch.testing.assert_close(glob, F.normalize(g, dim=-1))


def test_floors_are_not_torch_models(data):
    with pytest.raises(ValueError, match="popular is a floor"):
        build_model(small_config("popular", data), data.items)
