"""Command-line interface: ``python -m abtest <command>``.

:func:`build_parser` assembles the commands of the sibling modules; :func:`main` runs one.
Every failure is one line on stderr (:mod:`abtest.cli.boundary`): bad input and resource
failures exit 2, a bug exits 1 with its traceback in a log file, SIGTERM 143 and Ctrl-C 130,
leaving earlier outputs intact.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from abtest.cli import (
    calibrate,
    fidelity,
    generate,
    importing,
    models,
    plan,
    replay,
    run,
    studies,
    zoo_studies,
)
from abtest.cli.boundary import guarded
from abtest.cli.parents import Parser
from core.staging import sigterm_raises

# In the order `--help` lists them.
COMMAND_MODULES = (
    generate,
    importing,
    models,
    run,
    replay,
    studies,
    zoo_studies,
    calibrate,
    fidelity,
    plan,
)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="python -m abtest",
        description="Simulated online A/B tests and offline replay for multi-scenario "
        "recall models.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for module in COMMAND_MODULES:
        module.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "argv"):
        args.argv = None if argv is None else list(argv)
    try:
        with sigterm_raises():
            return guarded(args.command, lambda: args.func(args))
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
