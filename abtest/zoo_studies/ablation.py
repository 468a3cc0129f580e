"""The paper's ablations of SASS, on the config's world: each variant takes out or changes
one part (a :class:`models.zoo.ModelConfig` flag, its own training hash), scored in every
scenario next to the full model, with its paired difference to it over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from abtest.zoo_studies.estimates import MeanSe, paired_difference
from abtest.zoo_studies.scoring import STUDY_METRICS, Variant, score_variants
from core.config import Config
from models.train import TrainConfig

FULL = "sass"
VARIANTS = (
    Variant(FULL, "sass", {}, "the full model: 2 SAT layers, user and item transfer"),
    Variant("no adaptive gate", "sass", {"adaptive_gate": False}, "update gate only (a = 1)"),
    Variant("no pre-training", "sass_base", {}, "= sass_base"),
    Variant("no auxiliary loss", "sass", {"aux_loss": False}, "no loss on the global network"),
    Variant("transfer depth 1", "sass", {"layers": 1}, "1 SAT layer"),
    Variant("transfer depth 3", "sass", {"layers": 3}, "3 SAT layers"),
    Variant("user-only transfer", "sass", {"transfer": "user"}, "one item network for all"),
    Variant("mixed", "mixed", {}, "reference: one model, no scenario input"),
)


@dataclass(frozen=True)
class AblationRow:
    variant: Variant
    scores: dict[str, dict[str, MeanSe]]  # scenario -> metric -> over seeds
    vs_full: dict[str, dict[str, MeanSe]]  # scenario -> metric -> variant − full, paired
    train_seconds: float


@dataclass(frozen=True)
class Ablation:
    scenarios: tuple[str, ...]
    traffic: dict[str, float]
    seeds: tuple[int, ...]
    rows: tuple[AblationRow, ...]
    requests: dict[str, int]
    config_fingerprint: str
    data_hash: str


def ablation(
    config: Config,
    seeds: Sequence[int],
    train_cfg: TrainConfig | None = None,
    variants: Sequence[Variant] = VARIANTS,
    progress: bool = True,
) -> Ablation:
    """Every variant × seed on the config's logs; differences against the full model."""
    if variants[0].label != FULL:
        raise ValueError(f"the first variant must be the full model {FULL!r}")
    world = score_variants(config, variants, seeds, train_cfg or TrainConfig(), progress)
    full = world.scores[FULL]

    def versus_full(label: str) -> dict[str, dict[str, MeanSe]]:
        mine = world.scores[label]
        return {
            s: {m: paired_difference(mine[s][m], full[s][m]) for m in STUDY_METRICS}
            for s in config.scenario_names
        }

    rows = tuple(
        AblationRow(v, world.scores[v.label], versus_full(v.label), world.train_seconds[v.label])
        for v in variants
    )
    return Ablation(
        config.scenario_names,
        {s.name: s.traffic_share for s in config.scenarios},
        tuple(seeds),
        rows,
        world.requests,
        config.fingerprint(),
        world.data_hash,
    )
