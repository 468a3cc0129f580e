"""The headline job: logs -> trained models -> simulated A/B (+ truth twin) -> statistics.

``python -m abtest run --treatment sass --control mixed`` calls :func:`run_ab` and writes
the report of the results it returns (:mod:`abtest.report`) into the same folder. The world,
its logs and the models come from the config's seed (cached under ``.cache/``); the run's
own ``seed`` keys the experiment period's randomness (arrivals, responses, ranker noise),
so two seeds are two independent experiments on the same world and models.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from abtest.online.analysis import AnalysisOptions, analyse
from abtest.online.experiment import ARMS, ExperimentData, check_experiment_size, run_experiment
from abtest.online.results import Checkpoint, ExperimentResults, RunInfo
from core.config import Config
from core.digest import file_sha256
from core.errors import UserError


@dataclass(frozen=True)
class RunOptions:
    treatment: str
    control: str
    days: int | None = None  # default: config.periods.experiment_days
    seed: int | None = None  # default: config.seed
    out: Path | None = None  # the folder events.parquet goes into (with save_events)
    cuped: bool = True
    correction: str = "bh"
    bootstrap: int = 0
    twin: bool = True
    save_events: bool = False
    replay: Path | None = None  # a log folder (or parquet file) whose sessions drive arrivals
    fixed_sessions: bool = False
    workers: int = 1  # > 1: Ray tasks, one per user shard (abtest.online.scale)
    world: Path | None = None  # a fitted world (calibrate) instead of the config's synthetic one
    logs: Path | None = None  # a log folder (generated or imported) instead of the config's
    epochs: int | None = None  # recall fine-tuning epochs (default: TrainConfig's)
    progress: bool = True
    command: str = ""


def default_out(treatment: str, control: str) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("reports") / f"{stamp}-{safe_name(treatment)}-vs-{safe_name(control)}"


def safe_name(name: str) -> str:
    """A model name as a file-name part (an outside model's may hold ':' or '/')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.rstrip("/")).strip("_.") or "model"


def world_label(world: Path | None, logs: Path | None = None) -> str:
    """What a run's report says of the world it simulated."""
    if world is None:
        where = f" of the log folder {logs}" if logs is not None else ""
        return f"synthetic (the config's world{where}: the twin's lift is the ground truth)"
    source = f" in {logs}" if logs is not None else ""
    return f"fitted from logs{source}: {world} (the twin's lift is model-based, not ground truth)"


def serving_warnings(config: Config, world) -> tuple[str, ...]:
    """Scenarios where the recall stage cannot make the arms differ: the whole pool fits in
    the candidate list, so both arms recall every item and the shared ranker (noisy_truth)
    shows the same slates."""
    if config.serving.ranker != "noisy_truth":
        return ()
    k = config.serving.candidates
    return tuple(
        f"{sc.name}: its pool ({sc.pool.size} items) fits in the {k} recalled candidates "
        "(serving.candidates), so both arms recall the whole pool and the shared ranker shows "
        "the same slates: the arms cannot differ there (the true lift is 0 by construction)"
        for sc in world.scenarios
        if sc.pool.size <= k
    )


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass
class Prepared:
    """A world, its pre-period logs and ready models: what every simulation command needs."""

    world: object
    logs: object
    recallers: dict
    checkpoints: dict[str, Checkpoint]  # model name -> its checkpoint file, if it has one
    data: object


def prepare(
    config: Config,
    names: list[str],
    progress: bool = True,
    epochs: int | None = None,
    world: Path | None = None,
    log_dir: Path | None = None,
) -> Prepared:
    """Logs generated if missing, models trained if missing (cached), the world built.
    `epochs` overrides the default fine-tuning epochs (another training hash, so another
    cached checkpoint). `world`: a fitted world's folder (``calibrate``), fitted from the
    config's logs, serves instead of the synthetic world (its twin's truth is model-based).
    `log_dir`: the models train on this log folder and the run starts from its pre-period
    instead of the config's generated logs (`config` is then
    :func:`abtest.calibration.config_for_logs`; an imported folder needs `world`)."""
    from abtest.pipeline import get_model, load_data, load_folder_data, train_config
    from models.zoo import check_model_spec
    from simulator.generation import log_dir_for
    from simulator.logs import read_logs
    from simulator.synthetic import SyntheticWorld

    for name in names:
        check_model_spec(name)
    _say(f"[1/4] logged pre-period traffic ({config.periods.pre_days} days)")
    if log_dir is not None:
        _say(f"      from {log_dir}")
        data = load_folder_data(log_dir, config).data
        if tuple(data.scenario_names) != config.scenario_names:
            raise UserError(
                f"{log_dir}: its scenarios ({', '.join(data.scenario_names)}) are not the "
                f"run's ({', '.join(config.scenario_names)})"
            )
    else:
        data = load_data(config, progress=progress)
        log_dir = log_dir_for(config)
    recallers, checkpoints = {}, {}
    for name in dict.fromkeys(names):
        _say(f"[2/4] model {name!r} (seed {config.seed})")
        ready = get_model(
            name, data, config.seed, train_cfg=train_config(epochs), progress=progress
        )
        how = f"trained in {ready.train_seconds:.0f} s" if ready.trained_now else "cached"
        _say(f"      {how}" + (f": {ready.checkpoint}" if ready.checkpoint else ""))
        recallers[name] = ready.recaller
        checkpoints[name] = (
            Checkpoint(str(ready.checkpoint), file_sha256(ready.checkpoint))
            if ready.checkpoint
            else Checkpoint(None, None)
        )
    if world is not None:
        from abtest.calibration import load_fitted_world

        served, _ = load_fitted_world(world, config, log_dir)
    else:
        served = SyntheticWorld(config)
    logs = read_logs(log_dir / "logs.parquet", scenarios=config.scenario_names)
    return Prepared(served, logs, recallers, checkpoints, data)


def check_run(config: Config, opts: RunOptions) -> None:
    """Refuse, before any work, options that cannot run together or would not fit in memory."""
    if opts.save_events and opts.workers > 1:
        raise UserError("--save-events is not supported with --workers (run without it)")
    if opts.world is not None and opts.workers > 1:
        raise UserError("--world does not run as Ray shards yet (run without --workers)")
    days = opts.days or config.periods.experiment_days
    # the A/B sums, the twin's and their total; each Ray shard returns full-size arrays
    check_experiment_size(config, days, copies=(3 if opts.twin else 1) * opts.workers)


def run_ab(config: Config, opts: RunOptions) -> ExperimentResults:
    """Run the whole experiment; returns its results (events.parquet, if asked for, is
    written into ``opts.out``)."""
    from abtest.serving import build_policy
    from simulator.logs import read_logs

    if opts.treatment == opts.control:
        _say(f"note: treatment and control are both {opts.treatment!r}: this is an A/A test")
    days = opts.days or config.periods.experiment_days
    seed = config.seed if opts.seed is None else opts.seed
    check_run(config, opts)
    if opts.save_events and opts.out is None:
        raise ValueError("save_events needs an output folder (RunOptions.out)")
    out = opts.out
    t_start = time.perf_counter()
    replay = None
    if opts.replay is not None:  # checked before anything slow runs
        path = opts.replay / "logs.parquet" if opts.replay.is_dir() else opts.replay
        replay = read_logs(path, scenarios=config.scenario_names)
    prep = prepare(
        config,
        [opts.control, opts.treatment],
        opts.progress,
        opts.epochs,
        world=opts.world,
        log_dir=opts.logs,
    )
    policies = tuple(
        build_policy(name, prep.world, prep.recallers[name], config.serving, seed)
        for name in (opts.control, opts.treatment)
    )
    _say(
        f"[3/4] simulating {days} experiment days: {opts.treatment} (treatment) vs "
        f"{opts.control} (control)" + (", then the truth twin" if opts.twin else "")
    )
    if opts.replay is not None:
        _say(f"      arrivals: the sessions logged in {opts.replay}")
    exp = _simulate(config, opts, prep, policies, days=days, seed=seed, out=out, replay=replay)
    _say(
        f"      {exp.requests:,} requests in {exp.wall_seconds:.0f} s "
        f"({exp.requests_per_second:,.0f}/s)"
        + (f"; twin {exp.twin_wall_seconds:.0f} s" if opts.twin else "")
    )
    _say("[4/4] statistics and report")
    traffic = {s.name: s.traffic_share for s in config.scenarios}
    expected = {a: config.experiment.allocation[a] for a in ARMS}
    analysis_opts = AnalysisOptions(
        alpha=config.experiment.alpha,
        cuped=opts.cuped,
        correction=opts.correction,
        bootstrap=opts.bootstrap,
        seed=seed,
    )
    results = analyse(exp, traffic, expected, analysis_opts)
    if not results.scenarios:
        raise UserError("the experiment served no traffic: nothing to analyse")
    traffic_source = (
        "world"
        if opts.replay is None
        else f"replay of {opts.replay}" + (" (fixed sessions)" if opts.fixed_sessions else "")
    )
    return dataclasses.replace(results, run=_run_info(config, opts, prep, t_start, traffic_source))


def _run_info(
    config: Config, opts: RunOptions, prep: Prepared, t_start: float, traffic_source: str
) -> RunInfo:
    """How to reproduce a run (A/B or interleaving) and what it used."""
    return RunInfo(
        command=opts.command,
        created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        config_fingerprint=config.fingerprint(),
        config=config.to_dict(),
        checkpoints=prep.checkpoints,
        traffic_source=traffic_source,
        total_seconds=round(time.perf_counter() - t_start, 1),
        world=world_label(opts.world, opts.logs),
        warnings=serving_warnings(config, prep.world),
    )


def _simulate(
    config: Config,
    opts: RunOptions,
    prep: Prepared,
    policies: tuple,
    *,
    days: int,
    seed: int,
    out: Path | None,
    replay: pl.DataFrame | None,
) -> ExperimentData:
    """The A/B period (and its twin), in this process or as Ray tasks."""
    from simulator.logs import start_datetime

    names = (opts.control, opts.treatment)
    if opts.workers > 1:
        from abtest.online.scale import run_sharded

        _say(f"      as {opts.workers} Ray tasks, one per user-hash shard")
        pre_end = start_datetime(prep.world) + dt.timedelta(days=config.periods.pre_days)
        return run_sharded(
            config,
            prep.recallers,
            prep.logs.filter(pl.col("timestamp") < pre_end),  # what the shards need
            names=names,
            days=days,
            seed=seed,
            workers=opts.workers,
            twin=opts.twin,
            replay=replay,
            fixed_sessions=opts.fixed_sessions,
        )
    return run_experiment(
        config,
        prep.world,
        policies,
        prep.logs,
        names=names,
        days=days,
        seed=seed,
        twin=opts.twin,
        save_events=out / "events.parquet" if opts.save_events and out else None,
        progress=opts.progress,
        replay=replay,
        fixed_sessions=opts.fixed_sessions,
    )


def simulate_twin(
    config: Config,
    prep: Prepared,
    control: str,
    treatment: str,
    *,
    days: int,
    seed: int,
    progress: bool,
):
    """Every user's outcome under both models (an A/B run plus its twin); for A/A (the same
    model twice) one run serves for both."""
    from abtest.online.experiment import simulate_period
    from abtest.online.user_stats import pre_period_stats
    from abtest.serving import build_policy
    from simulator.logs import start_datetime

    world = prep.world
    if control != treatment:
        policies = tuple(
            build_policy(n, world, prep.recallers[n], config.serving, seed)
            for n in (control, treatment)
        )
        return run_experiment(
            config, world, policies, prep.logs, names=(control, treatment), days=days,
            seed=seed, progress=progress,
        )  # fmt: skip
    policy = build_policy(control, world, prep.recallers[control], config.serving, seed)
    route = np.zeros(world.users.n, dtype=np.int64)
    stats, engine = simulate_period(
        config, world, [policy], prep.logs, route, days=days, seed=seed, progress=progress,
        desc=f"A/A population ({control})",
    )  # fmt: skip
    both = np.concatenate([stats.values, stats.values])
    start = config.periods.pre_days
    pre_end = start_datetime(world) + dt.timedelta(days=start)
    return ExperimentData(
        arms=(control, treatment),
        scenarios=config.scenario_names,
        seed=seed,
        start_day=start,
        days=days,
        assignment=np.zeros(world.users.n, dtype=np.int64),
        observed=stats,
        pre=pre_period_stats(prep.logs, config.scenario_names, world.users.n, pre_end),
        truth=both,
        requests=engine.stats.requests,
        exposures=engine.stats.exposures,
        wall_seconds=engine.stats.wall_seconds,
    )


def run_interleaving_job(config: Config, opts: RunOptions, variant: str = "recall"):
    """``run --design interleaving``: every user on the team-draft interleaving of the two
    models (:mod:`abtest.online.interleaving`) over the experiment period; returns the
    analysed :class:`~abtest.online.interleaving_analysis.InterleavingResults`."""
    from abtest.online.interleaving import run_interleaving
    from abtest.online.interleaving_analysis import analyse_interleaving
    from abtest.serving import build_policy

    if opts.treatment == opts.control:
        _say(f"note: both sides are {opts.treatment!r}: this is an interleaving A/A test")
    if opts.workers > 1:
        raise UserError("--design interleaving does not run as Ray shards yet (no --workers)")
    if opts.replay is not None:
        raise UserError("--design interleaving does not take --replay yet")
    days = opts.days or config.periods.experiment_days
    seed = config.seed if opts.seed is None else opts.seed
    check_experiment_size(config, days, copies=1)
    t_start = time.perf_counter()
    prep = prepare(
        config,
        [opts.control, opts.treatment],
        opts.progress,
        opts.epochs,
        world=opts.world,
        log_dir=opts.logs,
    )
    control, treatment = (
        build_policy(name, prep.world, prep.recallers[name], config.serving, seed)
        for name in (opts.control, opts.treatment)
    )
    _say(
        f"[3/4] simulating {days} experiment days: every user on the {variant} interleaving "
        f"of {opts.treatment} (treatment) and {opts.control} (control)"
    )
    data = run_interleaving(
        config, prep.world, control, treatment, prep.logs, names=(opts.control, opts.treatment),
        days=days, seed=seed, variant=variant, progress=opts.progress,
    )  # fmt: skip
    _say(
        f"      {data.requests:,} requests in {data.wall_seconds:.0f} s "
        f"({data.requests / max(data.wall_seconds, 1e-9):,.0f}/s)"
    )
    _say("[4/4] statistics and report")
    run = _run_info(config, opts, prep, t_start, "world")
    traffic = {s.name: s.traffic_share for s in config.scenarios}
    return analyse_interleaving(
        data, traffic, alpha=config.experiment.alpha, correction=opts.correction, run=run
    )
