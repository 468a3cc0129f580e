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


def make_params(U: int = 200, I: int = 300, S: int = 2, seed: int = 0, *, d: int = 4):  # noqa: E741
    """A small hand-built :class:`~simulator.fitted_params.FittedParams`: S scenarios
    alternating feed / immersive (names ``s0_feed``, ``s1_immersive``, ...), slate sizes 6, 4,
    5, ..., pools of 60% of the I items, 3 content types, 2 profile features, click rates high
    enough for quick statistical tests. Random but deterministic in `seed`."""
    import numpy as np

    from simulator.fitted_params import FittedParams

    rng = np.random.default_rng([seed, 17])
    kinds = tuple("feed" if s % 2 == 0 else "immersive" for s in range(S))
    slate = np.array([(6, 4, 5)[s % 3] for s in range(S)], dtype=np.int64)
    kmax = int(slate.max())
    share = rng.uniform(0.5, 1.5, S)
    pools = tuple(np.sort(rng.choice(I, size=int(0.6 * I), replace=False)).astype(np.int64)
                  for _ in range(S))  # fmt: skip
    theta = np.full((S, kmax), np.nan)
    for s in range(S):
        theta[s, : slate[s]] = 1.0 / (1.0 + np.arange(slate[s])) ** rng.uniform(0.1, 0.5)
    ct_names = ("short", "long", "image")
    activity = rng.lognormal(0.0, 0.8, U)
    return FittedParams(
        scenario_names=tuple(f"s{s}_{k}" for s, k in enumerate(kinds)),
        scenario_kinds=kinds,
        slate_sizes=slate,
        traffic_share=share / share.sum(),
        pools=pools,
        user_factors=rng.normal(0.0, 0.8, (U, d)),
        scenario_transform=np.eye(d)[None] + 0.3 * rng.normal(size=(S, d, d)),
        item_factors=rng.normal(0.0, 0.8, (I, d)),
        item_bias=rng.normal(0.0, 0.5, I),
        scenario_base=rng.uniform(-1.5, -0.5, S),
        position_bias=theta,
        content_type=rng.integers(0, len(ct_names), I).astype(np.int64),
        content_type_names=ct_names,
        duration=rng.lognormal(np.log(30.0), 0.6, I),
        completion=np.array([[-0.5, 0.35, 4.0], [-1.0, 0.5, 3.0], [0.0, 0.2, 6.0]]),
        skip_seconds=2.0,
        leave=np.column_stack([rng.uniform(-0.5, 0.0, S), np.full(S, 3.0), np.full(S, 1.5)]),
        max_pages=8,
        think_seconds=rng.uniform(5.0, 10.0, S),
        activity=activity / activity.mean(),
        sessions_per_user_day=0.5,
        profile=np.column_stack([rng.integers(0, 6, U), rng.integers(0, 2, U)]).astype(np.int64),
        profile_names=("age", "gender"),
        category=rng.integers(0, 10, I).astype(np.int64),
    )


def synthetic_params(world):
    """A synthetic world's truth as :class:`~simulator.fitted_params.FittedParams`: the
    family contains it. Factors are blocks, one per scenario (dimension S x d): a user's
    block s is its scenario-s preference times ``affinity_scale``, an item's is its scenario-s
    view, and ``scenario_transform[s]`` keeps block s only; quality is the item bias; one
    completion row per content type; ``think_seconds = browse_seconds`` (both worlds browse
    for ``2 + that * Exp(1)`` seconds)."""
    import numpy as np

    from simulator.fitted_params import FittedParams

    cfg, users, items = world.config, world.users, world.items
    n_scen, _, d = users.preference.shape
    scale = cfg.world.affinity_scale
    user_factors = np.concatenate([scale * users.preference[s] for s in range(n_scen)], axis=1)
    item_factors = np.concatenate([items.views[s] for s in range(n_scen)], axis=1)
    transform = np.zeros((n_scen, n_scen * d, n_scen * d))
    for s in range(n_scen):
        transform[s, s * d : (s + 1) * d, s * d : (s + 1) * d] = np.eye(d)
    slate = np.array([sc.slate_size for sc in world.scenarios], dtype=np.int64)
    theta = np.full((n_scen, int(slate.max())), np.nan)
    for sc in world.scenarios:
        theta[sc.index, : sc.slate_size] = sc.position_bias
    comp = cfg.world.completion
    lv = cfg.leave
    n_ct = len(items.content_type_names)
    return FittedParams(
        scenario_names=cfg.scenario_names,
        scenario_kinds=tuple(sc.kind for sc in world.scenarios),
        slate_sizes=slate,
        traffic_share=np.array([sc.traffic_share for sc in world.scenarios]),
        pools=tuple(sc.pool.astype(np.int64) for sc in world.scenarios),
        user_factors=user_factors,
        scenario_transform=transform,
        item_factors=item_factors,
        item_bias=items.quality.copy(),
        scenario_base=np.array([sc.base_logit for sc in world.scenarios]),
        position_bias=theta,
        content_type=items.content_type.astype(np.int64),
        content_type_names=items.content_type_names,
        duration=items.duration.copy(),
        completion=np.tile([comp.intercept, comp.slope, comp.concentration], (n_ct, 1)),
        skip_seconds=cfg.world.skip_seconds,
        leave=np.tile([lv.intercept, lv.click_weight, lv.watch_weight], (n_scen, 1)),
        max_pages=lv.max_pages,
        think_seconds=np.full(n_scen, cfg.traffic.browse_seconds),
        activity=users.activity.copy(),
        sessions_per_user_day=cfg.traffic.sessions_per_user_day,
        profile=users.profile.astype(np.int64),
        profile_names=users.profile_names,
        category=items.category.astype(np.int64),
    )
