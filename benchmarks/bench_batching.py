"""Section ``batching``: :func:`benchmarks.engine_batching.serve` with the configured window
vs window 0, the Amdahl fit of the two runs, and a one-thread BLAS/OpenMP what-if in a
child process. Target: batched / naive requests/s >= 20.
"""

from __future__ import annotations

import os

import numpy as np

from benchmarks.section import Section, run_child
from core.config import Config


def bench_batching(config: Config, world, quick: bool, what_if: bool = True) -> Section:
    from benchmarks.engine_batching import serve

    sec = Section("batching")
    batched, t_b, logs_b = serve(world, 1, config.engine.batch_window)
    naive, t_n, logs_n = serve(world, 1, 0.0)
    rate_b, rate_n = batched.requests / t_b, naive.requests / t_n
    # Amdahl: time = calls * c_call + requests * c_req in both runs; solve for the two costs.
    a = np.array([[batched.serve_calls, batched.requests], [naive.serve_calls, naive.requests]])
    c_call, c_req = np.linalg.solve(a.astype(float), np.array([t_b, t_n]))
    sec.figures = {
        "requests": batched.requests,
        "batch_window_s": config.engine.batch_window,
        "batched_mean_batch": round(batched.requests / batched.batches, 2),
        "naive_mean_batch": round(naive.requests / naive.batches, 2),
        "batched_requests_per_s": round(rate_b),
        "naive_requests_per_s": round(rate_n),
        "identical_events": bool(logs_b.equals(logs_n)),
        "fitted_us_per_serve_call": round(1e6 * c_call, 1),
        "fitted_us_per_request": round(1e6 * c_req, 1),
        "speedup_bound_infinite_batch": round((c_call + c_req) / c_req, 1) if c_req > 0 else None,
    }
    sec.target(
        "batched / naive requests/s",
        round(rate_b / rate_n, 2),
        ">=",
        20,
        f"naive mean batch {naive.requests / naive.serve_calls:.2f} per serve call; bound with "
        f"infinite batches {(c_call + c_req) / c_req:.1f}x",
    )
    if what_if:
        # The same two runs in a child process with BLAS/OpenMP pools of one thread: the engine
        # is single-threaded Python, and on a busy 2-core machine pool threads mostly spin.
        env = os.environ | {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        one = run_child(["--batching-child"], quick, env)
        sec.figures["one_thread_blas_omp"] = one["figures"]
        sec.target(
            "batched / naive, BLAS+OpenMP 1 thread",
            one["targets"][0]["value"],
            "",
            None,
            f"what-if; batched {one['figures']['batched_requests_per_s']} requests/s",
        )
        sec.target(
            "batched requests/s: 1 thread / default",
            round(one["figures"]["batched_requests_per_s"] / rate_b, 2),
            "",
            None,
            "what-if for a package change",
        )
    return sec
