"""The ``generate`` command: simulate the world's logged traffic and write the log folder."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from abtest.cli.parents import (
    config_from_args,
    config_parent,
    out_parent,
    quiet_parent,
    seed_parent,
)
from core.fileio import check_writable_dir


def add_parsers(subparsers) -> None:
    """Register ``generate``."""
    gen = subparsers.add_parser(
        "generate",
        parents=[
            config_parent(),
            out_parent("output folder (default: .cache/logs/<config hash>)"),
            seed_parent("override the config's seed"),
            quiet_parent("no progress bar"),
        ],
        help="simulate the world's logged traffic and write logs, users and items",
        description="Simulate the logging policy over the pre-period and the experiment period "
        "and write DIR/logs.parquet, users.parquet, items.parquet and manifest.json.",
    )
    gen.set_defaults(func=cmd_generate)


def cmd_generate(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    from simulator.generation import format_summary, generate, log_dir_for

    out = check_writable_dir(Path(args.out) if args.out else log_dir_for(cfg))

    print(
        f"generating {cfg.periods.total_days} days of logged traffic "
        f"({cfg.periods.pre_days} pre-period + {cfg.periods.experiment_days} experiment) for "
        f"{cfg.world.n_users:,} users, {cfg.world.n_items:,} items, "
        f"{len(cfg.scenarios)} scenarios (seed {cfg.seed})",
        file=sys.stderr,
    )
    result = generate(cfg, out, progress=not args.quiet)
    shares = {s.name: s.traffic_share for s in cfg.scenarios}
    print(format_summary(result.summary, shares))
    st = result.stats
    print(
        f"\n{st.requests:,} requests ({st.exposures:,} exposures) in {st.wall_seconds:.1f} s "
        f"of simulation: {st.requests_per_second:,.0f} requests/s, mean batch "
        f"{st.requests / max(st.batches, 1):.1f}; total {result.wall_seconds:.1f} s, "
        f"peak memory {result.peak_rss_mb:,.0f} MB"
    )
    print(f"wrote {out}/logs.parquet, users.parquet, items.parquet, manifest.json")
    return 0
