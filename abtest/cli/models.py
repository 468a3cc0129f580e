"""The model commands: ``train`` one recall model and ``evaluate`` models offline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from abtest.cli import argtypes
from abtest.cli.parents import (
    config_from_args,
    config_parent,
    epochs_parent,
    out_parent,
    quiet_parent,
    seed_parent,
)
from core.errors import UserError

LOGS_HELP = (
    "train and evaluate on this log folder (written by `generate` or `import`) instead of the "
    "config's generated logs; an imported folder brings its scenarios, pools, features and "
    "time split, the config its model settings"
)


def _data(cfg, args):
    """The dataset and traffic shares of ``--logs`` or of the config's generated logs."""
    from abtest.pipeline import load_data, load_folder_data

    if args.logs:
        folder = load_folder_data(args.logs, cfg)
        return folder.data, folder.traffic
    traffic = {s.name: s.traffic_share for s in cfg.scenarios}
    return load_data(cfg, progress=not args.quiet), traffic


def add_parsers(subparsers) -> None:
    """Register ``train`` and ``evaluate``."""
    tr = subparsers.add_parser(
        "train",
        parents=[
            config_parent(),
            seed_parent("override the config's seed"),
            epochs_parent(),
            quiet_parent(),
        ],
        help="train one recall model on the config's logs (generating them if missing)",
        description="Train a recall model (or load its cached checkpoint) and print its "
        "offline metrics on the validation split.",
    )
    tr.add_argument("--logs", metavar="LOGDIR", help=LOGS_HELP)
    tr.add_argument("--model", required=True, type=argtypes.model_names, help="model name")
    tr.add_argument("--retrain", action="store_true", help="train even if a checkpoint exists")
    tr.set_defaults(func=cmd_train)

    ev = subparsers.add_parser(
        "evaluate",
        parents=[
            config_parent(),
            seed_parent("first seed (default: the config's)"),
            out_parent("output folder (default: reports/<time>-offline)"),
            epochs_parent(),
            quiet_parent(),
        ],
        help="offline Recall/HR/NDCG@K of models per scenario (trains what is missing)",
        description="Evaluate models offline on the later part of the pre-period and write "
        "DIR/offline.json and DIR/offline.md.",
    )
    ev.add_argument("--logs", metavar="LOGDIR", help=LOGS_HELP)
    ev.add_argument("--models", type=argtypes.model_names, help="comma-separated (default: all)")
    ev.add_argument("--seeds", type=argtypes.SEEDS, default=1, help="number of seeds (default: 1)")
    ev.add_argument(
        "--index",
        choices=("flat", "hnsw", "ivf"),
        default="flat",
        help="faiss index searched for the top 100 (default: exact flat inner product)",
    )
    ev.add_argument(
        "--k",
        type=int,
        choices=(5, 10, 20, 50, 100),
        default=50,
        help="the K of the Recall@K / NDCG@K table in offline.md (default 50; offline.json "
        "has them all); use a K well below the item pools' size",
    )
    ev.set_defaults(func=cmd_evaluate)


def cmd_train(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if len(args.model) != 1:
        raise UserError("--model takes one model name; use `evaluate --models a,b` for several")
    (name,) = args.model
    from abtest.pipeline import get_model, train_config
    from models.evaluate import evaluate

    data, _ = _data(cfg, args)
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
    cfg = config_from_args(args)
    import datetime as dt

    from abtest.pipeline import get_model, train_config
    from abtest.report.outdir import claim, replacing
    from models.evaluate import aggregate, evaluate, index_report, write_offline
    from models.index import IndexSpec
    from models.zoo import FLOORS, MODEL_NAMES

    names = args.models or list(MODEL_NAMES)
    out = claim(
        Path(args.out)
        if args.out
        else Path("reports") / (dt.datetime.now().strftime("%Y%m%d-%H%M%S") + "-offline")
    )
    data, traffic = _data(cfg, args)
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
            if index is None and name not in FLOORS and seed == seeds[0]:
                index = {"model": name, "k": 50, "scenarios": index_report(ready.recaller, data)}
        models[name] = aggregate(per_seed)
        seconds[name] = float(sum(secs) / len(secs))
        row = "  ".join(f"{s}={models[name][s][f'recall@{args.k}']:.4f}" for s in models[name])
        print(f"{name:<14} recall@{args.k}  {row}", file=sys.stderr)
    result = {
        "index_kind": args.index,
        "config_fingerprint": cfg.fingerprint(),
        "data_hash": data.data_hash,
        "logs": str(args.logs) if args.logs else None,
        "seeds": seeds,
        "models": models,
        "train_seconds": seconds,
        "index": index,
    }
    with replacing(out, ("offline.json", "offline.md")) as stage:  # the folder is replaced whole
        write_offline(stage, result, traffic, k=args.k)
    print((out / "offline.md").read_text())
    print(f"wrote {out}/offline.json and offline.md")
    return 0
