"""Section ``engine_vs_kernel``: the simpy engine vs the same batches in a plain loop.

One simulated day of two RecallPolicy arms (random recaller, the shared noisy-truth ranker)
served by the engine, vs the same recorded request batches replayed through
``policy.serve`` + ``world.respond``. Target: kernel / engine >= 0.5.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.section import Section
from benchmarks.worlds import recall_arms
from core.config import Config


class Recorder:
    """Engine sink that keeps every served batch and its clicks, to replay them later."""

    def __init__(self) -> None:
        self.batches: list = []
        self.clicks = 0

    def add(self, arm, batch, slates, responses) -> None:
        self.batches.append((arm, batch))
        self.clicks += int(responses.click.sum())


def bench_engine_vs_kernel(config: Config, world, repeats: int) -> Section:
    from abtest.online.experiment import check_allocation
    from simulator.engine import Engine

    sec = Section("engine_vs_kernel")
    arms = recall_arms(config, world)
    layer = check_allocation(config)

    def route(users: np.ndarray) -> np.ndarray:  # holdout users get the control, as in the A/B
        return np.where(layer.arm_index(users) == 1, 1, 0)

    day = config.periods.pre_days
    engine_s, kernel_s = [], []
    for _ in range(repeats):
        rec = Recorder()
        engine = Engine(world, arms, [rec], seed=config.seed, route=route)
        stats = engine.run(day, 1, progress=False)
        engine_s.append(stats.wall_seconds)

        clicks = 0
        t0 = time.perf_counter()
        for arm, batch in rec.batches:
            slates = arms[arm].serve(batch)
            resp = world.respond(
                batch.scenario,
                batch.user_id,
                slates.items,
                batch.request_id,
                batch.page,
                config.seed,
            )
            clicks += int(resp.click.sum())
        kernel_s.append(time.perf_counter() - t0)
        if clicks != rec.clicks:
            raise AssertionError(f"kernel replay differs: {clicks} clicks vs {rec.clicks}")
    ratio = min(kernel_s) / min(engine_s)
    sec.figures = {
        "requests": stats.requests,
        "serve_calls": stats.serve_calls,
        "mean_requests_per_call": round(stats.requests / stats.serve_calls, 2),
        "engine_seconds": [round(x, 3) for x in engine_s],
        "kernel_seconds": [round(x, 3) for x in kernel_s],
        "engine_requests_per_s": round(stats.requests / min(engine_s)),
        "kernel_requests_per_s": round(stats.requests / min(kernel_s)),
        "same_clicks": True,
    }
    sec.target("kernel_time / engine_time", round(ratio, 3), ">=", 0.5, "min over repeats")
    return sec
