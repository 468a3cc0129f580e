"""Checkpoints: round trip, training hash, the recorded sha256, and every refusal."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from core.errors import UserError
from models.checkpoint import (
    CheckpointDamaged,
    load_checkpoint,
    record_sha256,
    save_checkpoint,
    sha256_path,
    training_hash,
    verify_checkpoint,
)
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
    record_sha256(junk)  # intact bytes that are no checkpoint
    with pytest.raises(CheckpointDamaged, match="not a readable checkpoint"):
        load_checkpoint(junk, data, cfg, th)
    torch.save({"some": torch.zeros(2)}, tmp_path / "other.pt")
    record_sha256(tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a checkpoint written by this tool") as info:
        load_checkpoint(tmp_path / "other.pt", data, cfg, th)
    assert not isinstance(info.value, CheckpointDamaged)  # intact, just not ours
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt", data, cfg, th)


def test_save_records_the_sha256_beside_the_checkpoint_in_sha256sum_format(data, tmp_path):
    cfg = small_config("mixed", data)
    path = save_checkpoint(tmp_path / "sub" / "m.pt", build_model(cfg, data.items), cfg, "0" * 16)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert sha256_path(path).read_text() == f"{digest}  m.pt\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt", "m.pt.sha256"]
    verify_checkpoint(path)


def _flip_weights(path: Path) -> None:
    """Flip bits inside the largest tensor record of the zip (its CRC is left stale)."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for k in range(0, 64, 8):
        raw[start + info.file_size // 2 + k] ^= 0x40
    path.write_bytes(bytes(raw))


def _write(name: str, content: str | bytes) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        target = sha256_path(path) if name == "record" else path
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)

    return apply


DAMAGE = [
    ("weights-bit-flips", _flip_weights, r"failed verification: content changed \(sha256 \w+…"),
    ("truncated", lambda p: p.write_bytes(p.read_bytes()[:500]), r"content changed"),
    ("record-missing", lambda p: sha256_path(p).unlink(),
     r"no recorded sha256 \(m\.pt\.sha256 is missing\)"),
    ("record-empty", _write("record", ""), r"m\.pt\.sha256 is not a sha256 record"),
    ("record-garbage", _write("record", "hello  m.pt\n"), r"is not a sha256 record"),
    ("record-binary", _write("record", b"\xff\xfe\x00"), r"m\.pt\.sha256 is unreadable"),
    ("record-of-other-file", _write("record", "0" * 64 + "  m.pt\n"), r"content changed"),
    ("record-is-a-folder", lambda p: (sha256_path(p).unlink(), sha256_path(p).mkdir()),
     r"m\.pt\.sha256 is unreadable"),
]  # fmt: skip


@pytest.mark.parametrize(("damage", "pattern"), [pytest.param(d, p, id=i) for i, d, p in DAMAGE])
def test_damaged_checkpoint_is_never_loaded(data, tmp_path, damage, pattern):
    cfg = small_config("mixed", data)
    path = save_checkpoint(tmp_path / "m.pt", build_model(cfg, data.items), cfg, "0" * 16)
    damage(path)
    with pytest.raises(CheckpointDamaged, match=pattern) as info:
        load_checkpoint(path, data, cfg, "0" * 16)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    assert info.value.reason in str(info.value)


def test_a_flipped_weight_loads_silently_without_the_record(data, tmp_path):
    """Why the record exists: torch.load does not check the zip's CRC."""
    cfg = small_config("mixed", data)
    model = build_model(cfg, data.items)
    path = save_checkpoint(tmp_path / "m.pt", model, cfg, "0" * 16)
    _flip_weights(path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    saved = payload["state_dict"]
    assert any(not torch.equal(v, saved[k]) for k, v in model.state_dict().items())
