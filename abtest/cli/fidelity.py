"""The ``fidelity`` command: a world fitted from the pre-period logs against the known truth
(:mod:`abtest.online.fidelity`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from abtest.cli import argtypes
from abtest.cli.parents import config_from_args, config_parent, out_parent, quiet_parent


def add_parsers(subparsers) -> None:
    """Register ``fidelity``."""
    p = subparsers.add_parser(
        "fidelity",
        parents=[
            config_parent(),
            out_parent("output folder (default: reports/<time>-fidelity)"),
            quiet_parent(),
        ],
        help="how far a world fitted from logs is from the synthetic truth (lift errors, "
        "sign agreement, Kendall tau)",
        description="Fit a world from the config's pre-period logs (or use --world), then for "
        "each model against the control compare the true lift per scenario and metric on the "
        "synthetic world with the fitted world's. Writes DIR/fidelity.json, fidelity.md and "
        "fidelity.png.",
    )
    p.add_argument(
        "--models",
        type=argtypes.model_names,
        default=["sass", "sass_base", "star", "mmoe", "single", "popular"],
        help="models compared with the control (default: sass,sass_base,star,mmoe,single,popular)",
    )
    p.add_argument("--control", type=argtypes.model_name, default="mixed", help="(mixed)")
    p.add_argument("--seeds", type=argtypes.SEEDS, default=1, help="experiment seeds (1)")
    p.add_argument("--days", type=argtypes.DAYS, help="experiment days (default: the config's)")
    p.add_argument("--world", metavar="W", help="a fitted world (default: fitted now, cached)")
    p.add_argument("--dim", type=argtypes.count(256), default=16, help="factor dimension (16)")
    p.set_defaults(func=cmd_fidelity)


def cmd_fidelity(args: argparse.Namespace) -> int:
    import datetime as dt

    from abtest.cli.calibrate import ensure_fitted_world
    from abtest.online.fidelity import run_fidelity
    from abtest.pipeline import ensure_logs
    from abtest.report.fidelity import FILES, markdown, write_fidelity
    from abtest.report.outdir import claim, replacing

    cfg = config_from_args(args)
    out = claim(
        Path(args.out)
        if args.out
        else Path("reports") / (dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-fidelity")
    )
    say = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    logs = ensure_logs(cfg, progress=not args.quiet)
    if args.world:
        world = Path(args.world)
    else:
        world = ensure_fitted_world(logs, seed=cfg.seed, dim=args.dim, quiet=args.quiet)
    seeds = tuple(cfg.seed + i for i in range(args.seeds))
    days = args.days or cfg.periods.experiment_days
    models = tuple(m for m in args.models if m != args.control)
    result = run_fidelity(
        cfg, models, args.control, seeds, world, days=days, progress=not args.quiet, say=say
    )
    with replacing(out, FILES) as stage:
        write_fidelity(stage, result)
    print(markdown(result).split("## Every pair")[0])
    print(f"wrote {out}/fidelity.json, fidelity.md, fidelity.png")
    return 0
