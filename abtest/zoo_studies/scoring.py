"""Scoring model variants offline on one world: train (or load cached) each variant for each
seed on the config's logs and evaluate it in every scenario.

A :class:`Variant` is a zoo model with :class:`models.zoo.ModelConfig` overrides (the SASS
ablations); its overrides are part of the checkpoint's training hash, so every variant has
its own cached checkpoint and a study run twice trains nothing the second time.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from abtest.pipeline import get_model, load_data
from abtest.zoo_studies.estimates import MeanSe
from core.config import Config
from models.evaluate import evaluate
from models.train import TrainConfig

# what the studies report: the offline metrics at the recall depth the serving uses
STUDY_METRICS = ("recall@50", "ndcg@50")


@dataclass(frozen=True)
class Variant:
    """A row of a study: `model` from the zoo with ModelConfig `overrides`."""

    label: str
    model: str
    overrides: Mapping[str, Any] = field(default_factory=dict)
    about: str = ""


# {variant label: {scenario: {metric: MeanSe over seeds}}}
Scores = dict[str, dict[str, dict[str, MeanSe]]]


@dataclass(frozen=True)
class WorldScores:
    """The variants' offline scores on one world, and what it took."""

    scores: Scores
    requests: dict[str, int]  # validation requests with a click, per scenario
    data_hash: str
    train_seconds: dict[str, float]  # per variant, mean over seeds (0 where loaded from cache)


def score_variants(
    config: Config,
    variants: Sequence[Variant],
    seeds: Sequence[int],
    train_cfg: TrainConfig,
    progress: bool = True,
) -> WorldScores:
    """Every variant × seed on `config`'s logs (generated if missing), in every scenario."""
    data = load_data(config, progress=progress)
    scores: Scores = {}
    seconds: dict[str, float] = {}
    requests: dict[str, int] = {}
    for v in variants:
        per_seed, secs = [], []
        for seed in seeds:
            ready = get_model(
                v.model,
                data,
                seed,
                train_cfg=train_cfg,
                progress=progress,
                variant=dict(v.overrides),
            )
            per_seed.append(evaluate(ready.recaller, data))
            secs.append(ready.train_seconds if ready.trained_now else 0.0)
        requests = {s: m["requests"] for s, m in per_seed[0].items()}
        scores[v.label] = {
            s: {m: MeanSe.of([r.get(s, {}).get(m, float("nan")) for r in per_seed])
                for m in STUDY_METRICS}
            for s in config.scenario_names
        }  # fmt: skip
        seconds[v.label] = sum(secs) / len(secs)
        if progress:
            row = "  ".join(
                f"{s}={scores[v.label][s]['recall@50'].mean:.4f}" for s in config.scenario_names
            )
            print(f"  {v.label:<28} recall@50  {row}", file=sys.stderr)
    return WorldScores(scores, requests, data.data_hash, seconds)
