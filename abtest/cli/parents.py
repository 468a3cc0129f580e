"""The command line's parser class, the parent parsers of the options several commands share
(``--config``, ``--seed``, ``--out``, ``--epochs``, ``--quiet``; argparse ``parents=[...]``)
and :func:`config_from_args`, the config a command's ``--config`` and ``--seed`` select."""

from __future__ import annotations

import argparse

from abtest.cli import argtypes
from core.config import Config, load_config

DEFAULT_CONFIG = "scenarios.yaml"
WORLD_HELP = (
    "simulate on the world fitted from the config's logs in folder W (`calibrate`) instead of "
    "the synthetic world; the twin's true lift is then model-based"
)


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument on one line and exits 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def config_parent() -> argparse.ArgumentParser:
    """``--config FILE``, default scenarios.yaml."""
    p = _parent()
    p.add_argument("--config", default=DEFAULT_CONFIG, help="scenarios YAML (default: %(default)s)")
    return p


def seed_parent(help: str) -> argparse.ArgumentParser:
    """``--seed N``; what the seed seeds differs by command, hence `help`."""
    p = _parent()
    p.add_argument("--seed", type=argtypes.seed, help=help)
    return p


def out_parent(help: str) -> argparse.ArgumentParser:
    """``--out DIR``, the command's output folder (its default is in `help`)."""
    p = _parent()
    p.add_argument("--out", metavar="DIR", help=help)
    return p


def epochs_parent() -> argparse.ArgumentParser:
    """``--epochs N`` of the models a command trains."""
    p = _parent()
    p.add_argument(
        "--epochs",
        type=argtypes.EPOCHS,
        metavar="N",
        help="recall fine-tuning epochs of models trained now (default 4, about a minute "
        "each; sass keeps improving to about 8, at about 1.5x the time)",
    )
    return p


def quiet_parent(help: str = "no progress bars") -> argparse.ArgumentParser:
    """``--quiet``: no progress output on stderr."""
    p = _parent()
    p.add_argument("--quiet", action="store_true", help=help)
    return p


def config_from_args(args: argparse.Namespace) -> Config:
    """The config of ``--config``, with its seed replaced by ``--seed`` when given."""
    cfg = load_config(args.config)
    if getattr(args, "seed", None) is not None:
        cfg = cfg.with_seed(args.seed)
    return cfg
