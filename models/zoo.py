"""The recall models: SASS, the multi-scenario baselines and two floors, behind one interface.

Every learned model is a two-tower :class:`TwoTower`: a user side and an item side, each an
embedding layer (:mod:`models.parts`) followed by a *body* that maps it to a D-dim vector,
L2-normalised; score = inner product. Bodies take the row's scenario, so an item gets one
vector per scenario where the architecture has scenario-specific views.

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
popular        floor: per-scenario click popularity in the training window
random         floor: a random ranking per user
=============  ================================================================================
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core import keyed
from core.errors import UserError
from models.data import Dataset, FeatureSpec, ItemTable
from models.parts import (
    MLP,
    ItemEncoder,
    ScenarioAdaptiveTransfer,
    ScenarioArg,
    ScenarioBias,
    ScenarioLinear,
    ScenarioRuns,
    UserEncoder,
    every_scenario,
    pick_scenario,
    rows_scenario,
    wide,
)

LEARNED = ("mixed", "single", "shared_bottom", "mmoe", "star", "sass_base", "sass")
FLOORS = ("popular", "random")
MODEL_NAMES = LEARNED + FLOORS


def check_model_name(name: str) -> str:
    if name not in MODEL_NAMES:
        raise UserError(f"unknown model {name!r}; known models: {', '.join(MODEL_NAMES)}")
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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        spec = d["spec"]
        spec = FeatureSpec(**{**spec, "profile_cards": tuple(spec["profile_cards"])})
        return cls(**{**d, "spec": spec})


# ---------------------------------------------------------------------------- bodies
# A body maps B x E encoder output (+ scenario) to (B x D output, B x D global output or None).


class MixedBody(nn.Module):
    def __init__(self, d_in: int, cfg: ModelConfig, n_scenarios: int):
        super().__init__()
        self.mlp = MLP(d_in, [cfg.hidden] * (cfg.layers - 1) + [cfg.dim], last_activation=False)

    def forward(self, x: Tensor, scenario: ScenarioArg):
        return self.mlp(x), None


class SharedBottomBody(nn.Module):
    def __init__(self, d_in: int, cfg: ModelConfig, n_scenarios: int):
        super().__init__()
        self.bottom = MLP(d_in, [cfg.hidden] * max(cfg.layers - 1, 1))
        self.top1 = ScenarioLinear(n_scenarios, cfg.hidden, cfg.hidden)
        self.top2 = ScenarioLinear(n_scenarios, cfg.hidden, cfg.dim)

    def forward(self, x: Tensor, scenario: ScenarioArg):
        h = self.bottom(x)
        return self.top2(F.relu(self.top1(h, scenario)), scenario), None


class MMoEBody(nn.Module):
    def __init__(self, d_in: int, cfg: ModelConfig, n_scenarios: int):
        super().__init__()
        widths = [cfg.hidden] * max(cfg.layers - 1, 1)
        self.experts = nn.ModuleList(MLP(d_in, widths) for _ in range(cfg.experts))
        self.gate = ScenarioLinear(n_scenarios, d_in, cfg.experts)
        self.tower = ScenarioLinear(n_scenarios, cfg.hidden, cfg.dim)
        self.last_gate: Tensor | None = None

    def forward(self, x: Tensor, scenario: ScenarioArg):
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # B x X x hidden
        gate = torch.softmax(self.gate(x, scenario), dim=-1)  # B x X
        self.last_gate = gate.detach()
        return self.tower((gate.unsqueeze(-1) * experts).sum(dim=1), scenario), None


class StarLayer(nn.Module):
    """STAR fully-connected layer: W = W_shared ⊙ W_s, b = b_shared + b_s."""

    def __init__(self, n_scenarios: int, d_in: int, d_out: int):
        super().__init__()
        self.shared = nn.Linear(d_in, d_out)
        self.specific_w = nn.Parameter(torch.ones(n_scenarios, d_in, d_out))
        self.specific_b = nn.Parameter(torch.zeros(n_scenarios, d_out))

    def forward(self, x: Tensor, scenario: ScenarioArg) -> Tensor:
        w = self.shared.weight.T.unsqueeze(0) * self.specific_w  # S x in x out
        if isinstance(scenario, ScenarioRuns):
            parts = torch.split(x, scenario.sizes)
            return torch.cat(
                [p @ w[s] + (self.shared.bias + self.specific_b[s]) for s, p in enumerate(parts)]
            )
        b = self.shared.bias + self.specific_b[scenario]
        if isinstance(scenario, int):
            return x @ w[scenario] + b
        return pick_scenario(x @ wide(w), scenario, w.shape[0]) + b


class PartitionedNorm(nn.Module):
    """STAR's partitioned normalisation: normalise, then gamma * gamma_s and beta + beta_s."""

    def __init__(self, n_scenarios: int, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False)
        self.gamma = nn.Parameter(torch.ones(dim))
        self.beta = nn.Parameter(torch.zeros(dim))
        self.gamma_s = nn.Parameter(torch.ones(n_scenarios, dim))
        self.beta_s = nn.Parameter(torch.zeros(n_scenarios, dim))

    def forward(self, x: Tensor, scenario: ScenarioArg) -> Tensor:
        s = scenario if isinstance(scenario, int) else rows_scenario(scenario)
        return self.norm(x) * (self.gamma * self.gamma_s[s]) + self.beta + self.beta_s[s]


