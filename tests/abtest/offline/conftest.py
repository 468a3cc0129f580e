"""Shared by the offline tests: a tiny world with good overlap, its logs (generated once for
the package) and one full run on them, popular against random."""

from __future__ import annotations

from pathlib import Path

import pytest

from abtest.offline.results import EstimatorResult
from abtest.offline.run import run_offline
from core.config import config_from_dict
from simulator.generation import generate
from tests.conftest import tiny_tree

HIGH_TRAFFIC = ("home_feed", "immersive_video")


def overlap_tree() -> dict:
    """A tiny world with good overlap: small pools (100 items) and a 90% uniform slice, so the
    weighted estimators have a usable effective sample size in a few seconds of traffic."""
    tree = tiny_tree(n_items=100, n_users=1000)
    tree["periods"].update({"pre_days": 3, "experiment_days": 2})
    tree["logging_policy"]["epsilon"] = 0.9
    return tree


def within(d: EstimatorResult, truth: float, k: float) -> bool:
    """`d`'s estimate is within `k` of its standard errors (from its CI) of `truth`."""
    se = (d.ci_high - d.ci_low) / (2 * 1.959964)
    return abs(d.estimate - truth) <= k * se


def write_logs(folder: Path, logs) -> Path:
    """`logs` as `folder`/logs.parquet (a log folder without a world)."""
    folder.mkdir(parents=True, exist_ok=True)
    logs.write_parquet(folder / "logs.parquet")
    return folder


@pytest.fixture(scope="package")
def world_logs(tmp_path_factory):
    root = tmp_path_factory.mktemp("offline")
    cfg = config_from_dict(overlap_tree(), "tiny")
    generate(cfg, root / "logs", progress=False)
    return cfg, root


@pytest.fixture(scope="package")
def replayed(world_logs):
    """popular against random with every estimator, written to an output folder."""
    cfg, root = world_logs
    run = run_offline(cfg, "popular", "random", root / "logs", out_dir=root / "out")
    return run, root / "out"
