"""The ``plan`` command: the per-scenario design advisor (:mod:`abtest.online.plan`), written
by :mod:`abtest.report.plan`.

May import ``core``, ``abtest.online``, ``abtest.report`` and the other ``abtest.cli``
modules.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from abtest.cli import argtypes
from abtest.cli.parents import (
    WORLD_HELP,
    config_parent,
    out_parent,
    quiet_parent,
    seed_parent,
)
from core.config import load_config
from core.errors import UserError


def add_parsers(subparsers) -> None:
    """Register ``plan``."""
    p = subparsers.add_parser(
        "plan",
        parents=[
            config_parent(),
            seed_parent(
                "seed of the simulated period (default: the config's seed; the world, logs and "
                "models always come from the config's seed)"
            ),
            out_parent(
                "output folder (default: reports/<time>-plan-<t>-vs-<c>); its files are "
                "replaced together, other files in it are kept"
            ),
            quiet_parent(),
        ],
        help="which design (A/B, A/B + CUPED, interleaving) needs the fewest users, per "
        "scenario and metric",
        description="Simulate the planned days once (an A/B run with its truth twin, and a "
        "--variant interleaving run), then per scenario and metric measure by "
        "re-randomisation the users (and days) each design needs for 80% power, recommend "
        "one and say what each estimates. Writes DIR/plan.md, plan.json and plan.png.",
    )
    p.add_argument("--treatment", required=True, type=argtypes.model_name, help="treatment model")
    p.add_argument("--control", required=True, type=argtypes.model_name, help="control model")
    p.add_argument("--days", type=argtypes.DAYS, help="planned days (default: the config's)")
    p.add_argument("--world", metavar="W", help=WORLD_HELP)
    p.add_argument(
        "--reps",
        type=argtypes.RUNS,
        default=200,
        metavar="N",
        help="simulated experiments per size searched (default: %(default)s)",
    )
    p.add_argument(
        "--variant",
        choices=("recall", "slate"),
        default="recall",
        help="the interleaving simulated: merged candidate lists before the shared ranker "
        "(recall, default) or the arms' own slates merged (slate; its preference follows the "
        "A/B's lift more closely, with less sensitivity)",
    )
    p.set_defaults(func=cmd_plan)


def default_out(treatment: str, control: str) -> Path:
    from abtest.online.runner import safe_name

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{stamp}-plan-{safe_name(treatment)}-vs-{safe_name(control)}"


def cmd_plan(args: argparse.Namespace) -> int:
    from abtest.online.plan import run_plan
    from abtest.report.outdir import claim, replacing
    from abtest.report.plan import FILES, summary_table, write_plan

    cfg = load_config(args.config)  # --seed seeds the simulated period, not the world
    world = Path(args.world) if args.world else None
    if world is not None and not world.is_dir():
        raise UserError(f"fitted world not found: {world} (write one with `calibrate`)")
    out = claim(Path(args.out) if args.out else default_out(args.treatment, args.control))
    say = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    if args.treatment == args.control:
        print(
            f"note: treatment and control are both {args.treatment!r}: an A/A plan (nothing to "
            "detect)",
            file=sys.stderr,
        )
    plan = run_plan(
        cfg,
        args.treatment,
        args.control,
        world=world,
        days=args.days,
        seed=args.seed,
        reps=args.reps,
        variant=args.variant,
        progress=not args.quiet,
        say=say,
    )
    with replacing(out, FILES) as stage:
        write_plan(stage, plan)
    print(summary_table(plan))
    print(f"\nwrote {out}/plan.md, plan.json, plan.png")
    return 0
