"""The validity studies: ``aa`` (false-positive rate), ``coverage`` (CI coverage of the true
lift) and ``power`` (MDE by day), each on one simulated population re-randomised."""

from __future__ import annotations

import argparse
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


def add_parsers(subparsers) -> None:
    """Register ``aa``, ``coverage`` and ``power``."""
    aa = subparsers.add_parser(
        "aa",
        parents=_study_parents(),
        help="A/A validity: false-positive rate per scenario x metric over fresh salts",
        description="Simulate the population once under one model, re-randomise users with "
        "fresh salts and test each split: the false-positive rate should be near alpha and "
        "the p-values uniform.",
    )
    aa.add_argument("--model", type=argtypes.model_name, default="mixed", help="model (mixed)")
    _study_args(aa)
    aa.set_defaults(func=cmd_aa)

    cov = subparsers.add_parser(
        "coverage",
        parents=_study_parents(),
        help="how often the CIs contain the truth twin's true lift, over fresh salts",
        description="Simulate every user under both models once (A/B run + truth twin), "
        "re-randomise with fresh salts and count the CIs that contain the true lift.",
    )
    cov.add_argument("--treatment", type=argtypes.model_name, default="sass", help="(sass)")
    cov.add_argument("--control", type=argtypes.model_name, default="mixed", help="(mixed)")
    _study_args(cov)
    cov.set_defaults(func=cmd_coverage)

    pw = subparsers.add_parser(
        "power",
        parents=_study_parents(),
        help="MDE per scenario by day, and the days needed to detect a lift",
        description="From a control-only simulation split by the config's allocation: the "
        "minimum detectable relative lift (80%% power) per scenario after each day, and the "
        "days needed for --lift (beyond the simulated days, extrapolated with the MDE's decay "
        "fitted on them).",
    )
    pw.add_argument(
        "--model", type=argtypes.model_name, default="mixed", help="control model (mixed)"
    )
    pw.add_argument(
        "--lift", type=argtypes.lift, default=0.02, help="relative lift to detect (0.02)"
    )
    _study_args(pw, runs=False)
    pw.set_defaults(func=cmd_power)


def _study_parents() -> list[argparse.ArgumentParser]:
    return [
        config_parent(),
        seed_parent("seed of the simulated period (default: config's)"),
        out_parent(
            "write the study's JSON (and plots) here; its files are replaced together, other "
            "files in the folder are kept (a non-empty folder must hold a result of this tool)"
        ),
        quiet_parent(),
    ]


def _study_args(p: argparse.ArgumentParser, runs: bool = True) -> None:
    p.add_argument("--days", type=argtypes.DAYS, help="experiment days (default: the config's)")
    p.add_argument("--no-cuped", action="store_true", help="no CUPED variance reduction")
    p.add_argument("--world", metavar="W", help=WORLD_HELP)
    if runs:
        p.add_argument("--runs", type=argtypes.RUNS, default=200, help="re-randomisations (200)")


def _study_setup(args: argparse.Namespace, control: str, treatment: str):
    from abtest.online.analysis import AnalysisOptions
    from abtest.online.experiment import check_experiment_size
    from abtest.online.runner import prepare, simulate_twin
    from abtest.report.outdir import claim

    cfg = load_config(args.config)
    out = claim(Path(args.out)) if args.out else None
    days = args.days or cfg.periods.experiment_days
    seed = cfg.seed if args.seed is None else args.seed
    # the A/B sums, the twin's, their total and one re-randomised copy at a time
    check_experiment_size(cfg, days, copies=4)
    world = Path(args.world) if args.world else None
    prep = prepare(cfg, [control, treatment], not args.quiet, world=world)
    print(f"[3/4] simulating {days} days, every user under both arms", file=sys.stderr)
    data = simulate_twin(
        cfg, prep, control, treatment, days=days, seed=seed, progress=not args.quiet
    )
    traffic = {s.name: s.traffic_share for s in cfg.scenarios}
    alloc = dict(cfg.experiment.allocation)
    opts = AnalysisOptions(alpha=cfg.experiment.alpha, cuped=not args.no_cuped)
    print("[4/4] re-randomising and analysing", file=sys.stderr)
    return cfg, out, data, traffic, alloc, opts


def cmd_aa(args: argparse.Namespace) -> int:
    from abtest.online.validity import aa_study
    from abtest.report.studies import aa_text, write_aa

    _, out, data, traffic, alloc, opts = _study_setup(args, args.model, args.model)
    res = aa_study(data, traffic, alloc, args.runs, opts, progress=not args.quiet)
    print(aa_text(res, args.model))
    if out is not None:
        print(write_aa(res, args.model, out))
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    from abtest.online.validity import coverage_study
    from abtest.report.studies import coverage_text, write_coverage

    _, out, data, traffic, alloc, opts = _study_setup(args, args.control, args.treatment)
    res = coverage_study(data, traffic, alloc, args.runs, opts, progress=not args.quiet)
    print(coverage_text(res, args.treatment, args.control))
    if out is not None:
        print(write_coverage(res, args.treatment, args.control, out))
    return 0


def cmd_power(args: argparse.Namespace) -> int:
    from abtest.online.validity import power_table
    from abtest.report.studies import power_text, write_power

    _, out, data, traffic, alloc, opts = _study_setup(args, args.model, args.model)
    table = power_table(data, traffic, alloc, args.lift, opts)
    print(power_text(table, opts.alpha, alloc))
    if out is not None:
        print(write_power(table, out))
    return 0
