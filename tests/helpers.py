"""Small simulation helpers shared by the tests."""

from __future__ import annotations

import polars as pl

from core.config import Config
from simulator.engine import Engine
from simulator.logs import LogWriter
from simulator.synthetic import SyntheticWorld
from simulator.world import World


def simulate(config: Config, make_policy, *, days: int | None = None, window: float | None = None,
             world: World | None = None) -> pl.DataFrame:  # fmt: skip
    """Serve `days` (default: both periods) with one policy; the log as a sorted frame."""
    world = world or SyntheticWorld(config)
    policy = make_policy(world, config.seed)
    days = config.periods.total_days if days is None else days
    with LogWriter(world, [policy.name]) as writer:
        Engine(world, [policy], [writer], seed=config.seed, batch_window=window).run(
            0, days, progress=False
        )
        return writer.lazy().sort("timestamp", "request_id", "position").collect()
