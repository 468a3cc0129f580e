"""Small simulation helpers shared by the tests."""

from __future__ import annotations

import polars as pl

from core.config import Config
from simulator.engine import Engine
from simulator.logs import LogWriter
from simulator.synthetic import SyntheticWorld
from simulator.world import World


def simulate(config: Config, make_policy, *, days: int | None = None, window: float | None = None,
             world: World | None = None) -> pl.DataFrame:  # fmt: skip
    """Serve `days` (default: both periods) with one policy; the log as a sorted frame."""
    world = world or SyntheticWorld(config)
    policy = make_policy(world, config.seed)
    days = config.periods.total_days if days is None else days
    with LogWriter(world, [policy.name]) as writer:
        Engine(world, [policy], [writer], seed=config.seed, batch_window=window).run(
            0, days, progress=False
        )
        return writer.lazy().sort("timestamp", "request_id", "position").collect()


def as_imported(generated, out, *, scenarios=None, item_features=("category",),
                pre_fraction: float = 0.75):  # fmt: skip
    """Rewrite the generated log folder `generated` into `out` in the imported-folder format
    (``python -m abtest import``'s): ``kind: imported``, scenarios busiest first (or
    `scenarios`), ``source_id`` columns, only `item_features` kept, the pre-period ending at
    `pre_fraction` of the logged time. A stand-in for the importer in the model tests."""
    import datetime as dt
    import shutil
    from pathlib import Path

    from simulator.logfolder import read_manifest, seal

    generated, out = Path(generated), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(generated / "logs.parquet", out / "logs.parquet")
    logs = pl.read_parquet(out / "logs.parquet")
    users = pl.read_parquet(generated / "users.parquet")
    users = users.select(
        "user_id", pl.format("u{}", "user_id").alias("source_id"), *users.columns[1:]
    )
    users.write_parquet(out / "users.parquet")
    items = pl.read_parquet(generated / "items.parquet")
    items = items.select("item_id", pl.format("i{}", "item_id").alias("source_id"), *item_features)
    items.write_parquet(out / "items.parquet")
    per = (
        logs.group_by("scenario")
        .agg(pl.col("request_id").n_unique())
        .sort("request_id", "scenario", descending=[True, False])
    )
    names = list(scenarios) if scenarios is not None else per["scenario"].to_list()
    t0, t1 = logs["timestamp"].min(), logs["timestamp"].max()
    total = per["request_id"].sum()
    seal(
        out,
        {
            "kind": "imported",
            "format": "table",
            "source": str(generated),
            "scenarios": names,
            "start": t0.isoformat(),
            "end": t1.isoformat(),
            "pre_period_end": (t0 + (t1 - t0) * pre_fraction).isoformat(),
            "traffic_share": {r[0]: r[1] / total for r in per.iter_rows()},
            "rows": {"logs": logs.height, "users": users.height, "items": items.height},
            "imported_from_manifest": read_manifest(generated).get("kind"),
            "converted": dt.datetime.now(dt.timezone.utc).isoformat(),
        },
    )
    return out
