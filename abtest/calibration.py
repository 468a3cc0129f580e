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

import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Config
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
