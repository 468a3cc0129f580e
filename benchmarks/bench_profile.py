"""Section ``profile``: cProfile of a 1-day A/B run with RecallPolicy arms (top entries by
cumulative and by own time), and its engine time with faiss on one OpenMP thread vs its
default.
"""

from __future__ import annotations

import sys

from benchmarks.section import Section
from benchmarks.worlds import ROOT, pre_logs, recall_arms
from core.config import Config


def bench_profile(config: Config, world, top: int = 20) -> Section:
    import cProfile
    import pstats

    import faiss

    from abtest.online.experiment import run_experiment

    sec = Section("profile")
    logs = pre_logs(config)
    arms = recall_arms(config, world)

    def one_day() -> float:
        data = run_experiment(
            config,
            world,
            arms,
            logs,
            names=("control", "treatment"),
            days=1,
            seed=config.seed,
            twin=False,
            progress=False,
        )
        return data.wall_seconds

    prof = cProfile.Profile()
    prof.enable()
    one_day()
    prof.disable()
    stats = pstats.Stats(prof).stats
    total = max(v[3] for v in stats.values())

    def top_by(col: int) -> list[dict]:
        rows = []
        for (path, line, name), v in sorted(stats.items(), key=lambda kv: -kv[1][col]):
            if path == __file__:  # this benchmark's own wrapper
                continue
            where = path.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "")
            rows.append(
                {
                    "function": f"{where}:{line}({name})",
                    "ncalls": v[1],
                    "tottime_s": round(v[2], 3),
                    "cumtime_s": round(v[3], 3),
                    "cum_share": round(v[3] / total, 3),
                }
            )
            if len(rows) == top:
                break
        return rows

    # What-if measured without touching package code: faiss on one OpenMP thread. The engine
    # searches ~20 queries per call, where faiss's thread start-up outweighs the work.
    threads = faiss.omp_get_max_threads()
    default_s = min(one_day(), one_day())
    faiss.omp_set_num_threads(1)
    try:
        single_s = min(one_day(), one_day())
    finally:
        faiss.omp_set_num_threads(threads)
    sec.figures = {
        "run": "run_experiment, 1 day, RecallPolicy arms (random recaller), no twin",
        "profiled_seconds": round(total, 3),
        "top_cumulative": top_by(3),
        "top_self": top_by(2),
        "faiss_threads_default": threads,
        "engine_seconds_faiss_default_threads": round(default_s, 3),
        "engine_seconds_faiss_1_thread": round(single_s, 3),
    }
    sec.target(
        "engine time faiss 1 thread / default threads",
        round(single_s / default_s, 3),
        "",
        None,
        "what-if for a package change",
    )
    return sec
