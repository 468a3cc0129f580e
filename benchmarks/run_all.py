"""Every performance figure of the harness as a ratio measured in one run, written to JSON.

    .venv/bin/python benchmarks/run_all.py [--quick] [--out benchmarks/results.json]
    .venv/bin/python -m benchmarks.run_all [--quick] [--out PATH]      (the same)

Absolute times on a shared machine are noise; every target is a ratio of two timings taken
back to back in this process (or in sibling subprocesses for the memory figures). One
module per section:

1. ``engine`` (:mod:`benchmarks.bench_engine_vs_kernel`): the simpy engine vs the same
   request batches in a plain loop. Target: kernel / engine >= 0.5.
2. ``batching`` (:mod:`benchmarks.bench_batching`): ``benchmarks/engine_batching.py``
   (logging policy, configured window vs window 0). Target: batched / naive requests/s >= 20.
3. ``scale`` (:mod:`benchmarks.bench_scale`): an A/B day at 1x, 4x and 16x the traffic,
   each in its own subprocess for a clean peak RSS. Targets: time per request ratio <= 1.25
   and peak-RSS growth of the run far below the request growth.
4. ``training`` (:mod:`benchmarks.bench_training`): samples/s of the recall step of every
   learned model, and its ratio to ``mixed``.
5. ``faiss`` (:mod:`benchmarks.bench_faiss`): recall@50 against flat and queries/s of flat,
   HNSW and IVF at the default pool size and 10x / 100x, and on random-recaller vectors.

6. ``import`` (:mod:`benchmarks.bench_import`): ``python -m abtest import kuairand`` of a
   generated 10-million-row KuaiRand-format log vs a plain ``polars.scan_csv(...)
   .sink_parquet(...)`` of the same file, each in a subprocess. Targets: peak RSS < 2 GB;
   the time and memory ratios to plain polars reported.

7. ``calibrate`` (:mod:`benchmarks.bench_calibrate`): ``python -m abtest calibrate`` at 1x
   and 4x the logged traffic (same users and days), each in a subprocess. Target: fit time
   per exposure at 4x / 1x <= 1.25; the peak-RSS growth reported.
8. ``interleaving`` (:mod:`benchmarks.bench_interleaving`): requests/s of an interleaving
   day (both arms serve every request) against an A/B day. Target: >= 0.5.

Plus ``profile`` (:mod:`benchmarks.bench_profile`): cProfile of a 1-day A/B run with
RecallPolicy arms, and the engine time with faiss on one OpenMP thread vs its default.

``--quick`` uses a 2,000-user world (its logs are generated once under ``.cache/logs``)
and smaller sizes; the full run uses the default ``scenarios.yaml`` world.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_batching import bench_batching  # noqa: E402
from benchmarks.bench_calibrate import bench_calibrate  # noqa: E402
from benchmarks.bench_engine_vs_kernel import bench_engine_vs_kernel  # noqa: E402
from benchmarks.bench_faiss import bench_faiss  # noqa: E402
from benchmarks.bench_import import bench_import  # noqa: E402
from benchmarks.bench_interleaving import bench_interleaving  # noqa: E402
from benchmarks.bench_profile import bench_profile  # noqa: E402
from benchmarks.bench_scale import bench_scale, scale_child  # noqa: E402
from benchmarks.bench_training import bench_training  # noqa: E402
from benchmarks.section import Section, print_table  # noqa: E402
from benchmarks.worlds import make_config, pre_logs  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small world and sizes (~1 min)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument(
        "--only", default="", help="comma-separated sections (engine,batching,scale,...)"
    )
    parser.add_argument("--scale-child", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batching-child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_sections(names: list[str], quick: bool, config, world) -> list[Section]:
    """Run the named sections in order, timing each (all of them when `names` is empty)."""
    plan = {
        "engine": lambda: bench_engine_vs_kernel(config, world, 1 if quick else 2),
        "batching": lambda: bench_batching(config, world, quick),
        "scale": lambda: bench_scale(quick),
        "training": lambda: bench_training(config, 3 if quick else 5, 2 if quick else 4),
        "faiss": lambda: bench_faiss(
            config, world, (1, 10) if quick else (1, 10, 100), 500 if quick else 2000
        ),
        "profile": lambda: bench_profile(config, world),
        "import": lambda: bench_import(1_000_000 if quick else 10_000_000),
        "calibrate": lambda: bench_calibrate(quick),
        "interleaving": lambda: bench_interleaving(config, world),
    }
    sections = []
    for name in names or list(plan):
        t0 = time.perf_counter()
        print(f"[{name}] ...", file=sys.stderr, flush=True)
        sec = plan[name]()
        sec.seconds = time.perf_counter() - t0
        print(f"[{name}] {sec.seconds:.1f} s", file=sys.stderr, flush=True)
        sections.append(sec)
    return sections


def main() -> None:
    args = parse_args()
    if args.scale_child is not None:
        print(json.dumps(scale_child(args.quick, args.scale_child)))
        return
    from simulator.synthetic import SyntheticWorld

    quick = args.quick
    config = make_config(quick)
    world = SyntheticWorld(config)
    if args.batching_child:
        sec = bench_batching(config, world, quick, what_if=False)
        print(json.dumps(sec.to_dict()))
        return

    pre_logs(config)  # generate the logs first if missing (not timed by any section)
    sections = run_sections([s for s in args.only.split(",") if s], quick, config, world)
    result = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "quick": quick,
        "world": {"n_users": config.world.n_users, "n_items": config.world.n_items},
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "platform": platform.platform(),
            "note": "shared machine: absolute times are noisy, ratios are the figures",
        },
        "sections": {s.name: s.to_dict() for s in sections},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(sections)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
