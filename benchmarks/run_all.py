"""Every performance figure of the harness as a ratio measured in one run, written to JSON.

    .venv/bin/python benchmarks/run_all.py [--quick] [--out benchmarks/results.json]
    .venv/bin/python -m benchmarks.run_all [--quick] [--out PATH]      (the same)

Absolute times on a shared machine are noise; every target is a ratio of two timings taken
back to back in this process (or in sibling subprocesses for the memory figures):

1. ``engine_vs_kernel``: one simulated day of two RecallPolicy arms (random recaller, the
   shared noisy-truth ranker) served by the simpy engine, vs the same recorded request
   batches replayed through ``policy.serve`` + ``world.respond`` in a plain loop. Target:
   kernel / engine >= 0.5.
2. ``batching``: ``benchmarks/engine_batching.py`` (logging policy, configured window vs
   window 0). Target: batched / naive requests/s >= 20.
3. ``scale``: an A/B day (two Uniform arms, ``simulate_period``) at 1x, 4x and 16x the
   traffic (``traffic.sessions_per_user_day`` scaled, users fixed), each in its own
   subprocess for a clean peak RSS. Targets: time per request ratio <= 1.25 and peak-RSS
   growth of the run far below the request growth.
4. ``training``: samples/s of the recall step (``Trainer.recall_loss`` + backward + AdamW,
   batch 1024) of every learned model, and its ratio to ``mixed``.
5. ``faiss``: recall@50 against flat and queries/s of flat, HNSW and IVF on clustered
   synthetic vectors at the default pool size and 10x / 100x, and on random-recaller vectors.

Plus ``profile``: cProfile of a 1-day A/B run with RecallPolicy arms (top entries by
cumulative time), and the engine time with faiss on one OpenMP thread vs its default.

``--quick`` uses a 2,000-user world (its logs are generated once under ``.cache/logs``)
and smaller sizes; the full run uses the default ``scenarios.yaml`` world.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks` and `tests` importable
    sys.path.insert(0, str(ROOT))

from core.config import Config, config_from_dict  # noqa: E402
from tests.conftest import default_tree  # noqa: E402

SCALES = (1, 4, 16)


# ---------------------------------------------------------------------------- plumbing


@dataclass
class Section:
    """One benchmark's figures and the targets checked on them."""

    name: str
    figures: dict = field(default_factory=dict)
    targets: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def target(self, metric: str, value: float, op: str, bound: float | None, note: str = ""):
        ok = None
        if bound is not None:
            ok = bool(value >= bound) if op == ">=" else bool(value <= bound)
        self.targets.append(
            {"metric": metric, "value": value, "target": f"{op} {bound:g}" if bound else "report"}
            | {"ok": ok, "note": note}
        )

    def to_dict(self) -> dict:
        return {"seconds": round(self.seconds, 2), "figures": self.figures, "targets": self.targets}


def config_tree(quick: bool) -> dict:
    """The default world, or the --quick one: 2,000 users, 3 pre-period days + 1."""
    tree = default_tree()
    if quick:
        tree["world"]["n_users"] = 2000
        tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    return tree


def make_config(quick: bool, traffic_scale: float = 1.0) -> Config:
    tree = config_tree(quick)
    tree["traffic"]["sessions_per_user_day"] *= traffic_scale
    return config_from_dict(tree, "quick" if quick else "default")


def rss_now_mb() -> float:
    """Current resident set size (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """Peak RSS since the last :func:`reset_peak_rss` (VmHWM), else since the process start."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (Linux >= 4.0: ``5 > /proc/self/clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def random_recaller(world, seed: int):
    """The `random` floor over the world's pools."""
    from models.data import ItemTable
    from models.zoo import Recaller

    return Recaller("random", None, ItemTable.from_world(world), seed=seed)


def recall_arms(config: Config, world):
    """Control and treatment: two random recallers, one shared noisy-truth ranker."""
    from abtest.serving import NoisyTruthRanker, RecallPolicy

    ranker = NoisyTruthRanker(world, config.seed, config.serving.ranker_noise)
    arms = tuple(
        RecallPolicy(name, world, random_recaller(world, seed), ranker, config.serving.candidates)
        for name, seed in (("control", 1), ("treatment", 2))
    )
    for policy in arms:  # build the faiss indexes outside the timed part
        for s in range(len(world.scenarios)):
            policy.index(s)
    return arms


