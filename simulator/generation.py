"""Generate the world's logged traffic: the logging policy served by the engine, written to disk.

``generate(config, out_dir)`` simulates the pre-period and the experiment period under the
logging policy and writes ``logs.parquet``, ``users.parquet``, ``items.parquet`` and
``manifest.json`` (config fingerprint, seed, periods, engine figures, and the files' sha256:
see :mod:`simulator.logfolder`) into `out_dir`. The files are written in a staging folder
inside `out_dir` (removed however the job ends; one left by a killed job is removed by the
next) and moved in one by one, the manifest last: a folder with a manifest is complete.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from core import fileio
from core.config import Config
from core.errors import UserError
from core.staging import staging_dir
from simulator.engine import Engine, EngineStats
from simulator.logfolder import DATA_FILES, ITEMS, LOGS, MANIFEST, USERS, logs_fingerprint, seal
from simulator.logs import LogWriter, start_datetime, world_tables
from simulator.policies import LoggingPolicy
from simulator.synthetic import SyntheticWorld
from simulator.world import World


def cache_dir() -> Path:
    """Root of generated logs and checkpoints: ``$ABTEST_CACHE``, default ``.cache``.

    An empty ``ABTEST_CACHE`` is refused rather than read as the current folder, which
    would scatter ``logs/`` and ``models/`` caches into the source tree.
    """
    value = os.environ.get("ABTEST_CACHE")
    if value is None:
        return Path(".cache")
    if not value.strip():
        raise UserError(
            "ABTEST_CACHE is set but empty: unset it (the cache is then ./.cache) "
            "or set it to a folder"
        )
    return Path(value)


def log_dir_for(config: Config) -> Path:
    """Where a config's generated logs are cached, keyed by the sections that shape them.

    Serving and experiment settings do not change the pre-period logs, so editing them
    reuses the logs and the models trained on them.
    """
    return cache_dir() / "logs" / logs_fingerprint(config)


@dataclass(frozen=True)
class Generated:
    out_dir: Path
    summary: pl.DataFrame  # one row per scenario plus "all"
    stats: EngineStats
    wall_seconds: float
    peak_rss_mb: float


def summarise(logs: pl.LazyFrame | pl.DataFrame, scenarios: list[str]) -> pl.DataFrame:
    """Per-scenario traffic and outcome summary of a log, plus an ``all`` row."""
    lf = logs.lazy()

    def agg(frame: pl.LazyFrame) -> pl.LazyFrame:
        return frame.agg(
            sessions=pl.col("session_id").n_unique(),
            requests=pl.col("request_id").n_unique(),
            exposures=pl.len(),
            users=pl.col("user_id").n_unique(),
            clicks=pl.col("click").sum(),
            watch_time=pl.col("watch_time").sum(),
        )

    per = agg(lf.group_by("scenario")).collect()
    overall = agg(lf.select(pl.exclude("scenario")).group_by(pl.lit("all").alias("scenario")))
    frame = pl.concat([per, overall.collect()], how="vertical_relaxed")
    total_s = per["sessions"].sum()
    total_r = per["requests"].sum()
    order = {name: i for i, name in enumerate([*scenarios, "all"])}
    return frame.with_columns(
        session_share=pl.col("sessions") / total_s,
        request_share=pl.col("requests") / total_r,
        pages_per_session=pl.col("requests") / pl.col("sessions"),
        ctr=pl.col("clicks") / pl.col("exposures"),
        watch_time_per_user=pl.col("watch_time") / pl.col("users"),
    ).sort(pl.col("scenario").replace_strict(order, default=len(order)))


def format_summary(summary: pl.DataFrame, shares: dict[str, float]) -> str:
    head = (
        f"{'scenario':<18} {'share cfg':>9} {'sessions':>9} {'% sess':>7} {'requests':>9} "
        f"{'% req':>6} {'exposures':>10} {'users':>6} {'pages/s':>7} {'CTR':>7} {'watch/user':>10}"
    )
    lines = [head, "-" * len(head)]
    for r in summary.iter_rows(named=True):
        cfg_share = shares.get(r["scenario"])
        lines.append(
            f"{r['scenario']:<18} {'' if cfg_share is None else f'{cfg_share:.1%}':>9} "
            f"{r['sessions']:>9,} {r['session_share']:>7.1%} {r['requests']:>9,} "
            f"{r['request_share']:>6.1%} {r['exposures']:>10,} {r['users']:>6,} "
            f"{r['pages_per_session']:>7.2f} {r['ctr']:>7.2%} {r['watch_time_per_user']:>9.0f}s"
        )
    return "\n".join(lines)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def generate(config: Config, out_dir: str | Path, *, progress: bool = True) -> Generated:
    """Simulate the logging policy over both periods and write the log folder `out_dir`."""
    out = fileio.check_writable_dir(out_dir)
    t0 = time.perf_counter()
    world = SyntheticWorld(config)
    policy = LoggingPolicy(world, config.seed)
    with staging_dir(out) as stage:
        with LogWriter(world, [policy.name]) as writer:
            engine = Engine(world, [policy], [writer], seed=config.seed)
            stats = engine.run(0, config.periods.total_days, progress=progress, desc="logging")
            writer.finish(stage / LOGS)
        users, items = world_tables(world)
        users.write_parquet(stage / USERS)
        items.write_parquet(stage / ITEMS)
        summary = summarise(pl.scan_parquet(stage / LOGS), list(config.scenario_names))
        wall = time.perf_counter() - t0
        seal(stage, _manifest(config, world, stats, summary, wall))
        # The manifest marks a complete folder: drop the old one first, move it in last.
        (out / MANIFEST).unlink(missing_ok=True)
        for name in (*DATA_FILES, MANIFEST):
            os.replace(stage / name, out / name)
    return Generated(out, summary, stats, wall, peak_rss_mb())


def _manifest(config: Config, world: World, stats: EngineStats, summary: pl.DataFrame, wall):
    start = start_datetime(world)
    return {
        "kind": "synthetic",
        "config_fingerprint": config.fingerprint(),
        "logs_fingerprint": logs_fingerprint(config),
        "seed": config.seed,
        "config": config.to_dict(),
        "start": start.isoformat(),
        "pre_period_end": (start + dt.timedelta(days=config.periods.pre_days)).isoformat(),
        "end": (start + dt.timedelta(days=config.periods.total_days)).isoformat(),
        "engine": {
            "sessions": stats.sessions,
            "requests": stats.requests,
            "exposures": stats.exposures,
            "batches": stats.batches,
            "mean_batch": round(stats.requests / max(stats.batches, 1), 2),
            "simulate_seconds": round(stats.wall_seconds, 3),
            "requests_per_second": round(stats.requests_per_second, 1),
        },
        "wall_seconds": round(wall, 3),
        "summary": summary.to_dicts(),
    }
