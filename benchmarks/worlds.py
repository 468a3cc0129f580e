"""The worlds, configs, pre-period logs and recall arms the benchmark sections run on.

The full run uses the repository's default ``scenarios.yaml``; ``--quick`` a 2,000-user
world with 3 pre-period days and 1 experiment day.
"""

from __future__ import annotations

from pathlib import Path

from core.config import Config, config_from_dict, load_config_tree

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_YAML = ROOT / "scenarios.yaml"


def config_tree(quick: bool) -> dict:
    """The default world, or the --quick one: 2,000 users, 3 pre-period days + 1."""
    tree = load_config_tree(DEFAULT_YAML)
    if quick:
        tree["world"]["n_users"] = 2000
        tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    return tree


def make_config(quick: bool, traffic_scale: float = 1.0) -> Config:
    tree = config_tree(quick)
    tree["traffic"]["sessions_per_user_day"] *= traffic_scale
    return config_from_dict(tree, "quick" if quick else "default")


def random_recaller(world, seed: int):
    """The `random` floor over the world's pools."""
    from models.data import ItemTable
    from models.floors import RandomRecaller

    return RandomRecaller(ItemTable.from_world(world), seed=seed)


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