def pre_logs(config: Config):
    """The pre-period logs of the config's world (generated once, cached under .cache/logs)."""
    from abtest.pipeline import ensure_logs
    from simulator.logs import read_logs

    return read_logs(ensure_logs(config, progress=False), scenarios=config.scenario_names)


# ---------------------------------------------------------------------------- 1. engine vs kernel


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


# ---------------------------------------------------------------------------- 2. batching


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
        one = _child(["--batching-child"], quick, env)
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


# ---------------------------------------------------------------------------- 3. scale


def scale_child(quick: bool, factor: float) -> dict:
    """One A/B day at `factor` x traffic; run in a fresh process (see bench_scale)."""
    import polars as pl

    from abtest.online.experiment import check_allocation, simulate_period
    from simulator.generation import log_dir_for
    from simulator.policies import UniformPolicy
    from simulator.synthetic import SyntheticWorld

    base = make_config(quick)
    config = make_config(quick, factor)
    # The histories are warmed from the base world's pre-period clicks (only clicks are read,
    # so the log does not set the peak RSS); the experiment day gets `factor` x sessions.
    path = log_dir_for(base) / "logs.parquet"  # generated by the parent (pre_logs)
    clicks = pl.scan_parquet(path).filter(pl.col("click") == 1).collect()
    world = SyntheticWorld(config)
    layer = check_allocation(config)
    users = np.arange(world.users.n)
    route = np.where(layer.arm_index(users) == 1, 1, 0)
    arms = (UniformPolicy(world, 1, "control"), UniformPolicy(world, 2, "treatment"))
    gc.collect()
    before = rss_now_mb()
    reset = reset_peak_rss()  # so the peak is the run's, not the imports' or the log read's
    _, engine = simulate_period(config, world, arms, clicks, route, days=1, seed=config.seed)
    es = engine.stats
    peak = peak_rss_mb()
    return {
        "factor": factor,
        "sessions_per_user_day": config.traffic.sessions_per_user_day,
        "requests": es.requests,
        "engine_seconds": es.wall_seconds,
        "us_per_request": 1e6 * es.wall_seconds / es.requests,
        "mean_batch": es.requests / es.batches,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "peak_is_run_only": reset,
        "run_growth_mb": max(peak - before, 0.0),
    }


