"""The model-zoo studies, ``study <name>``: ``sass-map`` (where SASS beats the baselines over
one scenario's systematic shift × traffic share, a world per cell) and ``sass-ablation`` (the
paper's ablations of SASS on the config's world), both scored offline over training seeds."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from abtest.cli import argtypes
from abtest.cli.parents import (
    Parser,
    config_from_args,
    config_parent,
    epochs_parent,
    out_parent,
    quiet_parent,
    seed_parent,
)
from core.errors import UserError

# as abtest.zoo_studies.sass_map's defaults (not imported here: it loads torch); a test
# checks that they agree
MAP_DEFAULTS = {
    "target": "related_detail",
    "models": "mixed,star,sass_base,sass,zeus",
    "shifts": "0,0.5,0.9",
    "shares": "0.01,0.05,0.2",
}


def add_parsers(subparsers) -> None:
    """Register ``study`` and its sub-commands ``sass-map`` and ``sass-ablation``."""
    study = subparsers.add_parser(
        "study",
        help="model-zoo studies: the SASS map over worlds, the SASS ablations",
        description="Offline studies of the recall models over training seeds (trains what is "
        "missing; checkpoints are cached, so a study run twice trains nothing).",
    )
    inner = study.add_subparsers(dest="study", required=True, parser_class=Parser)

    sm = inner.add_parser(
        "sass-map",
        parents=_parents("sass-map"),
        help="where SASS beats the baselines: a grid of one scenario's shift x traffic share",
        description="For every systematic_shift x traffic_share of the --target scenario (the "
        "other scenarios' shares scaled to fill the rest), generate the world, train every "
        "model for every seed and score it offline in the target scenario; write "
        "DIR/sass_map.json, sass_map.md and sass_map.png.",
    )
    sm.add_argument(
        "--target",
        metavar="SCENARIO",
        help=f"the scenario whose shift and share vary (default: {MAP_DEFAULTS['target']})",
    )
    sm.add_argument(
        "--models",
        type=argtypes.model_names,
        help=f"comma-separated, with sass (default: {MAP_DEFAULTS['models']})",
    )
    sm.add_argument(
        "--shifts",
        type=argtypes.SHIFT_LIST,
        help=f"systematic shifts in [0, 1], the rows (default: {MAP_DEFAULTS['shifts']})",
    )
    sm.add_argument(
        "--shares",
        type=argtypes.SHARE_LIST,
        help=f"traffic shares in (0, 1), the columns (default: {MAP_DEFAULTS['shares']})",
    )
    sm.add_argument(
        "--workers",
        type=argtypes.WORKERS,
        default=0,
        help="run the cells as N Ray tasks (needs the `ray` extra; joins the cluster in "
        "RAY_ADDRESS if set, else starts a local Ray); default: the cells in turn",
    )
    sm.set_defaults(func=cmd_sass_map)

    ab = inner.add_parser(
        "sass-ablation",
        parents=_parents("sass-ablation"),
        help="the SASS ablations: each variant vs the full model, per scenario",
        description="Train every ablation of SASS (and mixed, for reference) for every seed on "
        "the config's logs, score them offline in every scenario with the paired difference "
        "to the full model; write DIR/ablation.json and ablation.md.",
    )
    ab.set_defaults(func=cmd_sass_ablation)


def _parents(name: str) -> list[argparse.ArgumentParser]:
    seeds = argparse.ArgumentParser(add_help=False)
    seeds.add_argument(
        "--seeds", type=argtypes.SEEDS, default=1, help="training seeds (default: 1)"
    )
    return [
        config_parent(),
        seed_parent("override the config's seed: the world's, and the first training seed"),
        seeds,
        out_parent(
            f"output folder (default: reports/<time>-{name}); the study's files are replaced "
            "together, other files in it are kept"
        ),
        epochs_parent(),
        quiet_parent(),
    ]


def _out(args: argparse.Namespace, name: str) -> Path:
    from abtest.report.outdir import claim

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return claim(Path(args.out) if args.out else Path("reports") / f"{stamp}-{name}")


def cmd_sass_map(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    from abtest.pipeline import train_config
    from abtest.report.sass_map import sass_map_markdown, write_sass_map
    from abtest.zoo_studies import sass_map as study

    target = args.target or study.DEFAULT_TARGET
    models = args.models or list(study.MAP_MODELS)
    shifts = args.shifts or list(study.SHIFTS)
    shares = args.shares or list(study.SHARES)
    if len(set(models)) < len(models):
        raise UserError(f"--models: a model is named twice ({', '.join(models)})")
    study.check_map_args(cfg, target, models, shares)
    out = _out(args, "sass-map")  # sass_map() checks every cell's config before training
    result = study.sass_map(
        cfg,
        target,
        models,
        [cfg.seed + i for i in range(args.seeds)],
        shifts,
        shares,
        train_config(args.epochs),
        workers=args.workers,
        progress=not args.quiet,
    )
    print(sass_map_markdown(result))
    write_sass_map(result, out)
    print(f"wrote {out}/sass_map.json, sass_map.md and sass_map.png")
    return 0


def cmd_sass_ablation(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    from abtest.pipeline import train_config
    from abtest.report.ablation import ablation_markdown, write_ablation
    from abtest.zoo_studies.ablation import ablation

    out = _out(args, "sass-ablation")
    seeds = [cfg.seed + i for i in range(args.seeds)]
    result = ablation(cfg, seeds, train_config(args.epochs), progress=not args.quiet)
    print(ablation_markdown(result))
    write_ablation(result, out)
    print(f"wrote {out}/ablation.json and ablation.md")
    return 0
