"""The ``calibrate`` job: a world fitted from a log folder, saved as a verified artefact.

:func:`calibrate` fits the fitted family (:mod:`simulator.response_fit`: click model with
position bias and exposure correction, watch time, immersive skips, leave model, arrivals)
on the pre-period of a generated or imported log folder and writes it with
:func:`simulator.fitted_world.save_world` (``params.npz`` + ``world.json``, sha256-verified,
no pickle). The artefact records the sha256 of the logs' sealed manifest, so a run refuses
a world fitted from other logs. :func:`load_fitted_world` is what ``run --world`` calls.

May import core and simulator (the lowest layer of the abtest contract, beside
``serving`` and ``pipeline``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Config, config_from_dict
from core.errors import UserError
from simulator.fitted_params import FittedParams
from simulator.logfolder import SELF, read_manifest, verify_named


@dataclass(frozen=True)
class Calibrated:
    """A fitted world written to `folder`, its held-out diagnostics and what it cost."""

    folder: Path
    params: FittedParams
    diagnostics: dict[str, Any]
    seconds: float
    peak_rss_mb: float


def logs_sha256(log_dir: str | Path) -> str:
    """The digest of a sealed log folder's manifest (it covers every data file's sha256)."""
    log_dir = Path(log_dir)
    digest = read_manifest(log_dir).get(SELF)
    if not isinstance(digest, str):
        raise UserError(
            f"{log_dir / 'manifest.json'}: not a sealed log folder (no {SELF}); regenerate or "
            "re-import it"
        )
    return digest


def calibrate(
    log_dir: str | Path,
    out: str | Path,
    *,
    seed: int,
    dim: int = 16,
    epochs: int = 30,
    correction: str = "uniform",
    threads: int = 1,
    kinds: dict[str, str] | None = None,
) -> Calibrated:
    """Fit a world on `log_dir`'s pre-period and save it into `out` (see the module doc)."""
    from simulator.fitted_world import save_world
    from simulator.response_fit import fit_world

    log_dir = Path(log_dir)
    verify_named(log_dir)  # a damaged folder is refused before anything is fitted
    digest = logs_sha256(log_dir)
    t0 = time.perf_counter()
    params, diag = fit_world(
        log_dir,
        d=dim,
        seed=seed,
        epochs=epochs,
        correction=correction,
        threads=threads,
        kinds=kinds,
    )
    seconds = time.perf_counter() - t0
    meta = {
        "logs": str(log_dir.resolve()),
        "logs_sha256": digest,
        "settings": diag.get("settings", {}),
        "pre_period_end": diag.get("pre_period_end"),
        "fit_seconds": round(seconds, 2),
    }
    save_world(out, params, meta)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return Calibrated(Path(out), params, diag, seconds, peak)


def load_fitted_world(world_dir: str | Path, template: Config, log_dir: str | Path | None):
    """The fitted world in `world_dir` serving under `template` (the run's config); refused
    when it was fitted from logs other than `log_dir`'s (when given)."""
    from simulator.fitted_world import FittedWorld, load_world

    world_dir = Path(world_dir)
    if not world_dir.is_dir():
        raise UserError(f"fitted world not found: {world_dir} (write one with `calibrate`)")
    expect = {"logs_sha256": logs_sha256(log_dir)} if log_dir is not None else None
    params, meta = load_world(world_dir, expect)
    names = tuple(template.scenario_names)
    if params.scenario_names != names:
        raise UserError(
            f"fitted world {world_dir}: its scenarios ({', '.join(params.scenario_names)}) are "
            f"not the config's ({', '.join(names)})"
        )
    return FittedWorld(params, template), meta


def world_cache_dir(log_dir: str | Path, dim: int, seed: int) -> Path:
    """Where the world fitted from `log_dir` with these settings is cached."""
    from simulator.generation import cache_dir

    return cache_dir() / "worlds" / f"{logs_sha256(log_dir)[:16]}-d{dim}-seed{seed}"


def folder_kind(log_dir: str | Path) -> str:
    """``synthetic`` (written by ``generate``) or ``imported`` (written by ``import``)."""
    log_dir = Path(log_dir)
    if not (log_dir / "manifest.json").is_file():
        raise UserError(
            f"{log_dir} is not a log folder (no manifest.json): write one with `python -m abtest "
            "generate` or `python -m abtest import kuairand|obd|table SRC --out DIR`"
        )
    kind = read_manifest(log_dir).get("kind")
    if kind not in ("synthetic", "imported"):
        raise UserError(f"{log_dir / 'manifest.json'}: a log folder of unknown kind {kind!r}")
    return kind


def config_for_logs(log_dir: str | Path, template: Config, world_dir: str | Path | None) -> Config:
    """The config a run on the log folder `log_dir` simulates under.

    A generated folder: the config in its manifest (with `template`'s seed). An imported
    folder: the fitted world's sizes, scenarios and traffic (``fitted_config``) over
    `template`'s serving and experiment settings, with the periods placed on the logs'
    calendar: the pre-period runs from the first logged day to the last midnight at or
    before the folder's ``pre_period_end`` (so no log row after ``pre_period_end`` feeds the
    histories or the CUPED covariates), and the experiment days follow it.
    """
    from simulator.fitted_world import fitted_config, load_world

    log_dir = Path(log_dir)
    manifest = read_manifest(log_dir)
    if folder_kind(log_dir) == "synthetic":
        try:
            cfg = config_from_dict(manifest["config"], str(log_dir / "manifest.json"))
        except (KeyError, TypeError) as exc:
            raise UserError(f"{log_dir / 'manifest.json'}: unreadable manifest ({exc})") from None
        return cfg.with_seed(template.seed)
    if world_dir is None:
        raise UserError(f"{log_dir}: an imported log folder needs a fitted world")
    where = log_dir / "manifest.json"
    try:
        start = dt.datetime.fromisoformat(str(manifest["start"]))
        pre_end = dt.datetime.fromisoformat(str(manifest["pre_period_end"]))
    except (KeyError, ValueError) as exc:
        raise UserError(f"{where}: no readable start / pre_period_end ({exc})") from None
    day0 = start.date()
    pre_days = (pre_end.date() - day0).days
    if pre_days < 1:
        raise UserError(
            f"{where}: the pre-period ({start.isoformat()} to {pre_end.isoformat()}) holds no "
            "whole day before the experiment (re-import with a larger --pre-fraction)"
        )
    periods = dataclasses.replace(template.periods, start_date=day0.isoformat(), pre_days=pre_days)
    params, _ = load_world(world_dir, {"logs_sha256": logs_sha256(log_dir)})
    return fitted_config(params, dataclasses.replace(template, periods=periods))