def _child(args: list[str], quick: bool, env: dict | None = None) -> dict:
    """This script run again in a child process with `args`; its last stdout line (JSON)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), *args, *(["--quick"] if quick else [])]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_scale(quick: bool) -> Section:
    sec = Section("scale")
    rows = []
    for f in SCALES:
        rows.append(_child(["--scale-child", str(f)], quick))
    one = rows[0]
    sec.figures = {
        "scaled": "traffic.sessions_per_user_day (users, items and per-user state fixed)",
        "policies": "two UniformPolicy arms, simulate_period, 1 day, no twin",
        "runs": [
            {k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in rows
        ],
    }
    for r in rows[1:]:
        f = r["factor"]
        sec.target(
            f"t/request({f:g}x) / t/request(1x)",
            round(r["us_per_request"] / one["us_per_request"], 3),
            "<=",
            1.25,
            f"requests x{r['requests'] / one['requests']:.1f}",
        )
    last = rows[-1]
    growth = last["peak_rss_mb"] / one["peak_rss_mb"]
    n_ratio = last["requests"] / one["requests"]
    sec.target(
        f"peak RSS({last['factor']:g}x) / peak RSS(1x)",
        round(growth, 3),
        "<=",
        1.5,
        f"requests x{n_ratio:.1f}; peak {one['peak_rss_mb']:.0f} -> {last['peak_rss_mb']:.0f} MB",
    )
    run_ratio = last["run_growth_mb"] / max(one["run_growth_mb"], 1.0)
    sec.target(
        f"run RSS growth({last['factor']:g}x) / growth(1x)",
        round(run_ratio, 3),
        "<=",
        4.0,
        f"requests x{n_ratio:.1f}; growth {one['run_growth_mb']:.0f} -> "
        f"{last['run_growth_mb']:.0f} MB over the RSS before the run",
    )
    return sec


# ---------------------------------------------------------------------------- 4. training


def bench_training(config: Config, steps: int, rounds: int, seed: int = 0) -> Section:
    import torch

    from abtest.pipeline import load_data
    from models.train import TrainConfig, Trainer, make_optimizer
    from models.zoo import LEARNED, ModelConfig, PerScenario

    sec = Section("training")
    data = load_data(config, progress=False)
    tcfg = TrainConfig()
    torch.set_num_threads(tcfg.threads)  # as Trainer.run
    ex = data.train
    rng = np.random.default_rng(seed)
    scen = data.requests.scenario[ex.request]
    by_scen = [np.flatnonzero(scen == s) for s in range(data.spec.n_scenarios)]

    def batch(pool: np.ndarray) -> np.ndarray:
        return rng.choice(pool, tcfg.batch_size, replace=pool.size < tcfg.batch_size)

    steppers = {}
    for name in (*LEARNED, "sass_pretrain"):
        trainer = Trainer(data, ModelConfig(name.removesuffix("_pretrain"), data.spec), tcfg, seed)
        trainer.progress = False
        model = trainer.model
        model.train()
        # `single` trains one mixed tower per scenario on that scenario's rows (Trainer.run):
        # its steps go round the scenarios, each on its own tower.
        jobs = (
            [(t, by_scen[s]) for s, t in enumerate(model.towers) if by_scen[s].size]
            if isinstance(model, PerScenario)
            else [(model, np.arange(len(ex)))]
        )
        opts = [make_optimizer(m, tcfg) for m, _ in jobs]

        def step(i: int, name=name, jobs=jobs, opts=opts, trainer=trainer) -> None:
            m, pool = jobs[i % len(jobs)]
            idx = batch(pool)
            if name == "sass_pretrain":
                pre = trainer.data.pretrain
                j = rng.choice(len(pre), tcfg.batch_size, replace=False)
                loss = trainer.pretrain_loss(m, pre.request[j], pre.item[j])
            else:
                loss = trainer.recall_loss(m, ex.request[idx], ex.item[idx])
            opt = opts[i % len(jobs)]
            opt.zero_grad()
            loss.backward()
            opt.step()

        for i in range(2):  # warm-up
            step(i)
        steppers[name] = step
    # Models take turns, a few steps each per round, and each keeps its best round: load
    # from other users of the machine then hits every model alike.
    rates = dict.fromkeys(steppers, 0.0)
    for _ in range(rounds):
        for name, step in steppers.items():
            t0 = time.perf_counter()
            for i in range(steps):
                step(i)
            rates[name] = max(rates[name], steps * tcfg.batch_size / (time.perf_counter() - t0))
    sec.figures = {
        "batch_size": tcfg.batch_size,
        "steps_per_round": steps,
        "rounds": rounds,
        "torch_threads": tcfg.threads,
        "train_examples": len(ex),
        "samples_per_s": {k: round(v) for k, v in rates.items()},
        "note": "single: one mixed tower per scenario, steps round-robin over scenarios; "
        "sass_pretrain: the contrastive pre-training step (Trainer.pretrain_loss)",
    }
    for name, rate in rates.items():
        sec.target(f"samples/s {name} / mixed", round(rate / rates["mixed"], 3), "", None)
    return sec


# ---------------------------------------------------------------------------- 5. faiss


def clustered(n: int, dim: int, centers: np.ndarray, spread: float, rng) -> np.ndarray:
    c = centers[rng.integers(0, centers.shape[0], n)]
    x = c + spread * rng.standard_normal((n, dim)) / np.sqrt(dim)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def bench_faiss(config: Config, world, multiples: tuple[int, ...], n_queries: int) -> Section:
    from models.index import IndexSpec, ItemIndex, compare_indexes, recall_vs_flat

    sec = Section("faiss")
    rng = np.random.default_rng(7)
    base = max(sc.pool.size for sc in world.scenarios)
    dim = config.world.latent_dim
    centers = rng.standard_normal((config.world.n_categories, dim))
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    cases = []
    for m in multiples:
        n = base * m
        items = clustered(n, dim, centers, 0.7, rng)
        queries = clustered(n_queries, dim, centers, 1.0, rng)
        cases.append((f"clustered x{m}", np.arange(n), items, queries))
    rec = random_recaller(world, 1)
    pool, vecs = rec.item_vectors(0)
    users = rng.choice(world.users.n, n_queries)
    q = rec.user_vectors({"scenario": np.zeros(n_queries, dtype=np.int64), "user_id": users})
    cases.append(("random recaller x1", pool, vecs, q))
    rows = []
    for label, ids, items, queries in cases:
        reports = compare_indexes(ids, items, queries, k=50)
        flat_qps = n_queries / reports[0].search_seconds
        for r in reports:
            qps = n_queries / r.search_seconds
            rows.append(
                {
                    "vectors": label,
                    "n_items": r.n_items,
                    "dim": items.shape[1],
                    "kind": r.kind,
                    "recall@50_vs_flat": round(r.recall_vs_flat, 4),
                    "build_s": round(r.build_seconds, 3),
                    "queries_per_s": round(qps),
                    "speedup_vs_flat": round(qps / flat_qps, 2),
                }
            )
            if r.kind != "flat":
                sec.target(
                    f"{r.kind} {label} (N={r.n_items:,}): qps / flat qps",
                    round(qps / flat_qps, 2),
                    "",
                    None,
                    f"recall@50 {r.recall_vs_flat:.3f}",
                )
    # IVF's recall falls with N at the default nprobe (8 of ~4 sqrt(N) lists): sweep nprobe on
    # one built index (sizes up to 10x; the 100x build alone takes ~30 s).
    for label, ids, items, queries in cases:
        if items.shape[0] > 10 * base:
            continue
        flat = ItemIndex(ids, items, IndexSpec("flat"))
        t0 = time.perf_counter()
        flat.search(queries, 50)
        flat_qps = n_queries / (time.perf_counter() - t0)
        ivf = ItemIndex(ids, items, IndexSpec("ivf"))
        for nprobe in (8, 32, 128):
            ivf.index.nprobe = min(nprobe, ivf.index.nlist)
            t0 = time.perf_counter()
            ivf.search(queries, 50)
            qps = n_queries / (time.perf_counter() - t0)
            rows.append(
                {
                    "vectors": label,
                    "n_items": ivf.n_items,
                    "dim": items.shape[1],
                    "kind": f"ivf nlist={ivf.index.nlist} nprobe={ivf.index.nprobe}",
                    "recall@50_vs_flat": round(recall_vs_flat(ivf, flat, queries, 50), 4),
                    "build_s": None,
                    "queries_per_s": round(qps),
                    "speedup_vs_flat": round(qps / flat_qps, 2),
                }
            )
    sec.figures = {"queries": n_queries, "k": 50, "default_pool": base, "rows": rows}
    return sec


# ---------------------------------------------------------------------------- profile


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


# ---------------------------------------------------------------------------- main


def print_table(sections: list[Section]) -> None:
    rows = [("section", "metric", "value", "target", "ok")]
    for s in sections:
        for t in s.targets:
            ok = "" if t["ok"] is None else ("yes" if t["ok"] else "NO")
            rows.append((s.name, t["metric"], f"{t['value']:g}", t["target"], ok))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small world and sizes (~1 min)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    parser.add_argument(
        "--only", default="", help="comma-separated sections (engine,batching,scale,...)"
    )
    parser.add_argument("--scale-child", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--batching-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_child is not None:
        print(json.dumps(scale_child(args.quick, args.scale_child)))
        return
    if args.batching_child:
        from simulator.synthetic import SyntheticWorld

        config = make_config(args.quick)
        sec = bench_batching(config, SyntheticWorld(config), args.quick, what_if=False)
        print(json.dumps(sec.to_dict()))
        return

    from simulator.synthetic import SyntheticWorld

    quick = args.quick
    config = make_config(quick)
    world = SyntheticWorld(config)
    pre_logs(config)  # generate the logs first if missing (not timed by any section)
    plan = {
        "engine": lambda: bench_engine_vs_kernel(config, world, 1 if quick else 2),
        "batching": lambda: bench_batching(config, world, quick),
        "scale": lambda: bench_scale(quick),
        "training": lambda: bench_training(config, 3 if quick else 5, 2 if quick else 4),
        "faiss": lambda: bench_faiss(
            config, world, (1, 10) if quick else (1, 10, 100), 500 if quick else 2000
        ),
        "profile": lambda: bench_profile(config, world),
    }
    only = [s for s in args.only.split(",") if s] or list(plan)
    sections = []
    for name in only:
        t0 = time.perf_counter()
        print(f"[{name}] ...", file=sys.stderr, flush=True)
        sec = plan[name]()
        sec.seconds = time.perf_counter() - t0
        print(f"[{name}] {sec.seconds:.1f} s", file=sys.stderr, flush=True)
        sections.append(sec)
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
