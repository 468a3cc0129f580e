"""The logged traffic an offline evaluation reads: a validated log with its evaluation window
(:class:`Logged`, :func:`load_logged`) and one scenario's evaluated exposures grouped into
requests (:class:`Slots`, :func:`scenario_slots`).

Synthetic logs (a ``synthetic`` manifest beside them) are evaluated on the experiment period
(timestamps >= the manifest's ``pre_period_end``), since the models trained on the
pre-period; an imported folder (``kind: imported``) likewise after its manifest's
``pre_period_end``, with its manifest's scenarios in their order (the models' scenario
codes); other logs without a world on the later half of the logged time (``REAL_SPLIT``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from core.config import Config, config_from_dict
from core.errors import UserError
from simulator.logfolder import read_manifest, verify_named
from simulator.logs import read_logs

REAL_SPLIT = 0.5  # logs without a world: evaluate on the later half of the logged time


@dataclass(frozen=True)
class Logged:
    """A validated log with its evaluation window, and the world when it is synthetic."""

    logs: pl.DataFrame  # every exposure (sorted by time)
    eval_start: dt.datetime
    scenarios: tuple[str, ...]
    config: Config | None  # the world's config (synthetic logs only)
    log_dir: Path
    imported: bool = False  # an imported log folder (python -m abtest import)

    @property
    def synthetic(self) -> bool:
        return self.config is not None

    @property
    def evaluated(self) -> pl.DataFrame:
        return self.logs.filter(pl.col("timestamp") >= self.eval_start)

    @property
    def earlier(self) -> pl.DataFrame:
        return self.logs.filter(pl.col("timestamp") < self.eval_start)


def _read_manifest(
    manifest_path: Path,
) -> tuple[Config | None, dt.datetime | None, tuple[str, ...] | None]:
    """The world's config (synthetic logs), the end of the pre-period (synthetic and imported
    folders) and the scenarios in their order (imported folders); None where not known."""
    if not manifest_path.exists():
        return None, None, None
    manifest = read_manifest(manifest_path.parent)
    kind = manifest.get("kind")
    if kind not in ("synthetic", "imported"):
        return None, None, None
    try:
        pre_end = dt.datetime.fromisoformat(manifest["pre_period_end"])
        if kind == "imported":
            names = manifest["scenarios"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ValueError(f"scenarios: a list of names expected, got {names!r}")
            return None, pre_end, tuple(names)
        config = config_from_dict(manifest["config"], str(manifest_path))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{manifest_path}: unreadable manifest ({exc})") from None
    return config, pre_end, None


def _check_users(path: Path, logs: pl.DataFrame, config: Config) -> None:
    """The world's users are 0..n-1: others have no ground truth."""
    n = config.world.n_users
    bad = ((logs["user_id"] < 0) | (logs["user_id"] >= n)).arg_true()
    if bad.len():
        i = int(bad[0])
        raise UserError(
            f"{path}: column 'user_id': user_id {logs['user_id'][i]} (row {i}, sorted by "
            f"time) is not a user of this world (0..{n - 1})"
        )


def load_logged(log_dir: str | Path, eval_start: dt.datetime | None = None) -> Logged:
    """Read a log folder (or parquet file); synthetic if a ``synthetic`` manifest is beside it."""
    path = Path(log_dir)
    folder = path if path.is_dir() else path.parent
    verify_named(path)  # before its manifest is trusted: a damaged folder is refused whole
    config, pre_end, imported = _read_manifest(folder / "manifest.json")
    scen = config.scenario_names if config is not None else imported
    logs = read_logs(path, scenarios=scen)
    if config is not None:
        _check_users(path, logs, config)
    if eval_start is None:
        if pre_end is not None:
            eval_start = pre_end
        else:
            t0, t1 = logs["timestamp"].min(), logs["timestamp"].max()
            eval_start = t0 + (t1 - t0) * REAL_SPLIT
    if config is not None:
        names = tuple(config.scenario_names)
    elif imported is not None:
        names = imported
    else:
        names = tuple(sorted(logs["scenario"].unique().to_list()))
    out = Logged(logs, eval_start, names, config, folder, imported=imported is not None)
    if out.evaluated.height == 0:
        raise UserError(f"{path}: no logged exposures at or after {eval_start.isoformat()}")
    return out


@dataclass(frozen=True)
class Slots:
    """One scenario's evaluated exposures (sorted by time) and their requests."""

    scenario: int
    exposures: pl.DataFrame  # + column "req" (row in `requests`)
    requests: pl.DataFrame  # request_id, user_id, timestamp (one row per request)
    k: int  # slate size (max logged position + 1)
    pool: np.ndarray


def scenario_slots(logged: Logged, s: int, pool: np.ndarray) -> Slots | None:
    """Scenario `s`'s evaluated exposures and requests (None when it has none)."""
    name = logged.scenarios[s]
    ex = logged.evaluated.filter(pl.col("scenario") == name)
    if ex.height == 0:
        return None
    req = (
        ex.group_by("request_id", maintain_order=True)
        .agg(pl.col("user_id", "timestamp").first())
        .with_row_index("req")
    )
    ex = ex.join(req.select("request_id", "req"), on="request_id", how="left")
    ex = ex.sort("timestamp", "request_id", "position")
    k = int(ex["position"].max()) + 1
    return Slots(s, ex, req.drop("req"), k, pool)
