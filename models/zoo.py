"""The model zoo: the names of the recall models (SASS, the multi-scenario baselines and two
floors) and :class:`ModelConfig`, the architecture of a learned one.

Every learned model is a two-tower (:class:`models.towers.TwoTower`): a user side and an item
side, each an embedding layer (:mod:`models.parts`) followed by a *body* that maps it to a
D-dim vector, L2-normalised; score = inner product. Bodies take the row's scenario, so an
item gets one vector per scenario where the architecture has scenario-specific views.

=============  ================================================================================
name           body (user and item side alike)
=============  ================================================================================
mixed          one MLP for all scenarios; no scenario input (one item vector for all)
single         an independent mixed two-tower per scenario, trained on that scenario alone
shared_bottom  shared MLP bottom, per-scenario top
mmoe           shared experts, per-scenario softmax gate over them, per-scenario top
star           STAR: layers with W_shared ⊙ W_s and b_shared + b_s, partitioned normalisation,
               auxiliary scenario network added to the output
sass_base      SASS without pre-training: a global network and per-scenario networks joined
               layer by layer by SAT units, an output projection shared by the scenarios, a
               scenario bias network, and a global head for the auxiliary loss
sass           the same, fine-tuned from scenario-supervised contrastive pre-training
zeus           ZEUS: one mixed two-tower pre-trained on the next click of the cross-scenario
               click sequence, fine-tuned on every scenario's clicks, then copied per scenario
               and each copy fine-tuned on its scenario's (id embeddings frozen while
               fine-tuning; :mod:`models.zeus`)
popular        floor: per-scenario click popularity in the training window
random         floor: a random ranking per user
=============  ================================================================================

The bodies are in :mod:`models.bodies`, the torch models in :mod:`models.towers`, their
serving view in :mod:`models.recaller` and the floors in :mod:`models.floors`.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import UserError
from models.data import FeatureSpec
from models.floors import FLOOR_RECALLERS

LEARNED = ("mixed", "single", "shared_bottom", "mmoe", "star", "sass_base", "sass", "zeus")
FLOORS = tuple(FLOOR_RECALLERS)  # ("popular", "random")
MODEL_NAMES = LEARNED + FLOORS
SASS_FAMILY = ("sass_base", "sass")
TRANSFERS = ("symmetric", "user")


# An outside model (:mod:`models.outside`): a factory ``package.module:function`` or the path
# of an embeddings folder (anything with a slash, or an existing folder).
FACTORY_SPEC = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")
OUTSIDE_HELP = "or an outside model: package.module:function (a factory) or an embeddings folder"


def check_model_name(name: str) -> str:
    """`name` if it is a model of the zoo (learned or floor)."""
    if name not in MODEL_NAMES:
        raise UserError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
    return name


def outside_kind(name: str) -> str | None:
    """``"factory"``, ``"embeddings"`` or None (a zoo name, or not a model at all)."""
    if name in MODEL_NAMES:
        return None
    if FACTORY_SPEC.fullmatch(name):
        return "factory"
    if "/" in name or os.sep in name or Path(name).is_dir():
        return "embeddings"
    return None


def check_model_spec(name: str) -> str:
    """`name` if it names a model: one of the zoo or an outside model (:func:`outside_kind`)."""
    if name not in MODEL_NAMES and outside_kind(name) is None:
        raise UserError(
            f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}; {OUTSIDE_HELP}"
        )
    return name


@dataclass(frozen=True)
class ModelConfig:
    name: str
    spec: FeatureSpec
    dim: int = 32  # output embedding width D
    emb_dim: int = 16
    hidden: int = 64
    layers: int = 2
    experts: int = 4
    # SASS: SAT gates start at sigmoid(2) = 0.88, i.e. transfer from the global network by
    # default (Recall@50 +0.013 new_user_landing, +0.008 related_detail over 5 seeds)
    sat_gate_bias: float = 2.0
    # SASS ablations (the paper's): each changes only what it names, and none is on in
    # `sass` or `sass_base`. Transfer depth is `layers` (SAT units, one per layer).
    adaptive_gate: bool = True  # False: update gate only (a = 1, all of g offered)
    aux_loss: bool = True  # False: no auxiliary loss on the global network's outputs
    transfer: str = "symmetric"  # "user": the item tower is one shared (mixed) network

    def __post_init__(self):
        if self.transfer not in TRANSFERS:
            raise ValueError(f"transfer must be one of {TRANSFERS}, got {self.transfer!r}")
        ablated = (not self.adaptive_gate, not self.aux_loss, self.transfer != "symmetric")
        if any(ablated) and self.name not in SASS_FAMILY:
            raise ValueError(f"the SASS ablation flags apply to {SASS_FAMILY}, not {self.name}")

    @property
    def label(self) -> str:
        """The name, with the ablations that differ from the default (e.g. sass-no_gate)."""
        parts = [self.name]
        parts += ["no_adaptive_gate"] if not self.adaptive_gate else []
        parts += ["no_aux_loss"] if not self.aux_loss else []
        parts += ["user_only"] if self.transfer == "user" else []
        parts += [f"depth{self.layers}"] if self.name in SASS_FAMILY and self.layers != 2 else []
        return "-".join(parts)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        spec = d["spec"]
        spec = FeatureSpec(**{**spec, "profile_cards": tuple(spec["profile_cards"])})
        return cls(**{**d, "spec": spec})
