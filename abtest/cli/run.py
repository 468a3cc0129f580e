"""The A/B commands: ``run`` a simulated online A/B test and re-render its ``report``."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from abtest.cli import argtypes
from abtest.cli.parents import (
    WORLD_HELP,
    config_parent,
    epochs_parent,
    out_parent,
    quiet_parent,
    seed_parent,
)
from core.config import load_config
from core.errors import UserError


def add_parsers(subparsers) -> None:
    """Register ``run`` and ``report``."""
    _add_run(subparsers)
    rep = subparsers.add_parser(
        "report",
        help="re-render a run's report from its saved results.json",
        description="Re-render report.md, report.html, lift.csv and the plots of a run folder. "
        "They are replaced together (a reader sees the old report or the new one); other "
        "files in the folder, such as events.parquet, stay.",
    )
    rep.add_argument("run_dir", metavar="RUNDIR", help="a folder written by `run`")
    rep.set_defaults(func=cmd_report)


def _add_run(subparsers) -> None:
    run = subparsers.add_parser(
        "run",
        parents=[
            config_parent(),
            seed_parent(
                "seed of the experiment period's randomness (default: the config's seed; the "
                "world, logs and models always come from the config's seed)"
            ),
            out_parent(
                "report folder (default: reports/<time>-<t>-vs-<c>); replaced as a whole, so a "
                "non-empty folder must be an earlier run's (other files in it are kept)"
            ),
            epochs_parent(),
            quiet_parent(),
        ],
        help="simulated online A/B test of two recall models, with report",
        description="Train what is missing, serve the treatment and control models to "
        "hashed user buckets in the simulator over the experiment period (and the truth twin), "
        "analyse per-scenario lifts and write a report folder.",
    )
    run.add_argument("--treatment", required=True, type=argtypes.model_name, help="treatment model")
    run.add_argument("--control", required=True, type=argtypes.model_name, help="control model")
    run.add_argument(
        "--days", type=argtypes.DAYS, help="experiment days (default: periods.experiment_days)"
    )
    run.add_argument("--no-cuped", action="store_true", help="no CUPED variance reduction")
    run.add_argument(
        "--correction",
        choices=("bh", "holm"),
        default="bh",
        help="multiple-testing correction across scenario x metric (default: %(default)s)",
    )
    run.add_argument(
        "--bootstrap",
        type=argtypes.RESAMPLES,
        default=0,
        metavar="N",
        help="also a percentile bootstrap CI per lift with N resamples (a cross-check, slower)",
    )
    run.add_argument("--no-twin", action="store_true", help="skip the truth twin (faster)")
    run.add_argument(
        "--save-events", action="store_true", help="also write DIR/events.parquet (log schema)"
    )
    run.add_argument(
        "--replay",
        metavar="LOGDIR",
        help="drive arrivals by the sessions logged in LOGDIR/logs.parquet (or a parquet file) "
        "during the experiment period instead of the world's traffic model",
    )
    run.add_argument(
        "--fixed-sessions",
        action="store_true",
        help="with --replay: each session has its logged number of pages (no leave model)",
    )
    run.add_argument(
        "--workers",
        type=argtypes.WORKERS,
        default=1,
        help="simulate as N Ray tasks, one per user-hash shard (needs the `ray` extra; joins "
        "the cluster in RAY_ADDRESS if set, else starts a local Ray); same results as 1",
    )
    run.add_argument("--world", metavar="W", help=WORLD_HELP)
    run.add_argument(
        "--design",
        choices=("ab", "interleaving"),
        default="ab",
        help="ab: users split between the arms (default); interleaving: every user sees "
        "the team-draft merge of both arms and each click is credited to the arm of its item "
        "(writes interleaving.md/json/png: a preference, not a lift)",
    )
    run.add_argument(
        "--variant",
        choices=("recall", "slate"),
        default="recall",
        help="with --design interleaving: merge the two candidate lists before the shared "
        "ranker (recall, default) or the two final slates (slate)",
    )
    run.add_argument(
        "--logs",
        metavar="LOGDIR",
        help="train on and start from the log folder LOGDIR (generated or imported) instead of "
        "the config's logs; an imported folder is simulated on the world fitted from it "
        "(--world W, else fitted now and cached in .cache/worlds), whose true lifts are "
        "model-based; the config then supplies the serving and experiment settings",
    )
    run.set_defaults(func=cmd_run, argv=None)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    from abtest.online.runner import RunOptions, check_run, default_out, run_ab
    from abtest.report.folder import RUN_FILES, render_into
    from abtest.report.outdir import claim, replacing
    from abtest.report.tables import format_table

    if args.fixed_sessions and not args.replay:
        raise UserError("--fixed-sessions needs --replay LOGDIR")
    if args.design == "interleaving":  # refused before any work (a fit, a training)
        for flag, value in (("--save-events", args.save_events), ("--bootstrap", args.bootstrap)):
            if value:
                raise UserError(f"{flag} does not apply to --design interleaving")
    elif args.variant != "recall":
        raise UserError("--variant needs --design interleaving")
    logs = Path(args.logs) if args.logs else None
    world = Path(args.world) if args.world else None
    if logs is not None:
        cfg, world = _config_for_logs(cfg, logs, world, args)
    out = claim(Path(args.out) if args.out else default_out(args.treatment, args.control))
    opts = RunOptions(
        treatment=args.treatment,
        control=args.control,
        days=args.days,
        seed=args.seed,
        cuped=not args.no_cuped,
        correction=args.correction,
        bootstrap=args.bootstrap,
        twin=not args.no_twin,
        save_events=args.save_events,
        replay=Path(args.replay) if args.replay else None,
        fixed_sessions=args.fixed_sessions,
        workers=args.workers,
        world=world,
        logs=logs,
        epochs=args.epochs,
        progress=not args.quiet,
        command="python -m abtest " + " ".join(sys.argv[1:] if args.argv is None else args.argv),
    )
    if args.design == "interleaving":
        return _run_interleaving(cfg, opts, args.variant, out)
    check_run(cfg, opts)
    # everything (events.parquet during the simulation, then the report) goes into a staging
    # folder that replaces `out` as a whole at the end
    with replacing(out, RUN_FILES) as stage:
        results = run_ab(cfg, dataclasses.replace(opts, out=stage))
        render_into(results, stage)
    print(format_table(results))
    for warning in results.run.warnings if results.run else ():
        print(f"warning: {warning}")
    print(f"\nreport: {out}/report.md (also report.html, results.json, lift.csv, plots)")
    return 0


def _run_interleaving(cfg, opts, variant: str, out: Path) -> int:
    from abtest.online.runner import run_interleaving_job
    from abtest.report.interleaving import FILES, format_table, write_interleaving
    from abtest.report.outdir import replacing

    with replacing(out, FILES) as stage:
        results = run_interleaving_job(cfg, opts, variant)
        write_interleaving(stage, results)
    print(format_table(results))
    for warning in results.run.warnings if results.run else ():
        print(f"warning: {warning}")
    print(f"\nreport: {out}/interleaving.md (also interleaving.json, interleaving.png)")
    return 0


def _config_for_logs(cfg, logs: Path, world: Path | None, args: argparse.Namespace):
    """The run's config and world for `run --logs`: an imported folder runs on its fitted
    world (the given one, else the cached default fit, fitted now if missing)."""
    from abtest.calibration import config_for_logs, folder_kind
    from abtest.cli.calibrate import ensure_fitted_world
    from simulator.logfolder import verify_named

    if not logs.is_dir():
        raise UserError(f"log folder not found: {logs}")
    kind = folder_kind(logs)
    verify_named(logs)
    if kind == "imported" and world is None:
        if args.workers > 1:
            raise UserError("--logs of an imported folder does not run as Ray shards yet")
        world = ensure_fitted_world(logs, seed=cfg.seed, quiet=args.quiet)
    return config_for_logs(logs, cfg, world), world


def cmd_report(args: argparse.Namespace) -> int:
    from abtest.report.folder import read_results, write_report
    from abtest.report.tables import format_table

    results = read_results(args.run_dir)
    paths = write_report(results, args.run_dir)
    print(format_table(results))
    print(f"\nre-rendered {len(paths)} files in {args.run_dir}")
    return 0
