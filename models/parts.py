"""Small named building blocks of the recall models, each testable alone.

Shapes: B rows, S scenarios, H history length, D/E feature widths.

* :class:`ScenarioLinear` — a linear layer with one weight matrix per scenario, applied to
  each row with its own scenario's weights (or to all rows with one scenario's).
* :class:`MLP` — Linear + ReLU stack.
* :class:`HistoryPooling` — attention pooling of the clicked-item history (item and the
  scenario it was clicked in), queried by the current scenario; mean pooling without one.
* :class:`UserEncoder` / :class:`ItemEncoder` — the shared embedding layer of each tower.
* :class:`ScenarioAdaptiveTransfer` — SASS's SAT unit: adaptive gate a = σ(W_a[h; g]) picks
  what of the global representation g to transfer (t = a ⊙ g); update gate
  u = σ(W_u[h; t]) fuses it: h ← (1 − u) ⊙ h + u ⊙ t. One set of gates per scenario; the
  adaptive gate can be left out (a = 1, an ablation).
* :class:`ScenarioBias` — scenario bias network: scenario embedding → MLP → D.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class ScenarioRuns:
    """Rows sorted by scenario: each row's scenario (B) and how many rows each of the S
    scenarios has (``sizes``, summing to B). Per-scenario layers then run one matmul per
    scenario on a slice instead of every scenario's weights on every row."""

    scenario: Tensor
    sizes: list[int]

    @classmethod
    def sort(cls, scenario: Tensor, n_scenarios: int) -> tuple[ScenarioRuns, Tensor]:
        """The runs of `scenario` in sorted order, and the row order that sorts it."""
        order = torch.argsort(scenario, stable=True)
        ordered = scenario[order]
        return cls(ordered, torch.bincount(ordered, minlength=n_scenarios).tolist()), order


ScenarioArg = Tensor | int | ScenarioRuns


def rows_scenario(scenario: Tensor | ScenarioRuns) -> Tensor:
    """Each row's scenario (B) from either form."""
    return scenario.scenario if isinstance(scenario, ScenarioRuns) else scenario


def wide(weight: Tensor) -> Tensor:
    """S x in x out weights side by side as one in x (S * out) matrix."""
    s, d_in, d_out = weight.shape
    return weight.permute(1, 0, 2).reshape(d_in, s * d_out)


def pick_scenario(every: Tensor, scenario: Tensor, n_scenarios: int) -> Tensor:
    """From B x (S * out) outputs of every scenario, each row's own scenario's: B x out.

    One dense matmul for all scenarios then a gather is far cheaper, forward and backward,
    than gathering a B x in x out weight tensor per row.
    """
    b = every.shape[0]
    every = every.view(b, n_scenarios, -1)
    idx = scenario.view(b, 1, 1).expand(b, 1, every.shape[2])
    return every.gather(1, idx).squeeze(1)


