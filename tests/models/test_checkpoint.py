"""Checkpoints: round trip, training hash, and every refusal."""

from __future__ import annotations

import pytest
import torch

from core.errors import UserError
from models.checkpoint import load_checkpoint, save_checkpoint, training_hash
from models.towers import build_model
from models.train import TrainConfig
from tests.models.conftest import feature_batch, small_config


def test_checkpoint_round_trip_and_refusals(data, tmp_path):
    cfg, tcfg = small_config("sass_base", data), TrainConfig()
    model = build_model(cfg, data.items)
    th = training_hash(data, cfg, tcfg, seed=1)
    path = save_checkpoint(tmp_path / "m.pt", model, cfg, th, {"train_seconds": 1.5})
    loaded, extra = load_checkpoint(path, data, cfg, th)
    assert extra == {"train_seconds": 1.5}
    f, items = feature_batch(data)
    model.eval()
    torch.testing.assert_close(loaded.user(f), model.user(f))
    torch.testing.assert_close(loaded.item(items, 2), model.item(items, 2))
    assert training_hash(data, cfg, tcfg, seed=2) != th

    with pytest.raises(UserError, match="trained on other data"):
        load_checkpoint(path, data, cfg, "0" * 16)
    with pytest.raises(UserError, match="architecture differs"):
        load_checkpoint(path, data, small_config("sass_base", data).__class__(
            "sass_base", data.spec, dim=8, emb_dim=8, hidden=16), th)  # fmt: skip
    with pytest.raises(UserError, match="holds model 'sass_base', expected 'star'"):
        load_checkpoint(path, data, small_config("star", data), th)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(junk, data, cfg, th)
    torch.save({"some": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a checkpoint written by this tool"):
        load_checkpoint(tmp_path / "other.pt", data, cfg, th)
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt", data, cfg, th)
