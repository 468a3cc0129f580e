"""Getting a model ready: training configs, checkpoint paths, the floors without training,
and a damaged cache (logs, checkpoint) rebuilt, saying why, never used."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch

from abtest.pipeline import checkpoint_path, ensure_logs, get_model, train_config
from core import staging
from core.config import config_from_dict
from models.checkpoint import verify_checkpoint
from models.floors import PopularRecaller, RandomRecaller
from models.train import TrainConfig
from models.zoo import ModelConfig
from simulator.generation import log_dir_for
from simulator.logfolder import problems
from tests.conftest import tiny_tree
from tests.models.conftest import tiny_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory)


def test_epochs_override_gives_its_own_checkpoint(data):
    assert train_config() == TrainConfig()
    assert train_config(8) == TrainConfig(max_epochs=8)
    cfg = ModelConfig("sass", data.spec)
    default, _ = checkpoint_path(data, cfg, train_config(), 0)
    longer, _ = checkpoint_path(data, cfg, train_config(8), 0)
    assert default != longer and default.parent == longer.parent


def test_each_ablation_variant_gets_its_own_named_checkpoint(data):
    cfg = ModelConfig("sass", data.spec)
    default, _ = checkpoint_path(data, cfg, train_config(), 0)
    ablated, _ = checkpoint_path(data, ModelConfig("sass", data.spec, aux_loss=False),
                                 train_config(), 0)  # fmt: skip
    assert default.name.startswith("sass-seed0-")
    assert ablated.name.startswith("sass-no_aux_loss-seed0-") and ablated.parent == default.parent


def test_floors_are_ready_without_training(data):
    pop = get_model("popular", data, 5, progress=False)
    rnd = get_model("random", data, 5, progress=False)
    assert isinstance(pop.recaller, PopularRecaller) and isinstance(rnd.recaller, RandomRecaller)
    for ready in (pop, rnd):
        assert ready.checkpoint is None and not ready.trained_now
        assert ready.train_seconds == 0.0 and ready.history == []
    assert pop.recaller.seed == rnd.recaller.seed == 5


# ---------------------------------------------------------------- a damaged cache is rebuilt


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _flip_middle(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_ensure_logs_regenerates_a_damaged_cache_saying_why(cache, capsys):
    config = config_from_dict(tiny_tree(), "tiny")
    out = ensure_logs(config, progress=False)
    assert out == log_dir_for(config) and out.is_relative_to(cache)
    assert capsys.readouterr().err == ""  # a first generation says nothing
    good = pl.read_parquet(out / "logs.parquet")
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert ensure_logs(config, progress=False) == out  # a good cache is used as it is
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    _flip_middle(out / "logs.parquet")
    stale = out / f"{staging.PREFIX}{_dead_pid()}-1-abcd"
    stale.mkdir()
    assert ensure_logs(config, progress=False) == out
    note = re.escape(f"note: cached logs in {out} failed verification, regenerating: ")
    assert re.fullmatch(rf"{note}logs\.parquet: content changed \(sha256 \w+…, recorded \w+…\)\n",
                        capsys.readouterr().err)  # fmt: skip
    assert problems(out) == [] and not stale.exists()
    assert pl.read_parquet(out / "logs.parquet").equals(good)


def test_ensure_logs_regenerates_a_half_written_folder(cache, capsys):
    config = config_from_dict(tiny_tree(), "tiny")
    out = ensure_logs(config, progress=False)
    (out / "manifest.json").unlink()  # killed between the renames
    ensure_logs(config, progress=False)
    assert "regenerating: no manifest.json" in capsys.readouterr().err
    assert problems(out) == []


def test_a_damaged_cached_checkpoint_is_retrained_saying_why(data, cache, capsys):
    quick = TrainConfig(max_epochs=1)
    first = get_model("mixed", data, 0, train_cfg=quick, progress=False)
    assert first.trained_now and first.checkpoint.is_relative_to(cache)
    state = {k: v.clone() for k, v in first.recaller.model.state_dict().items()}
    assert not get_model("mixed", data, 0, train_cfg=quick, progress=False).trained_now
    capsys.readouterr()
    _flip_middle(first.checkpoint)
    again = get_model("mixed", data, 0, train_cfg=quick, progress=False)
    assert again.trained_now and again.checkpoint == first.checkpoint
    path = first.checkpoint
    note = re.escape(f"note: cached checkpoint {path} failed verification, retraining: ")
    assert re.fullmatch(rf"{note}content changed \(sha256 \w+…, recorded \w+…\)\n",
                        capsys.readouterr().err)  # fmt: skip
    verify_checkpoint(again.checkpoint)
    assert all(torch.equal(v, state[k]) for k, v in again.recaller.model.state_dict().items())
    assert not get_model("mixed", data, 0, train_cfg=quick, progress=False).trained_now
