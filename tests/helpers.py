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


KUAIRAND_ZERO_COLUMNS = ("is_like", "is_follow", "is_comment", "is_forward", "is_hate",
                         "long_view", "profile_stay_time", "comment_stay_time",
                         "is_profile_enter")  # fmt: skip


def write_kuairand(generated, out):
    """Write the generated log folder `generated` as a KuaiRand folder `out`: every exposure
    one interaction row (``log_standard_synth.csv``; the uniform slice in
    ``log_random_synth.csv`` with ``is_rand`` 1), scenario s as tab s, user profiles in
    ``user_features_synth.csv`` and items in ``video_features_basic_synth.csv`` (category as
    the tag, content type as the video type). A KuaiRand-format log with a known truth."""
    from pathlib import Path

    generated, out = Path(generated), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    logs = pl.read_parquet(generated / "logs.parquet")
    items = pl.read_parquet(generated / "items.parquet")
    names = sorted(logs["scenario"].unique().to_list())
    ms = pl.col("timestamp").dt.epoch("ms")
    rows = logs.join(items.select("item_id", "duration"), on="item_id").select(
        user_id="user_id",
        video_id="item_id",
        date=pl.col("timestamp").dt.strftime("%Y%m%d").cast(pl.Int64),
        hourmin=pl.col("timestamp").dt.strftime("%H%M").cast(pl.Int64),
        time_ms=ms,
        is_click=pl.col("click").cast(pl.Int64),
        **{c: pl.lit(0) for c in KUAIRAND_ZERO_COLUMNS[:6]},
        play_time_ms=(pl.col("watch_time").fill_null(0) * 1000).round().cast(pl.Int64),
        duration_ms=(pl.col("duration") * 1000).round().cast(pl.Int64),
        **{c: pl.lit(0) for c in KUAIRAND_ZERO_COLUMNS[6:]},
        is_rand=(pl.col("policy") == "uniform").cast(pl.Int64),
        tab=pl.col("scenario").replace_strict({n: i for i, n in enumerate(names)}).cast(pl.Int64),
    )
    rows.filter(pl.col("is_rand") == 0).write_csv(out / "log_standard_synth.csv")
    rows.filter(pl.col("is_rand") == 1).write_csv(out / "log_random_synth.csv")
    pl.read_parquet(generated / "users.parquet").write_csv(out / "user_features_synth.csv")
    items.select(
        video_id="item_id",
        video_type=pl.col("content_type").str.to_uppercase(),
        tag=pl.col("category").cast(pl.String),
        video_duration=(pl.col("duration") * 1000).round().cast(pl.Int64),
    ).write_csv(out / "video_features_basic_synth.csv")
    return out, names
