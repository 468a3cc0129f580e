"""The bodies of the two-tower models: each maps a tower's B x E encoder output (and the
rows' scenarios) to a B x D output and, for SASS, a B x D global output (else None).

:data:`BODIES` names the body of each two-tower model (`single` is per-scenario `mixed`
towers, :class:`models.towers.PerScenario`); :func:`run_body` runs a body on rows of mixed
scenarios in scenario order.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.parts import (
    MLP,
    ScenarioAdaptiveTransfer,
    ScenarioArg,
    ScenarioBias,
    ScenarioLinear,
    ScenarioRuns,
    every_scenario,
    pick_scenario,
    rows_scenario,
    wide,
)
from models.zoo import ModelConfig


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
            ScenarioAdaptiveTransfer(n_scenarios, b, cfg.sat_gate_bias, cfg.adaptive_gate)
            for _, b in pairs
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
