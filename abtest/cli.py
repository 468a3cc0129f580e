"""Command-line interface: ``python -m abtest <command>``.

Bad input (config, logs, arguments) prints one line ``error: ...`` and exits with status 2,
never a traceback; Ctrl-C exits with 130 and leaves earlier outputs intact.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from abtest.config import Config, load_config
from abtest.errors import UserError
from abtest.fileio import check_writable_dir

DEFAULT_CONFIG = "scenarios.yaml"
CACHE_DIR = Path(".cache")


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


def default_log_dir(cfg: Config) -> Path:
    return CACHE_DIR / "logs" / cfg.fingerprint()


def cmd_generate(args: argparse.Namespace) -> int:
    cfg = _load(args)
    out = check_writable_dir(Path(args.out) if args.out else default_log_dir(cfg))
    from simulator.generation import format_summary, generate  # heavy imports after the checks

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: outputs already written are intact", file=sys.stderr)
        return 130
