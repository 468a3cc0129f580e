"""Batched engine vs one-request-per-call, measured as a ratio in one run.

    .venv/bin/python benchmarks/engine_batching.py [--days N] [--config PATH]

Serves the same day(s) of the default world with the logging policy twice: with the
configured batch window, and with window 0 (every request served by its own call, the
naive engine). Prints requests/s of each, the speed-up, and checks that both produced the
same events (randomness is keyed by identity, so batching must not change them).
"""

from __future__ import annotations

import argparse
import time

from core.config import load_config
from simulator.engine import Engine
from simulator.logs import LogWriter
from simulator.policies import LoggingPolicy
from simulator.synthetic import SyntheticWorld
from simulator.world import World


def serve(world: World, days: int, window: float):
    policy = LoggingPolicy(world, world.config.seed)
    with LogWriter(world, [policy.name]) as writer:
        engine = Engine(world, [policy], [writer], seed=world.config.seed, batch_window=window)
        t0 = time.perf_counter()
        stats = engine.run(0, days, progress=False)
        seconds = time.perf_counter() - t0
        return stats, seconds, writer.lazy().sort("request_id", "position").collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="scenarios.yaml")
    parser.add_argument("--days", type=int, default=1)
    args = parser.parse_args()
    cfg = load_config(args.config)
    world = SyntheticWorld(cfg)
    batched, t_batched, logs_b = serve(world, args.days, cfg.engine.batch_window)
    naive, t_naive, logs_n = serve(world, args.days, 0.0)
    rate_b, rate_n = batched.requests / t_batched, naive.requests / t_naive
    print(f"requests: {batched.requests:,} over {args.days} day(s)")
    print(
        f"batched (window {cfg.engine.batch_window:g} s, mean batch "
        f"{batched.requests / batched.batches:.1f}): {rate_b:,.0f} requests/s"
    )
    print(
        f"naive   (window 0, mean batch {naive.requests / naive.batches:.1f}): "
        f"{rate_n:,.0f} requests/s"
    )
    print(f"speed-up: {rate_b / rate_n:.1f}x; identical events: {logs_b.equals(logs_n)}")


if __name__ == "__main__":
    main()
