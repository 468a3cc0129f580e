"""Getting a model ready to serve: logs generated if missing, trained if missing, cached.

Checkpoints live under ``.cache/models/<data hash>/<name>-seed<N>-<training hash>.pt``: the
file name says what it was trained on, and loading verifies it (see
:mod:`models.checkpoint`). Floors (`popular`, `random`) need no training.

A cached artefact that fails verification (a log folder whose files or manifest changed, a
checkpoint whose bytes differ from its recorded sha256 or cannot be read) is treated as
missing: it is rebuilt, with one ``note:`` line on stderr saying why.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Config, config_from_dict
from core.errors import UserError
from core.staging import remove_stale
from models.checkpoint import CheckpointDamaged, load_checkpoint, save_checkpoint, training_hash
from models.data import IMPORTED, Dataset, load_dataset
from models.floors import FLOOR_RECALLERS
from models.recaller import ModelRecaller, Recaller
from models.train import TrainConfig, Trainer
from models.zoo import ModelConfig, check_model_spec, outside_kind
from simulator.generation import cache_dir, generate, log_dir_for
from simulator.logfolder import DATA_FILES, MANIFEST, problems, read_manifest


def _note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr)


def ensure_logs(config: Config, progress: bool = True) -> Path:
    """The config's generated log folder, verified; generated first if it is missing or
    fails verification (saying why, unless there was nothing there)."""
    out = log_dir_for(config)
    remove_stale(out)  # staging folders of generators that were killed
    bad = problems(out, fingerprint=out.name)
    if bad:
        if any((out / name).exists() for name in (*DATA_FILES, MANIFEST)):
            _note(f"cached logs in {out} failed verification, regenerating: {'; '.join(bad)}")
        generate(config, out, progress=progress)
    return out


def load_data(config: Config, progress: bool = True) -> Dataset:
    return load_dataset(ensure_logs(config, progress), config)


@dataclass(frozen=True)
class FolderData:
    """A named log folder's dataset, its scenarios' traffic shares and its kind."""

    data: Dataset
    traffic: dict[str, float]
    kind: str  # "synthetic" (written by `generate`) or "imported" (by `import`)


def load_folder_data(log_dir: str | Path, config: Config) -> FolderData:
    """The dataset of the log folder `log_dir` (``--logs``), generated or imported.

    A generated folder was shaped by the config in its manifest, which is used (with
    `config`'s seed); an imported folder brings its scenarios, pools and features, and
    `config` supplies the model settings. Verified before use, like every log folder.
    """
    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        raise UserError(f"log folder not found: {log_dir}")
    if not (log_dir / MANIFEST).is_file():
        raise UserError(
            f"{log_dir} is not a log folder (no {MANIFEST}): write one with `python -m abtest "
            "generate` or `python -m abtest import kuairand|obd|table SRC --out DIR`"
        )
    manifest = read_manifest(log_dir)
    kind = manifest.get("kind")
    if kind == "synthetic":
        try:
            folder_cfg = config_from_dict(manifest["config"], str(log_dir / MANIFEST))
        except (KeyError, TypeError) as exc:
            raise UserError(f"{log_dir / MANIFEST}: unreadable manifest ({exc})") from None
        folder_cfg = folder_cfg.with_seed(config.seed)
        traffic = {s.name: s.traffic_share for s in folder_cfg.scenarios}
        return FolderData(load_dataset(log_dir, folder_cfg), traffic, kind)
    if kind == IMPORTED:
        data = load_dataset(log_dir, config)
        shares = manifest.get("traffic_share")
        shares = shares if isinstance(shares, dict) else {}
        traffic = {n: float(shares.get(n, float("nan"))) for n in data.scenario_names}
        return FolderData(data, traffic, kind)
    raise UserError(
        f"{log_dir / MANIFEST}: a log folder of unknown kind {kind!r} (generate or import "
        "writes kind synthetic or imported)"
    )


@dataclass(frozen=True)
class Ready:
    recaller: Recaller
    checkpoint: Path | None
    trained_now: bool
    train_seconds: float
    history: list


def train_config(epochs: int | None = None) -> TrainConfig:
    """The default training config, with `epochs` fine-tuning epochs if given."""
    return TrainConfig() if epochs is None else TrainConfig(max_epochs=epochs)


def load_outside(name: str, data: Dataset, seed: int) -> Recaller:
    """An outside model (:mod:`models.outside`): the factory ``module:function`` called with
    the dataset's context, or an embeddings folder checked against the dataset's pools."""
    from models.outside import ModelContext, load_embeddings, load_factory

    context = ModelContext(
        scenario_names=data.scenario_names,
        items=data.items,
        spec=data.spec,
        seed=seed,
        dataset=data,
    )
    if outside_kind(name) == "factory":
        return load_factory(name, context)
    return load_embeddings(Path(name), context)


def checkpoint_path(data: Dataset, model_cfg: ModelConfig, train_cfg: TrainConfig, seed: int):
    th = training_hash(data, model_cfg, train_cfg, seed)
    return cache_dir() / "models" / data.data_hash / f"{model_cfg.label}-seed{seed}-{th}.pt", th


def get_model(
    name: str,
    data: Dataset,
    seed: int,
    *,
    train_cfg: TrainConfig | None = None,
    retrain: bool = False,
    progress: bool = True,
    variant: Mapping[str, Any] | None = None,
) -> Ready:
    """A ready :class:`Recaller` for `name`: loaded from its checkpoint, or trained and saved.

    `variant` overrides :class:`ModelConfig` fields (the SASS ablations); it is part of the
    training hash, so each variant has its own checkpoint.
    """
    check_model_spec(name)
    train_cfg = train_cfg or TrainConfig()
    if outside_kind(name) is not None:
        return Ready(load_outside(name, data, seed), None, False, 0.0, [])
    if name in FLOOR_RECALLERS:
        return Ready(FLOOR_RECALLERS[name].from_dataset(data, seed), None, False, 0.0, [])
    model_cfg = ModelConfig(name, data.spec, **(variant or {}))
    path, th = checkpoint_path(data, model_cfg, train_cfg, seed)
    remove_stale(path.parent)  # staging folders of writers that were killed
    if path.exists() and not retrain:
        try:
            model, extra = load_checkpoint(path, data, model_cfg, th)
        except CheckpointDamaged as exc:
            _note(f"cached checkpoint {path} failed verification, retraining: {exc.reason}")
        else:
            return Ready(
                ModelRecaller(name, model, data.items),
                path,
                False,
                extra.get("train_seconds", 0.0),
                extra.get("history", []),
            )
    t0 = time.perf_counter()
    result = Trainer(data, model_cfg, train_cfg, seed, progress=progress).run()
    seconds = time.perf_counter() - t0
    extra = {
        "train_seconds": seconds,
        "pretrain_seconds": result.pretrain_seconds,
        "history": result.history,
        "pretrain_losses": result.pretrain_losses,
    }
    save_checkpoint(path, result.model, model_cfg, th, extra)
    result.model.eval()
    return Ready(ModelRecaller(name, result.model, data.items), path, True, seconds, result.history)
