"""Model checkpoints: state dict + model config + the hash of the data and training config.

Saved with ``torch.save`` atomically under the git-ignored cache; loaded with
``torch.load(weights_only=True)`` (no pickle of arbitrary objects). Loading checks the
model name, the architecture (model config) and the data/config hash, and refuses a
mismatch with a message saying which differs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from core import fileio
from core.errors import UserError
from models.data import Dataset
from models.towers import build_model
from models.train import TrainConfig
from models.zoo import ModelConfig

# Bumped whenever a model's parameters change shape or meaning under the same ModelConfig
# (2: SASS's output projection is shared across scenarios). It is part of the training
# hash, so checkpoints of an older format are retrained, never loaded.
FORMAT = 2


def training_hash(data: Dataset, model_cfg: ModelConfig, train_cfg: TrainConfig, seed: int) -> str:
    """What a checkpoint was trained on: data, architecture, training config and seed."""
    blob = json.dumps(
        {
            "format": FORMAT,
            "data": data.data_hash,
            "model": model_cfg.to_dict(),
            "train": train_cfg.to_dict(),
            "seed": seed,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    model_cfg: ModelConfig,
    train_hash: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    payload = {
        "format": FORMAT,
        "model_name": model_cfg.name,
        "model_config": json.dumps(model_cfg.to_dict()),
        "train_hash": train_hash,
        "extra": json.dumps(extra or {}),
        "state_dict": model.state_dict(),
    }
    return fileio.atomic_write(path, lambda p: torch.save(payload, p))


def load_checkpoint(
    path: str | Path, data: Dataset, expect_cfg: ModelConfig, expect_hash: str
) -> tuple[torch.nn.Module, dict]:
    """Load and verify a checkpoint; returns the model and its ``extra`` record."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {path}") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"{path} is not a readable checkpoint: {first[:200]}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise UserError(f"{path} is not a checkpoint written by this tool (format {FORMAT})")
    if payload.get("model_name") != expect_cfg.name:
        raise UserError(
            f"{path} holds model {payload.get('model_name')!r}, expected {expect_cfg.name!r}"
        )
    try:
        saved_cfg = ModelConfig.from_dict(json.loads(payload["model_config"]))
        extra = json.loads(payload["extra"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: damaged checkpoint record ({exc})") from None
    if saved_cfg != expect_cfg:
        raise UserError(
            f"{path}: architecture differs from the requested one "
            f"(saved {saved_cfg.to_dict()}, requested {expect_cfg.to_dict()})"
        )
    if payload.get("train_hash") != expect_hash:
        raise UserError(
            f"{path} was trained on other data or settings (hash {payload.get('train_hash')}, "
            f"expected {expect_hash}); retrain or point at the matching logs"
        )
    model = build_model(saved_cfg, data.items)
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise UserError(f"{path}: weights do not fit the architecture: {first[:200]}") from None
    model.eval()
    return model, extra
