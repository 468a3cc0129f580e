"""Section ``interleaving``: an interleaving day's throughput against an A/B day's.

Both serve the same world, day, seed and two recall arms (random recallers over faiss
indexes and the shared noisy-truth ranker, :func:`benchmarks.worlds.recall_arms`) through
the same engine. The A/B run serves each request with one arm; the interleaving run with
both (two user towers and two faiss searches per request, the team-draft merge and the
ranker over the merged candidates), so it cannot be as fast. Target: interleaving requests/s
>= 0.5 x the A/B's, for the recall variant (the slate variant is reported too). Runs
alternate A/B, interleaving, A/B, ... and the best of `repeats` of each is compared, so a
burst of load on the shared machine does not decide the ratio.

    .venv/bin/python benchmarks/bench_interleaving.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.section import Section, print_table  # noqa: E402
from benchmarks.worlds import make_config, pre_logs, recall_arms  # noqa: E402

TARGET = 0.5  # interleaving requests/s over the A/B's


def bench_interleaving(config, world, repeats: int = 2) -> Section:
    """Requests/s of one A/B day and one interleaving day (each variant), best of `repeats`."""
    from abtest.online.experiment import check_allocation, simulate_period
    from abtest.online.interleaving import run_interleaving

    sec = Section("interleaving")
    logs = pre_logs(config)
    control, treatment = recall_arms(config, world)
    users = np.arange(world.users.n)
    route = np.where(check_allocation(config).arm_index(users) == 1, 1, 0)

    def ab() -> tuple[int, float]:
        _, engine = simulate_period(
            config, world, (control, treatment), logs, route, days=1, seed=config.seed
        )
        return engine.stats.requests, engine.stats.wall_seconds

    def interleave(variant: str):
        def go() -> tuple[int, float]:
            data = run_interleaving(
                config, world, control, treatment, logs, names=("control", "treatment"),
                days=1, seed=config.seed, variant=variant, progress=False,
            )  # fmt: skip
            return data.requests, data.wall_seconds

        return go

    jobs = {"ab": ab, "recall": interleave("recall"), "slate": interleave("slate")}
    best: dict[str, tuple[int, float]] = {}
    for _ in range(repeats):
        for name, job in jobs.items():
            t0 = time.perf_counter()
            requests, _ = job()
            wall = time.perf_counter() - t0
            if name not in best or wall < best[name][1]:
                best[name] = (requests, wall)
            print(f"{name}: {requests:,} requests in {wall:.1f} s", file=sys.stderr)
    rate = {name: r / w for name, (r, w) in best.items()}
    sec.figures = {
        "requests": {name: r for name, (r, _) in best.items()},
        "seconds": {name: round(w, 2) for name, (_, w) in best.items()},
        "requests_per_second": {name: round(x, 1) for name, x in rate.items()},
        "repeats": repeats,
        "candidates": config.serving.candidates,
    }
    sec.target(
        "interleaving (recall) requests/s / A/B requests/s",
        round(rate["recall"] / rate["ab"], 2),
        ">=",
        TARGET,
        f"{rate['recall']:,.0f} vs {rate['ab']:,.0f} requests/s",
    )
    sec.target(
        "interleaving (slate) requests/s / A/B requests/s",
        round(rate["slate"] / rate["ab"], 2),
        ">=",
        None,
        f"{rate['slate']:,.0f} requests/s",
    )
    return sec


def main(argv: list[str] | None = None) -> None:
    from simulator.synthetic import SyntheticWorld

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 2,000-user world")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each (best kept)")
    parser.add_argument("--out", type=Path, help="write the section's figures as JSON here")
    args = parser.parse_args(argv)
    config = make_config(args.quick)
    t0 = time.perf_counter()
    sec = bench_interleaving(config, SyntheticWorld(config), args.repeats)
    sec.seconds = time.perf_counter() - t0
    print_table([sec])
    if args.out:
        args.out.write_text(json.dumps({"interleaving": sec.to_dict()}, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
