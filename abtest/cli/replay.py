"""The ``replay`` command: off-policy estimates of a model — or of a policy given as a table of
action probabilities (``--policy-table``) — on logged traffic."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from abtest.cli import argtypes
from abtest.cli.parents import config_parent, out_parent, quiet_parent
from abtest.offline.estimators import ESTIMATORS
from abtest.offline.render import OUTPUT_FILES, format_markdown, write_outputs
from abtest.offline.run import run_offline
from abtest.report.outdir import claim, replacing
from core.config import load_config
from core.errors import UserError


def add_parsers(subparsers) -> None:
    """Register ``replay``."""
    p = subparsers.add_parser(
        "replay",
        parents=[
            config_parent(),
            out_parent("output folder (default: reports/<time>-replay)"),
            quiet_parent(),
        ],
        help="off-policy estimates (replay, IPS, SNIPS, DR) of a model on logged traffic",
        description="Estimate a model's (or a policy table's) per-exposure CTR and watch time "
        "per scenario from logged traffic with replay, IPS, SNIPS and doubly robust estimators "
        "(and its lift over a baseline); on synthetic logs also the exact truth. Writes "
        "DIR/replay.json, replay.md and replay_days.png.",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--policy", type=argtypes.one_model, help="model to evaluate")
    which.add_argument(
        "--policy-table",
        metavar="FILE",
        help="evaluate the policy in this parquet or CSV table instead: columns scenario, "
        "item_id, position (0-based), probability, optionally request_id (per request); "
        "pi(item | position) = probability",
    )
    p.add_argument(
        "--baseline", type=argtypes.one_model, help="model to compare with (paired lift)"
    )
    p.add_argument(
        "--logs",
        metavar="LOGDIR",
        help="log folder or parquet file (default: the config's generated logs, generated "
        "if missing)",
    )
    p.add_argument(
        "--estimators",
        type=argtypes.estimator_list,
        default=list(ESTIMATORS),
        help="comma-separated subset of replay,ips,snips,dr (default: all)",
    )
    p.add_argument(
        "--clip", type=argtypes.clip_value, metavar="W", help="clip importance weights at W"
    )
    p.set_defaults(func=cmd_replay)


def cmd_replay(args: argparse.Namespace) -> int:
    """Evaluate the policy on the logs, write DIR/replay.*, print the markdown."""
    config = load_config(args.config)
    out = claim(  # checked before any slow work
        Path(args.out)
        if args.out
        else Path("reports") / (dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-replay")
    )
    if args.policy_table and not Path(args.policy_table).is_file():  # before any slow work
        raise UserError(f"policy table not found: {args.policy_table}")
    if args.logs:
        logs = Path(args.logs)
        if not logs.exists():
            raise UserError(f"log folder not found: {logs}")
    else:
        from abtest.pipeline import ensure_logs

        logs = ensure_logs(config, progress=not args.quiet)
    run = run_offline(
        config,
        args.policy,
        args.baseline,
        logs,
        args.estimators,
        clip=args.clip,
        progress=not args.quiet,
        policy_table=args.policy_table,
    )
    with replacing(out, OUTPUT_FILES) as stage:  # the folder is replaced whole
        write_outputs(stage, run)
    print(format_markdown(run))
    print(f"wrote {out}/replay.json, replay.md, replay_days.png", file=sys.stderr)
    return 0
