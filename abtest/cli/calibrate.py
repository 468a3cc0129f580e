"""The ``calibrate`` command: fit a world from a log folder (:mod:`abtest.calibration`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from abtest.cli import argtypes
from abtest.cli.parents import config_from_args, config_parent, quiet_parent, seed_parent

WORLD_FILES = ("params.npz", "world.json", "diagnostics.json", "diagnostics.png")


def add_parsers(subparsers) -> None:
    """Register ``calibrate``."""
    p = subparsers.add_parser(
        "calibrate",
        parents=[
            config_parent(),
            seed_parent("seed of the fit (default: the config's)"),
            quiet_parent("no progress messages"),
        ],
        help="fit a world (click, watch-time, leave and arrival models) from a log folder",
        description="Fit a user-response world from the pre-period of a log folder (generated "
        "or imported) and write it to DIR as a verified artefact (params.npz, world.json) with "
        "its held-out diagnostics (diagnostics.json, diagnostics.png). `run --world DIR` "
        "then simulates the A/B on it.",
    )
    p.add_argument(
        "--logs",
        metavar="LOGDIR",
        help="log folder (default: the config's generated logs, generated if missing)",
    )
    p.add_argument("--out", metavar="DIR", help="world folder (default: .cache/worlds/<logs>)")
    p.add_argument("--dim", type=argtypes.count(256), default=16, help="factor dimension (16)")
    p.add_argument(
        "--epochs", type=argtypes.EPOCHS, default=30, help="click-model epochs (default 30)"
    )
    p.add_argument(
        "--correction",
        choices=("uniform", "ips", "none"),
        default="uniform",
        help="exposure-bias correction of the click model: item biases and scenario bases "
        "refitted on the uniform slice (default), 1/propensity weights, or none",
    )
    p.set_defaults(func=cmd_calibrate)


def ensure_fitted_world(logs: Path, *, seed: int, dim: int = 16, quiet: bool = False) -> Path:
    """The world fitted from `logs` with default settings, from the cache or fitted now
    (with its diagnostics) into ``.cache/worlds/<logs>-d<dim>-seed<seed>``."""
    from abtest.calibration import calibrate, world_cache_dir
    from abtest.report.calibration import write_diagnostics
    from abtest.report.outdir import replacing

    world = world_cache_dir(logs, dim, seed)
    if not (world / "world.json").is_file():
        if not quiet:
            print(f"fitting a world on the pre-period of {logs} -> {world}", file=sys.stderr)
        with replacing(world, WORLD_FILES) as stage:
            done = calibrate(logs, stage, seed=seed, dim=dim)
            write_diagnostics(stage, done.diagnostics)
    return world


def cmd_calibrate(args: argparse.Namespace) -> int:
    from abtest.calibration import calibrate, world_cache_dir
    from abtest.report.calibration import write_diagnostics
    from abtest.report.outdir import claim, replacing

    cfg = config_from_args(args)
    if args.logs:
        logs = Path(args.logs)
    else:
        from abtest.pipeline import ensure_logs

        logs = ensure_logs(cfg, progress=not args.quiet)
    out = claim(Path(args.out) if args.out else world_cache_dir(logs, args.dim, cfg.seed))
    if not args.quiet:
        print(f"fitting a world on the pre-period of {logs} ...", file=sys.stderr, flush=True)
    with replacing(out, WORLD_FILES) as stage:
        done = calibrate(
            logs, stage, seed=cfg.seed, dim=args.dim, epochs=args.epochs, correction=args.correction
        )
        write_diagnostics(stage, done.diagnostics)
    click = done.diagnostics.get("click", {}).get("held_out") or {}
    print(
        f"fitted in {done.seconds:.1f} s (peak RSS {done.peak_rss_mb:,.0f} MB): "
        f"{done.params.n_users:,} users, {done.params.n_items:,} items, "
        f"{done.params.n_scenarios} scenarios"
    )
    if click:
        print(
            f"held-out click log-loss {click['log_loss']:.4f} (constant CTR "
            f"{click['log_loss_constant']:.4f}) on {click['rows']:,} exposures"
        )
    print(f"wrote {out}/params.npz, world.json, diagnostics.json, diagnostics.png")
    return 0
