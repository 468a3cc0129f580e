"""Model checkpoints: state dict + model config + the hash of the data and training config.

Saved with ``torch.save`` under the git-ignored cache, with the file's sha256 beside it in
``<name>.pt.sha256`` (the format of ``sha256sum``): both are written in a staging folder and
moved in, the checkpoint first, so a reader never takes a half-written or stale pair for a
good one. Loading verifies the sha256 before ``torch.load(weights_only=True)`` (which does
not check the zip's CRC, so a flipped bit in the weights would load silently); a failed
check or an unreadable file raises :class:`CheckpointDamaged` (a cache retrains on it).
Then it checks the model name, the architecture (model config) and the data/config hash,
and refuses a mismatch with a message saying which differs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import torch

from core import fileio
from core.digest import file_sha256
from core.errors import UserError
from core.staging import staging_dir
from models.data import Dataset
from models.towers import build_model
from models.train import TrainConfig
from models.zoo import ModelConfig

# Bumped whenever a model's parameters change shape or meaning under the same ModelConfig
# (2: SASS's output projection is shared across scenarios). It is part of the training
# hash, so checkpoints of an older format are retrained, never loaded.
FORMAT = 2
_SHA256 = re.compile(r"[0-9a-f]{64}")


class CheckpointDamaged(UserError):
    """A checkpoint whose bytes fail verification or cannot be read (`reason` says how)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


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


def sha256_path(path: str | Path) -> Path:
    """Where a checkpoint's recorded sha256 lives: ``<name>.sha256`` beside it."""
    path = Path(path)
    return path.with_name(f"{path.name}.sha256")


def _sha256_record(path: Path) -> str:
    return f"{file_sha256(path)}  {path.name}\n"


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    model_cfg: ModelConfig,
    train_hash: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint and its sha256 record (a staging folder, then two renames)."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "model_name": model_cfg.name,
        "model_config": json.dumps(model_cfg.to_dict()),
        "train_hash": train_hash,
        "extra": json.dumps(extra or {}),
        "state_dict": model.state_dict(),
    }
    record = sha256_path(path)
    with staging_dir(path.parent) as stage:
        torch.save(payload, stage / path.name)
        (stage / record.name).write_text(_sha256_record(stage / path.name), encoding="utf-8")
        os.replace(stage / path.name, path)  # a stale or missing record fails verification
        os.replace(stage / record.name, record)
    return path


def record_sha256(path: str | Path) -> Path:
    """Record an existing file's sha256 beside it (what :func:`save_checkpoint` does; for a
    checkpoint written by other means)."""
    return fileio.write_text(sha256_path(path), _sha256_record(Path(path)))


def _damaged(path: Path, reason: str) -> CheckpointDamaged:
    return CheckpointDamaged(f"{path} failed verification: {reason}", reason)


def _recorded_sha256(path: Path) -> str:
    record = sha256_path(path)
    try:
        fields = record.read_text(encoding="utf-8").split()
    except FileNotFoundError:
        raise _damaged(path, f"no recorded sha256 ({record.name} is missing)") from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise _damaged(path, f"{record.name} is unreadable ({exc})") from None
    if not fields or not _SHA256.fullmatch(fields[0]):
        raise _damaged(path, f"{record.name} is not a sha256 record")
    return fields[0]


def verify_checkpoint(path: str | Path) -> None:
    """Compare the file's sha256 with its record; :class:`CheckpointDamaged` if they differ
    or there is no readable record."""
    path = Path(path)
    want = _recorded_sha256(path)
    got = file_sha256(path)
    if got != want:
        raise _damaged(path, f"content changed (sha256 {got[:12]}…, recorded {want[:12]}…)")


def load_checkpoint(
    path: str | Path, data: Dataset, expect_cfg: ModelConfig, expect_hash: str
) -> tuple[torch.nn.Module, dict]:
    """Load and verify a checkpoint; returns the model and its ``extra`` record.

    Raises :class:`CheckpointDamaged` when its bytes fail verification or cannot be read,
    :class:`UserError` when it is intact but not the requested model."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    verify_checkpoint(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"checkpoint not found: {path}") from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        reason = f"not a readable checkpoint: {first[:200]}"
        raise CheckpointDamaged(f"{path} is {reason}", reason) from None
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