class StarBody(nn.Module):
    def __init__(self, d_in: int, cfg: ModelConfig, n_scenarios: int):
        super().__init__()
        self.pn = PartitionedNorm(n_scenarios, d_in)
        widths = [cfg.hidden] * (cfg.layers - 1) + [cfg.dim]
        dims = [d_in, *widths]
        self.layers = nn.ModuleList(
            StarLayer(n_scenarios, a, b) for a, b in itertools.pairwise(dims)
        )
        self.aux = ScenarioBias(n_scenarios, cfg.emb_dim, cfg.dim)

    def forward(self, x: Tensor, scenario: ScenarioArg):
        h = self.pn(x, scenario)
        for i, layer in enumerate(self.layers):
            h = layer(h, scenario)
            if i < len(self.layers) - 1:
                h = F.relu(h)
        return h + self.aux(_as_tensor(scenario, x)), None


class SassBody(nn.Module):
    """Global shared network + per-scenario networks joined layer by layer by SAT units."""

    def __init__(self, d_in: int, cfg: ModelConfig, n_scenarios: int):
        super().__init__()
        dims = [d_in] + [cfg.hidden] * cfg.layers
        pairs = list(itertools.pairwise(dims))
        self.global_layers = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.scenario_layers = nn.ModuleList(ScenarioLinear(n_scenarios, a, b) for a, b in pairs)
        self.sat = nn.ModuleList(
            ScenarioAdaptiveTransfer(n_scenarios, b, cfg.sat_gate_bias) for _, b in pairs
        )
        # The output projection is shared by all scenarios; what is scenario-specific is the
        # scenario networks, their SAT gates and the bias network. A per-scenario projection
        # learns from its scenario's clicks alone: on the default world it cost SASS 0.01-0.02
        # Recall@50 in every scenario, most in the sparse ones (issue 3 note).
        self.head = nn.Linear(cfg.hidden, cfg.dim)
        self.global_head = nn.Linear(cfg.hidden, cfg.dim)
        self.bias = ScenarioBias(n_scenarios, cfg.emb_dim, cfg.dim)

    def forward(self, x: Tensor, scenario: ScenarioArg):
        g, h = x, x
        for glob, spec, sat in zip(self.global_layers, self.scenario_layers, self.sat, strict=True):
            g = F.relu(glob(g))
            h = sat(F.relu(spec(h, scenario)), g, scenario)
        out = self.head(h) + self.bias(_as_tensor(scenario, x))
        return out, self.global_head(g)

    def every_scenario(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """B x E -> (S x B x D outputs in every scenario, B x D global output).

        The same as calling :meth:`forward` once per scenario, with the global network run
        once and each scenario-specific layer as one batched matmul over scenarios.
        """
        g, h = x, None
        for glob, spec, sat in zip(self.global_layers, self.scenario_layers, self.sat, strict=True):
            h = F.relu(every_scenario(spec, g if h is None else h))
            g = F.relu(glob(g))
            h = sat.every_scenario(h, g)
        n = h.shape[0]
        out = self.head(h) + self.bias(torch.arange(n, device=x.device))[:, None]
        return out, self.global_head(g)


def _as_tensor(scenario: ScenarioArg, like: Tensor) -> Tensor:
    if isinstance(scenario, int):
        return torch.full((like.shape[0],), scenario, dtype=torch.long, device=like.device)
    return rows_scenario(scenario)


def run_body(body: nn.Module, x: Tensor, scenario: ScenarioArg, n_scenarios: int):
    """`body` on rows with per-row scenarios, run in scenario order (each per-scenario layer
    is then one matmul per scenario's slice) and returned in the rows' order."""
    if isinstance(scenario, int) or isinstance(body, MixedBody):
        return body(x, scenario)
    if bool((scenario[1:] >= scenario[:-1]).all()):  # already in order (the training batches)
        sizes = torch.bincount(scenario, minlength=n_scenarios).tolist()
        return body(x, ScenarioRuns(scenario, sizes))
    runs, order = ScenarioRuns.sort(scenario, n_scenarios)
    out, glob = body(x[order], runs)
    back = torch.empty_like(order)
    back[order] = torch.arange(order.shape[0], device=order.device)
    return out[back], None if glob is None else glob[back]


BODIES = {
    "mixed": MixedBody,
    "shared_bottom": SharedBottomBody,
    "mmoe": MMoEBody,
    "star": StarBody,
    "sass_base": SassBody,
    "sass": SassBody,
}


# ---------------------------------------------------------------------------- models


class TwoTower(nn.Module):
    """User tower and item tower with L2-normalised outputs (B x D)."""

    def __init__(self, cfg: ModelConfig, items: ItemTable):
        super().__init__()
        self.cfg = cfg
        spec = cfg.spec
        aware = cfg.name != "mixed"
        self.scenario_aware = aware
        self.user_encoder = UserEncoder(spec, cfg.emb_dim, scenario_aware=aware)
        self.item_encoder = ItemEncoder(spec, cfg.emb_dim, items)
        body = BODIES[cfg.name]
        self.user_body = body(self.user_encoder.out_dim, cfg, spec.n_scenarios)
        self.item_body = body(self.item_encoder.out_dim, cfg, spec.n_scenarios)

    @property
    def has_global(self) -> bool:
        return isinstance(self.user_body, SassBody)

    def user(self, f: dict[str, Tensor], scenario: Tensor | None = None, with_global: bool = False):
        """B x D user vectors in `scenario` (default: each row's own, ``f["scenario"]``)."""
        scenario = f["scenario"] if scenario is None else scenario
        x = self.user_encoder(f, scenario)
        out, glob = run_body(self.user_body, x, scenario, self.cfg.spec.n_scenarios)
        out = F.normalize(out, dim=-1)
        return (out, F.normalize(glob, dim=-1)) if with_global else out

    def item(self, item_ids: Tensor, scenario: ScenarioArg, with_global: bool = False):
        """N x D item vectors as seen in `scenario` (an int, or one scenario per row)."""
        x = self.item_encoder(item_ids)
        out, glob = run_body(self.item_body, x, scenario, self.cfg.spec.n_scenarios)
        out = F.normalize(out, dim=-1)
        return (out, F.normalize(glob, dim=-1)) if with_global else out

    def items_in(self, item_ids: Tensor, scenarios: list[int]) -> tuple[Tensor, Tensor | None]:
        """S' x N x D vectors of the items in each listed scenario (encoder run once), and
        N x D global vectors for models that have a global network."""
        x = self.item_encoder(item_ids)
        if isinstance(self.item_body, SassBody):
            every, glob = self.item_body.every_scenario(x)
            vecs = F.normalize(every[torch.as_tensor(scenarios)], dim=-1)
            return vecs, F.normalize(glob, dim=-1)
        outs = [self.item_body(x, s) for s in scenarios]
        glob = outs[0][1]
        vecs = torch.stack([F.normalize(o, dim=-1) for o, _ in outs])
        return vecs, None if glob is None else F.normalize(glob, dim=-1)


class PerScenario(nn.Module):
    """`single`: an independent mixed two-tower per scenario."""

    has_global = False
    scenario_aware = True

    def __init__(self, cfg: ModelConfig, items: ItemTable):
        super().__init__()
        self.cfg = cfg
        sub = dataclasses.replace(cfg, name="mixed")
        self.towers = nn.ModuleList(TwoTower(sub, items) for _ in range(cfg.spec.n_scenarios))

    def user(self, f: dict[str, Tensor], scenario: Tensor | None = None, with_global: bool = False):
        scenario = f["scenario"] if scenario is None else scenario
        out = torch.zeros(scenario.shape[0], self.cfg.dim)
        for s in torch.unique(scenario).tolist():
            rows = scenario == s
            out[rows] = self.towers[s].user({k: v[rows] for k, v in f.items()}, scenario[rows])
        return out

    def items_in(self, item_ids: Tensor, scenarios: list[int]) -> tuple[Tensor, None]:
        return torch.stack([self.towers[s].item(item_ids, s) for s in scenarios]), None

    def item(self, item_ids: Tensor, scenario: ScenarioArg, with_global: bool = False):
        if isinstance(scenario, int):
            return self.towers[scenario].item(item_ids, scenario)
        out = torch.zeros(item_ids.shape[0], self.cfg.dim)
        for s in torch.unique(scenario).tolist():
            rows = scenario == s
            out[rows] = self.towers[s].item(item_ids[rows], s)
        return out


def build_model(cfg: ModelConfig, items: ItemTable) -> nn.Module:
    check_model_name(cfg.name)
    if cfg.name == "single":
        return PerScenario(cfg, items)
    if cfg.name in FLOORS:
        raise ValueError(f"{cfg.name} is a floor, not a torch model")
    return TwoTower(cfg, items)


# ---------------------------------------------------------------------------- serving view


@dataclass
class Recaller:
    """What the index, the evaluation and the simulator's serving read from any model.

    ``user_vectors`` gives B x D float32 query vectors for rows of user features in their
    scenarios; ``item_vectors(s)`` the scenario's pool items and their N x D vectors.
    """

    name: str
    model: nn.Module | None
    items: ItemTable
    popularity: np.ndarray | None = None  # S x I click counts, for `popular`
    seed: int = 0
    _item_cache: dict[int, np.ndarray] = field(default_factory=dict)

    @torch.no_grad()
    def user_vectors(self, f: dict[str, np.ndarray], batch: int = 8192) -> np.ndarray:
        n = f["scenario"].shape[0]
        if self.name == "popular":
            return np.ones((n, 1), dtype=np.float32)
        if self.name == "random":
            return _random_unit(self.seed, "random_user", f["user_id"], 16)
        self.model.eval()
        out = []
        for i in range(0, n, batch):
            part = {k: torch.as_tensor(v[i : i + batch]) for k, v in f.items() if k != "user_id"}
            out.append(self.model.user(part).numpy())
        return np.concatenate(out).astype(np.float32)

    @torch.no_grad()
    def item_vectors(self, scenario: int) -> tuple[np.ndarray, np.ndarray]:
        pool = self.items.pools[scenario]
        if scenario not in self._item_cache:
            if self.name == "popular":
                counts = self.popularity[scenario, pool]
                # log counts, ties broken by a tiny keyed jitter so the order is stable
                jitter = keyed.uniform(self.seed, "popular_tie", pool) * 1e-3
                vec = (np.log1p(counts) + jitter)[:, None]
            elif self.name == "random":
                vec = _random_unit(self.seed, "random_item", pool, 16)
            else:
                self.model.eval()
                vec = self.model.item(torch.as_tensor(pool), scenario).numpy()
            self._item_cache[scenario] = vec.astype(np.float32)
        return pool, self._item_cache[scenario]


def _random_unit(seed: int, component: str, ids: np.ndarray, dim: int) -> np.ndarray:
    v = keyed.normal(seed, component, np.asarray(ids)[:, None], np.arange(dim)[None, :])
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def popularity_counts(data: Dataset) -> np.ndarray:
    """S x I training-window click counts per scenario."""
    scen = data.requests.scenario[data.train.request]
    counts = np.zeros((data.spec.n_scenarios, data.spec.n_items))
    np.add.at(counts, (scen, data.train.item), 1)
    return counts