class ScenarioLinear(nn.Module):
    """y = x W_s + b_s with per-scenario parameters (S x in x out)."""

    def __init__(self, n_scenarios: int, d_in: int, d_out: int):
        super().__init__()
        bound = 1 / math.sqrt(d_in)
        self.weight = nn.Parameter(torch.empty(n_scenarios, d_in, d_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.zeros(n_scenarios, d_out))

    def forward(self, x: Tensor, scenario: ScenarioArg) -> Tensor:
        if isinstance(scenario, int):
            return x @ self.weight[scenario] + self.bias[scenario]
        if isinstance(scenario, ScenarioRuns):
            parts = torch.split(x, scenario.sizes)
            return torch.cat(
                [p @ self.weight[s] + self.bias[s] for s, p in enumerate(parts) if p.shape[0]]
            )
        every = x @ wide(self.weight)
        return pick_scenario(every, scenario, self.weight.shape[0]) + self.bias[scenario]


def every_scenario(layer: ScenarioLinear, x: Tensor) -> Tensor:
    """`layer` applied with every scenario's weights: B x in -> S x B x out, or S x B x in ->
    S x B x out (row block s with scenario s's weights). One batched matmul either way."""
    if x.dim() == 2:
        s, _, d_out = layer.weight.shape
        every = (x @ wide(layer.weight)).view(x.shape[0], s, d_out).transpose(0, 1)
        return every + layer.bias[:, None, :]
    return torch.baddbmm(layer.bias[:, None, :], x, layer.weight)


class MLP(nn.Sequential):
    def __init__(self, d_in: int, widths: list[int], last_activation: bool = True):
        layers: list[nn.Module] = []
        for i, w in enumerate(widths):
            layers.append(nn.Linear(d_in, w))
            if last_activation or i < len(widths) - 1:
                layers.append(nn.ReLU())
            d_in = w
        super().__init__(*layers)


class HistoryPooling(nn.Module):
    """B x H histories -> B x D: scaled dot-product attention, or a masked mean without query."""

    def forward(self, keys: Tensor, mask: Tensor, query: Tensor | None = None) -> Tensor:
        # keys: B x H x D; mask: B x H bool (True = a real click); query: B x D
        if query is None:
            w = mask.float()
        else:
            scores = (keys @ query.unsqueeze(-1)).squeeze(-1) / math.sqrt(keys.shape[-1])
            w = torch.softmax(scores.masked_fill(~mask, -1e9), dim=-1) * mask.float()
        w = w / w.sum(dim=-1, keepdim=True).clamp_min(1e-9)
        return (w.unsqueeze(-1) * keys).sum(dim=1)


class UserEncoder(nn.Module):
    """User-side embedding layer: hashed id, profile, pooled cross-scenario click history.

    With `scenario_aware`, the history is pooled with the current scenario as the query.
    Output width: ``out_dim``.
    """

    def __init__(self, spec, emb_dim: int, scenario_aware: bool):
        super().__init__()
        self.scenario_aware = scenario_aware
        self.user = nn.Embedding(spec.n_user_buckets, emb_dim)
        self.profile = nn.ModuleList(nn.Embedding(c, emb_dim) for c in spec.profile_cards)
        self.hist_item = nn.Embedding(spec.n_items + 1, emb_dim, padding_idx=spec.n_items)
        self.hist_scenario = nn.Embedding(
            spec.n_scenarios + 1, emb_dim, padding_idx=spec.n_scenarios
        )
        self.query = nn.Embedding(spec.n_scenarios, emb_dim) if scenario_aware else None
        self.pool = HistoryPooling()
        self.n_items, self.n_scenarios = spec.n_items, spec.n_scenarios
        self.out_dim = emb_dim * (2 + len(spec.profile_cards))

    def forward(self, f: dict[str, Tensor], scenario: Tensor) -> Tensor:
        mask = f["hist_items"] >= 0
        items = torch.where(mask, f["hist_items"], self.n_items)
        scen = torch.where(mask, f["hist_scenarios"], self.n_scenarios)
        keys = self.hist_item(items) + self.hist_scenario(scen)
        query = self.query(scenario) if self.query is not None else None
        parts = [self.user(f["user_bucket"]), self.pool(keys, mask, query)]
        parts += [emb(f["profile"][:, j]) for j, emb in enumerate(self.profile)]
        return torch.cat(parts, dim=-1)


class ItemEncoder(nn.Module):
    """Item-side embedding layer: id, category, content type, duration bucket (B -> B x E)."""

    def __init__(self, spec, emb_dim: int, items):
        super().__init__()
        self.item = nn.Embedding(spec.n_items, emb_dim)
        self.category = nn.Embedding(spec.n_categories, emb_dim)
        self.content_type = nn.Embedding(spec.n_content_types, emb_dim)
        self.duration = nn.Embedding(spec.n_duration_buckets, emb_dim)
        self.register_buffer("cat_of", torch.as_tensor(items.category), persistent=False)
        self.register_buffer("ct_of", torch.as_tensor(items.content_type), persistent=False)
        self.register_buffer("dur_of", torch.as_tensor(items.duration_bucket), persistent=False)
        self.out_dim = 4 * emb_dim

    def forward(self, item_ids: Tensor) -> Tensor:
        return torch.cat(
            [
                self.item(item_ids),
                self.category(self.cat_of[item_ids]),
                self.content_type(self.ct_of[item_ids]),
                self.duration(self.dur_of[item_ids]),
            ],
            dim=-1,
        )


class ScenarioAdaptiveTransfer(nn.Module):
    """The SAT unit (per scenario): gates in (0, 1), GRU-style fusion of global into scenario.

    ``gate_bias`` starts both gates at sigmoid(gate_bias): with a positive value a scenario
    network takes in the global representation by default and its own data must learn to
    close the gates, which sparse scenarios cannot do from noise. The trainer exempts these
    biases from weight decay (:meth:`gate_biases`), which would pull them back to 0 (0.5).
    """

    def __init__(
        self, n_scenarios: int, dim: int, gate_bias: float = 0.0, adaptive_gate: bool = True
    ):
        super().__init__()
        # without the adaptive gate (an ablation) a = 1: the whole of g is offered to the
        # update gate, which alone decides how much of it to take in
        self.adaptive = ScenarioLinear(n_scenarios, 2 * dim, dim) if adaptive_gate else None
        self.update = ScenarioLinear(n_scenarios, 2 * dim, dim)
        with torch.no_grad():
            for gate in self.gates():
                gate.bias.fill_(gate_bias)
        self.last_gates: tuple[Tensor, Tensor] | None = None

    def gates(self) -> list[ScenarioLinear]:
        return [g for g in (self.adaptive, self.update) if g is not None]

    def gate_biases(self) -> list[nn.Parameter]:
        return [g.bias for g in self.gates()]

    def _adaptive(self, hg: Tensor, scenario: ScenarioArg | None) -> Tensor:
        """The adaptive gate a on [h; g] (S x B x dim states with scenario None)."""
        if self.adaptive is None:
            return torch.ones_like(hg[..., : hg.shape[-1] // 2])
        if scenario is None:
            return torch.sigmoid(every_scenario(self.adaptive, hg))
        return torch.sigmoid(self.adaptive(hg, scenario))

    def forward(self, h: Tensor, g: Tensor, scenario: ScenarioArg) -> Tensor:
        a = self._adaptive(torch.cat([h, g], dim=-1), scenario)
        t = a * g
        u = torch.sigmoid(self.update(torch.cat([h, t], dim=-1), scenario))
        self.last_gates = (a.detach(), u.detach())
        return (1 - u) * h + u * t

    def every_scenario(self, h: Tensor, g: Tensor) -> Tensor:
        """S x B x dim scenario states h, B x dim global g -> S x B x dim (each its own gates)."""
        g = g.unsqueeze(0).expand_as(h)
        a = self._adaptive(torch.cat([h, g], dim=-1), None)
        t = a * g
        u = torch.sigmoid(every_scenario(self.update, torch.cat([h, t], dim=-1)))
        return (1 - u) * h + u * t


class ScenarioBias(nn.Module):
    """Scenario bias network: scenario id -> embedding -> MLP -> B x D."""

    def __init__(self, n_scenarios: int, emb_dim: int, dim: int):
        super().__init__()
        self.emb = nn.Embedding(n_scenarios, emb_dim)
        self.mlp = MLP(emb_dim, [emb_dim, dim], last_activation=False)

    def forward(self, scenario: Tensor) -> Tensor:
        return self.mlp(self.emb(scenario))
