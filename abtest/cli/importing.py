"""The ``import`` command: turn logged interactions (KuaiRand, the Open Bandit Dataset, any
CSV or parquet table) into a log folder that training and replay read like a generated one.
"""

from __future__ import annotations

import argparse
import sys

from abtest.cli import argtypes
from abtest.cli.parents import quiet_parent
from core.errors import UserError

FORMATS = ("kuairand", "obd", "table")
# options that only some formats read
FORMAT_OPTIONS = {
    "tabs": ("kuairand",),
    "campaigns": ("obd",),
    "session_gap": ("kuairand", "table"),
    "map": ("table",),
    "time_unit": ("table",),
    "users": ("table",),
    "items": ("table",),
}
SESSION_GAP_MINUTES = 30.0


def add_parsers(subparsers) -> None:
    """Register ``import``."""
    p = subparsers.add_parser(
        "import",
        parents=[quiet_parent("no progress messages")],
        help="import logged interactions (kuairand, obd, table) as a log folder",
        description="Convert logged interactions into a log folder: DIR/logs.parquet (dense "
        "user and item ids), users.parquet and items.parquet (the source ids and coded "
        "features) and manifest.json. FORMAT kuairand: SRC a KuaiRand folder (log_*.csv, "
        "optional user_features*.csv and video_features_basic*.csv); obd: SRC an Open "
        "Bandit Dataset folder (random|bts/<campaign>/<campaign>.csv); table: SRC a CSV or "
        "parquet file whose columns --map names. Nothing is written unless the whole "
        "import succeeds; a non-empty DIR must be a log folder, and is replaced as a whole.",
    )
    p.add_argument("format", choices=FORMATS, metavar="FORMAT", help=", ".join(FORMATS))
    p.add_argument("src", metavar="SRC", help="the source folder (kuairand, obd) or file (table)")
    p.add_argument("--out", metavar="DIR", required=True, help="the log folder to write")
    p.add_argument(
        "--pre-fraction",
        type=argtypes.pre_fraction,
        default=0.5,
        metavar="F",
        help="the share of the logged time before the pre-period ends (models train on it; "
        "replay evaluates after it; default %(default)s)",
    )
    p.add_argument(
        "--session-gap",
        type=argtypes.minutes,
        metavar="MIN",
        help="kuairand, table: a session ends after this many idle minutes (default 30)",
    )
    p.add_argument(
        "--tabs", metavar="N,N", help="kuairand: the tabs to import (default: the 5 busiest)"
    )
    p.add_argument(
        "--campaigns", metavar="NAME,NAME", help="obd: the campaigns to import (default: all)"
    )
    p.add_argument(
        "--map",
        metavar="OURS=THEIRS,...|FILE.yaml",
        help="table: the source column of each of our columns, e.g. user_id=uid,item_id=vid,"
        "timestamp=ts,click=clicked; side tables: users.user_id=..., items.item_id=..., "
        "items.category=..., items.content_type=..., items.duration=...; or a YAML file of "
        "that mapping. An unmapped column is read from the column of its own name",
    )
    p.add_argument(
        "--time-unit",
        choices=("s", "ms", "us"),
        default=None,
        help="table: the unit of epoch-number timestamps (default s)",
    )
    p.add_argument("--users", metavar="FILE", help="table: a users table (CSV or parquet)")
    p.add_argument("--items", metavar="FILE", help="table: an items table (CSV or parquet)")
    p.set_defaults(func=cmd_import)


def _check_options(args: argparse.Namespace) -> None:
    for option, formats in FORMAT_OPTIONS.items():
        if getattr(args, option) is not None and args.format not in formats:
            flag = "--" + option.replace("_", "-")
            which = " and ".join(formats)
            plural = "s" if len(formats) > 1 else ""
            raise UserError(f"{flag} applies to the {which} format{plural} only, not {args.format}")


def cmd_import(args: argparse.Namespace) -> int:
    _check_options(args)
    from simulator.log_import import format_summary, import_logs

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    options: dict = {"pre_fraction": args.pre_fraction, "say": say}
    gap = SESSION_GAP_MINUTES if args.session_gap is None else args.session_gap
    if args.format == "kuairand":
        options |= {"tabs": args.tabs, "session_gap_minutes": gap}
    elif args.format == "obd":
        if args.campaigns is not None:
            names = [c.strip() for c in args.campaigns.split(",") if c.strip()]
            if not names:
                raise UserError("--campaigns: no campaign given (e.g. --campaigns men,women)")
            options["campaigns"] = names
    else:
        options |= {
            "mapping": args.map,
            "time_unit": args.time_unit or "s",
            "users": args.users,
            "items": args.items,
            "session_gap_minutes": gap,
        }
    result = import_logs(args.format, args.src, args.out, **options)
    print(format_summary(result))
    return 0
