"""Command-line interface: ``python -m abtest <command>``.

Bad input (config, logs, arguments) prints one line ``error: ...`` and exits with status 2,
never a traceback; Ctrl-C exits with 130 and leaves earlier outputs intact.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from abtest.cli.argtypes import name_list
from core.config import Config, load_config
from core.errors import UserError
from core.fileio import check_writable_dir

DEFAULT_CONFIG = "scenarios.yaml"


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument on one line and exits 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: must be an integer") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"invalid seed {value}: must be in [0, 2^63)")
    return value


def _load(args: argparse.Namespace) -> Config:
    cfg = load_config(args.config)
    if getattr(args, "seed", None) is not None:
        cfg = cfg.with_seed(args.seed)
    return cfg


def cmd_generate(args: argparse.Namespace) -> int:
    cfg = _load(args)
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


def _model_names(text: str) -> list[str]:
    from models.zoo import MODEL_NAMES

    return name_list(text, MODEL_NAMES, "model", "known models")


def _epochs_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--epochs",
        type=_positive,
        metavar="N",
        help="recall fine-tuning epochs of models trained now (default 4, about a minute "
        "each; sass keeps improving to about 8, at about 1.5x the time)",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: must be an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {value}: must be >= 1")
    return value


def cmd_train(args: argparse.Namespace) -> int:
    cfg = _load(args)
    if len(args.model) != 1:
        raise UserError("--model takes one model name; use `evaluate --models a,b` for several")
    (name,) = args.model
    from models.evaluate import evaluate
    from abtest.pipeline import get_model, load_data, train_config

    data = load_data(cfg, progress=not args.quiet)
    ready = get_model(
        name,
        data,
        cfg.seed,
        train_cfg=train_config(args.epochs),
        retrain=args.retrain,
        progress=not args.quiet,
    )
    status = f"trained in {ready.train_seconds:.1f} s" if ready.trained_now else "loaded"
    print(
        f"{name} (seed {cfg.seed}): {status}"
        + (f" -> {ready.checkpoint}" if ready.checkpoint else "")
    )
    for scenario, m in evaluate(ready.recaller, data).items():
        print(
            f"  {scenario:<18} recall@50 {m['recall@50']:.4f}  ndcg@50 {m['ndcg@50']:.4f}  "
            f"({m['requests']:,} validation requests)"
        )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    cfg = _load(args)
    import datetime as dt

    from models.evaluate import aggregate, evaluate, index_report, write_offline
    from models.index import IndexSpec
    from abtest.pipeline import get_model, load_data, train_config
    from models.zoo import MODEL_NAMES

    names = args.models or list(MODEL_NAMES)
    out = (
        Path(args.out)
        if args.out
        else Path("reports") / (dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-offline")
    )
    check_writable_dir(out)
    data = load_data(cfg, progress=not args.quiet)
    seeds = [cfg.seed + i for i in range(args.seeds)]
    models, seconds, index = {}, {}, None
    for name in names:
        per_seed, secs = [], []
        for seed in seeds:
            ready = get_model(
                name, data, seed, train_cfg=train_config(args.epochs), progress=not args.quiet
            )
            per_seed.append(evaluate(ready.recaller, data, IndexSpec(args.index)))
            secs.append(ready.train_seconds)
            if index is None and name not in ("popular", "random") and seed == seeds[0]:
                index = {"model": name, "scenarios": index_report(ready.recaller, data)}
        models[name] = aggregate(per_seed)
        seconds[name] = float(sum(secs) / len(secs))
        row = "  ".join(f"{s}={models[name][s]['recall@50']:.4f}" for s in models[name])
        print(f"{name:<14} recall@50  {row}", file=sys.stderr)
    result = {
        "index_kind": args.index,
        "config_fingerprint": cfg.fingerprint(),
        "data_hash": data.data_hash,
        "seeds": seeds,
        "models": models,
        "train_seconds": seconds,
        "index": index,
    }
    traffic = {s.name: s.traffic_share for s in cfg.scenarios}
    write_offline(out, result, traffic)
    print((out / "offline.md").read_text())
    print(f"wrote {out}/offline.json and offline.md")
    return 0


def _model_name(text: str) -> str:
    (name,) = _model_names(text) if "," not in text else (None,)
    if name is None:
        raise argparse.ArgumentTypeError(f"one model name expected, got {text!r}")
    return name


def cmd_run(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    from abtest.report.document import format_table
    from abtest.online.runner import RunOptions, run_ab

    opts = RunOptions(
        treatment=args.treatment,
        control=args.control,
        days=args.days,
        seed=args.seed,
        out=Path(args.out) if args.out else None,
        cuped=not args.no_cuped,
        correction=args.correction,
        bootstrap=args.bootstrap,
        twin=not args.no_twin,
        save_events=args.save_events,
        replay=Path(args.replay) if args.replay else None,
        fixed_sessions=args.fixed_sessions,
        workers=args.workers,
        epochs=args.epochs,
        progress=not args.quiet,
        command="python -m abtest " + " ".join(sys.argv[1:] if args.argv is None else args.argv),
    )
    if args.fixed_sessions and not args.replay:
        raise UserError("--fixed-sessions needs --replay LOGDIR")
    results, out = run_ab(cfg, opts)
    print(format_table(results))
    print(f"\nreport: {out}/report.md (also report.html, results.json, lift.csv, plots)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from abtest.report.document import format_table, render_run

    paths = render_run(Path(args.run_dir))
    import json

    print(format_table(json.loads(paths["results.json"].read_text())))
    print(f"\nre-rendered {len(paths)} files in {args.run_dir}")
    return 0


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
    from core.fileio import write_json
    from abtest.online.validity import aa_study, binomial_band

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
    from core.fileio import write_json
    from abtest.online.validity import binomial_band, coverage_study

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
    from core.fileio import write_json
    from abtest.online.validity import power_table

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


def _lift(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid lift {text!r}: a number such as 0.02") from None
    if not 0 < value < 10:
        raise argparse.ArgumentTypeError(f"invalid lift {value}: must be in (0, 10), e.g. 0.02")
    return value


def _study_args(p: argparse.ArgumentParser, runs: bool = True) -> None:
    p.add_argument("--config", default=DEFAULT_CONFIG, help="scenarios YAML (default: %(default)s)")
    p.add_argument("--days", type=_positive, help="experiment days (default: the config's)")
    p.add_argument("--seed", type=_seed, help="seed of the simulated period (default: config's)")
    p.add_argument("--out", metavar="DIR", help="write the study's JSON (and plots) here")
    p.add_argument("--no-cuped", action="store_true", help="no CUPED variance reduction")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    if runs:
        p.add_argument("--runs", type=_positive, default=200, help="re-randomisations (200)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m abtest",
        description="Simulated online A/B tests and offline replay for multi-scenario "
        "recall models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = sub.add_parser(
        "generate",
        help="simulate the world's logged traffic and write logs, users and items",
        description="Simulate the logging policy over the pre-period and the experiment period "
        "and write DIR/logs.parquet, users.parquet, items.parquet and manifest.json.",
    )
    gen.add_argument(
        "--config", default=DEFAULT_CONFIG, help="scenarios YAML (default: %(default)s)"
    )
    gen.add_argument(
        "--out", metavar="DIR", help="output folder (default: .cache/logs/<config hash>)"
    )
    gen.add_argument("--seed", type=_seed, help="override the config's seed")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.set_defaults(func=cmd_generate)

    tr = sub.add_parser(
        "train",
        help="train one recall model on the config's logs (generating them if missing)",
        description="Train a recall model (or load its cached checkpoint) and print its "
        "offline metrics on the validation split.",
    )
    tr.add_argument("--model", required=True, type=_model_names, help="model name")
    tr.add_argument(
        "--config", default=DEFAULT_CONFIG, help="scenarios YAML (default: %(default)s)"
    )
    tr.add_argument("--seed", type=_seed, help="override the config's seed")
    tr.add_argument("--retrain", action="store_true", help="train even if a checkpoint exists")
    _epochs_arg(tr)
    tr.add_argument("--quiet", action="store_true", help="no progress bars")
    tr.set_defaults(func=cmd_train)

    ev = sub.add_parser(
        "evaluate",
        help="offline Recall/HR/NDCG@K of models per scenario (trains what is missing)",
        description="Evaluate models offline on the later part of the pre-period and write "
        "DIR/offline.json and DIR/offline.md.",
    )
    ev.add_argument("--models", type=_model_names, help="comma-separated (default: all)")
    ev.add_argument(
        "--config", default=DEFAULT_CONFIG, help="scenarios YAML (default: %(default)s)"
    )
    ev.add_argument("--seed", type=_seed, help="first seed (default: the config's)")
    ev.add_argument("--seeds", type=_positive, default=1, help="number of seeds (default: 1)")
    _epochs_arg(ev)
    ev.add_argument("--out", metavar="DIR", help="output folder (default: reports/<time>-offline)")
    ev.add_argument(
        "--index",
        choices=("flat", "hnsw", "ivf"),
        default="flat",
        help="faiss index searched for the top 100 (default: exact flat inner product)",
    )
    ev.add_argument("--quiet", action="store_true", help="no progress bars")
    ev.set_defaults(func=cmd_evaluate)

    run = sub.add_parser(
        "run",
        help="simulated online A/B test of two recall models, with report",
        description="Train what is missing, serve the treatment and control models to "
        "hashed user buckets in the simulator over the experiment period (and the truth twin), "
        "analyse per-scenario lifts and write a report folder.",
    )
    run.add_argument("--treatment", required=True, type=_model_name, help="treatment model")
    run.add_argument("--control", required=True, type=_model_name, help="control model")
    run.add_argument(
        "--config", default=DEFAULT_CONFIG, help="scenarios YAML (default: %(default)s)"
    )
    run.add_argument(
        "--days", type=_positive, help="experiment days (default: periods.experiment_days)"
    )
    run.add_argument(
        "--seed",
        type=_seed,
        help="seed of the experiment period's randomness (default: the config's seed; the "
        "world, logs and models always come from the config's seed)",
    )
    run.add_argument(
        "--out", metavar="DIR", help="report folder (default: reports/<time>-<t>-vs-<c>)"
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
        type=_positive,
        default=0,
        metavar="N",
        help="also a percentile bootstrap CI per lift with N resamples (a cross-check, slower)",
    )
    run.add_argument("--no-twin", action="store_true", help="skip the truth twin (faster)")
    _epochs_arg(run)
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
        type=_positive,
        default=1,
        help="simulate as N Ray tasks, one per user-hash shard (needs the `ray` extra; joins "
        "the cluster in RAY_ADDRESS if set, else starts a local Ray); same results as 1",
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=cmd_run, argv=None)

    rep = sub.add_parser(
        "report",
        help="re-render a run's report from its saved results.json",
        description="Re-render report.md, report.html, lift.csv and the plots of a run folder.",
    )
    rep.add_argument("run_dir", metavar="RUNDIR", help="a folder written by `run`")
    rep.set_defaults(func=cmd_report)

    from abtest.offline.replay import add_replay_parser

    add_replay_parser(sub)

    aa = sub.add_parser(
        "aa",
        help="A/A validity: false-positive rate per scenario x metric over fresh salts",
        description="Simulate the population once under one model, re-randomise users with "
        "fresh salts and test each split: the false-positive rate should be near alpha and "
        "the p-values uniform.",
    )
    aa.add_argument("--model", type=_model_name, default="mixed", help="model (mixed)")
    _study_args(aa)
    aa.set_defaults(func=cmd_aa)

    cov = sub.add_parser(
        "coverage",
        help="how often the CIs contain the truth twin's true lift, over fresh salts",
        description="Simulate every user under both models once (A/B run + truth twin), "
        "re-randomise with fresh salts and count the CIs that contain the true lift.",
    )
    cov.add_argument("--treatment", type=_model_name, default="sass", help="(sass)")
    cov.add_argument("--control", type=_model_name, default="mixed", help="(mixed)")
    _study_args(cov)
    cov.set_defaults(func=cmd_coverage)

    pw = sub.add_parser(
        "power",
        help="MDE per scenario by day, and the days needed to detect a lift",
        description="From a control-only simulation split by the config's allocation: the "
        "minimum detectable relative lift (80%% power) per scenario after each day, and the "
        "days needed for --lift (beyond the simulated days, extrapolated with the MDE's decay "
        "fitted on them).",
    )
    pw.add_argument("--model", type=_model_name, default="mixed", help="control model (mixed)")
    pw.add_argument("--lift", type=_lift, default=0.02, help="relative lift to detect (0.02)")
    _study_args(pw, runs=False)
    pw.set_defaults(func=cmd_power)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "argv"):
        args.argv = None if argv is None else list(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return interrupted()


INTERRUPTED = "interrupted: outputs already written are intact"


def interrupted() -> int:
    """Report a Ctrl-C once. One Ctrl-C can surface twice — polars raises it from inside a
    query and Python's own pending signal fires again — so further ones are ignored first."""
    for _ in range(3):
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            break
        except KeyboardInterrupt:
            continue
    print(INTERRUPTED, file=sys.stderr)
    return 130
