"""The validity studies: ``aa`` (false-positive rate), ``coverage`` (CI coverage of the true
lift) and ``power`` (MDE by day), each on one simulated population re-randomised."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from abtest.cli import argtypes
from abtest.cli.parents import config_parent, out_parent, quiet_parent, seed_parent
from core.config import load_config
from core.fileio import check_writable_dir


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
        out_parent("write the study's JSON (and plots) here"),
        quiet_parent(),
    ]


def _study_args(p: argparse.ArgumentParser, runs: bool = True) -> None:
    p.add_argument("--days", type=argtypes.positive, help="experiment days (default: the config's)")
    p.add_argument("--no-cuped", action="store_true", help="no CUPED variance reduction")
    if runs:
        p.add_argument(
            "--runs", type=argtypes.positive, default=200, help="re-randomisations (200)"
        )


def _study_setup(args: argparse.Namespace, control: str, treatment: str):
    from abtest.online.analysis import AnalysisOptions
    from abtest.online.runner import prepare, simulate_twin

    cfg = load_config(args.config)
    out = check_writable_dir(Path(args.out)) if args.out else None
    days = args.days or cfg.periods.experiment_days
    seed = cfg.seed if args.seed is None else args.seed
    prep = prepare(cfg, [control, treatment], not args.quiet)
    print(f"[3/4] simulating {days} days, every user under both arms", file=sys.stderr)
    data = simulate_twin(
        cfg, prep, control, treatment, days=days, seed=seed, progress=not args.quiet
    )
    traffic = {s.name: s.traffic_share for s in cfg.scenarios}
    alloc = dict(cfg.experiment.allocation)
    opts = AnalysisOptions(alpha=cfg.experiment.alpha, cuped=not args.no_cuped)
    print("[4/4] re-randomising and analysing", file=sys.stderr)
    return cfg, out, data, traffic, alloc, opts


def _rate_table(rate: dict, title: str, band: tuple[float, float]) -> str:
    from abtest.online.analysis import METRICS

    lines = [title, f"{'scenario':<18}" + "".join(f"{m:>22}" for m in METRICS)]
    for name, per in rate.items():
        cells = []
        for m in METRICS:
            v = per.get(m, float("nan"))
            mark = "" if v != v or band[0] <= v <= band[1] else " !"
            cells.append(f"{v:>20.3f}{mark:2}")
        lines.append(f"{name:<18}" + "".join(cells))
    lines.append(f"('!' = outside the 3-sd binomial band [{band[0]:.3f}, {band[1]:.3f}])")
    return "\n".join(lines)


def cmd_aa(args: argparse.Namespace) -> int:
    from abtest.online.validity import aa_study, binomial_band
    from core.fileio import write_json

    _, out, data, traffic, alloc, opts = _study_setup(args, args.model, args.model)
    res = aa_study(data, traffic, alloc, args.runs, opts, progress=not args.quiet)
    band = binomial_band(opts.alpha, args.runs)
    print(_rate_table(res.rate, f"A/A false-positive rate over {args.runs} re-randomisations "
                      f"(alpha {opts.alpha}, model {args.model})", band))  # fmt: skip
    print(f"p-values uniform? Kolmogorov-Smirnov p = {res.ks_pvalue:.3g}")
    if out is not None:
        doc = {"runs": res.runs, "alpha": res.alpha, "model": args.model,
               "false_positive_rate": res.rate, "ks_pvalue": res.ks_pvalue,
               "band": list(band), "p_values": res.p_values}  # fmt: skip
        write_json(out / "aa.json", doc)
        _qq_plot(res.p_values, out / "aa_qq.png")
        print(f"wrote {out}/aa.json and aa_qq.png")
    return 0


def _qq_plot(p_values: dict, path: Path) -> None:
    import numpy as np
    from matplotlib.figure import Figure

    from core.fileio import atomic_path

    pooled = np.sort([p for per in p_values.values() for ps in per.values() for p in ps
                      if p == p])  # fmt: skip
    fig = Figure(figsize=(4.5, 4.5), dpi=110)
    ax = fig.add_subplot()
    expected = (np.arange(1, pooled.size + 1) - 0.5) / max(pooled.size, 1)
    ax.plot(expected, pooled, ".", ms=2)
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlabel("uniform quantile")
    ax.set_ylabel("A/A p-value quantile")
    ax.set_title("A/A p-values against uniform")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})


def cmd_coverage(args: argparse.Namespace) -> int:
    from abtest.online.validity import binomial_band, coverage_study
    from core.fileio import write_json

    _, out, data, traffic, alloc, opts = _study_setup(args, args.control, args.treatment)
    res = coverage_study(data, traffic, alloc, args.runs, opts, progress=not args.quiet)
    band = binomial_band(1 - opts.alpha, args.runs)
    print(_rate_table(res.rate, f"Coverage of the true lift by the {1 - opts.alpha:.0%} CI over "
                      f"{args.runs} re-randomisations ({args.treatment} vs {args.control})",
                      band))  # fmt: skip
    if out is not None:
        doc = {"runs": res.runs, "alpha": res.alpha, "treatment": args.treatment,
               "control": args.control, "coverage": res.rate, "true_lift": res.true_lift,
               "band": list(band)}  # fmt: skip
        write_json(out / "coverage.json", doc)
        print(f"wrote {out}/coverage.json")
    return 0


def cmd_power(args: argparse.Namespace) -> int:
    from abtest.online.validity import power_table
    from core.fileio import write_json

    _, out, data, traffic, alloc, opts = _study_setup(args, args.model, args.model)
    table = power_table(data, traffic, alloc, args.lift, opts)
    print(f"MDE (80% power, alpha {opts.alpha}) by day, allocation {alloc}; days needed for a "
          f"{args.lift:+.1%} lift")  # fmt: skip
    for name, block in table["scenarios"].items():
        for m in ("ctr", "watch_time_per_user"):
            mdes = " ".join("   —  " if v is None else f"{v:6.1%}" for v in block[m]["mde_by_day"])
            need = block[m]["days_needed"]
            how = " (extrapolated)" if block[m]["extrapolated"] else ""
            print(f"  {name:<18} {m:<20} {mdes}   days needed: {need or '—'}{how}")
    if out is not None:
        write_json(out / "power.json", table)
        print(f"wrote {out}/power.json")
    return 0
