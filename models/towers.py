"""The torch recall models: :class:`TwoTower` (user and item towers of one body kind, see
:mod:`models.bodies`), :class:`PerScenario` (`single`), :class:`Zeus` and
:func:`build_model`, which makes the model a :class:`models.zoo.ModelConfig` names."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.bodies import BODIES, SassBody, run_body
from models.data import ItemTable
from models.parts import ItemEncoder, ScenarioArg, UserEncoder
from models.zoo import FLOORS, ModelConfig, check_model_name


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
        # user-only transfer (a SASS ablation): one item vector for all scenarios
        self.item_scenario_aware = aware and cfg.transfer == "symmetric"
        item_body = body if self.item_scenario_aware else BODIES["mixed"]
        self.item_body = item_body(self.item_encoder.out_dim, cfg, spec.n_scenarios)

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
        if not self.item_scenario_aware:  # the same vectors in every scenario
            out, glob = self.item_body(x, 0)
            vecs = F.normalize(out, dim=-1).expand(len(scenarios), -1, -1)
            return vecs, None if glob is None else F.normalize(glob, dim=-1)
        outs = [self.item_body(x, s) for s in scenarios]
        glob = outs[0][1]
        vecs = torch.stack([F.normalize(o, dim=-1) for o, _ in outs])
        return vecs, None if glob is None else F.normalize(glob, dim=-1)


class PerScenario(nn.Module):
    """`single`: an independent mixed two-tower per scenario."""

    has_global = False
    scenario_aware = True
    item_scenario_aware = True

    def __init__(self, cfg: ModelConfig, items: ItemTable):
        super().__init__()
        self.cfg = cfg
        sub = dataclasses.replace(cfg, name="mixed")
        self.towers = nn.ModuleList(TwoTower(sub, items) for _ in range(cfg.spec.n_scenarios))

    def _dtype(self) -> torch.dtype:
        """The parameters' dtype (float64 in a recaller's inference copy)."""
        return next(self.parameters()).dtype

    def user(self, f: dict[str, Tensor], scenario: Tensor | None = None, with_global: bool = False):
        scenario = f["scenario"] if scenario is None else scenario
        out = torch.zeros(scenario.shape[0], self.cfg.dim, dtype=self._dtype())
        for s in torch.unique(scenario).tolist():
            rows = scenario == s
            out[rows] = self.towers[s].user({k: v[rows] for k, v in f.items()}, scenario[rows])
        return out

    def items_in(self, item_ids: Tensor, scenarios: list[int]) -> tuple[Tensor, None]:
        return torch.stack([self.towers[s].item(item_ids, s) for s in scenarios]), None

    def item(self, item_ids: Tensor, scenario: ScenarioArg, with_global: bool = False):
        if isinstance(scenario, int):
            return self.towers[scenario].item(item_ids, scenario)
        out = torch.zeros(item_ids.shape[0], self.cfg.dim, dtype=self._dtype())
        for s in torch.unique(scenario).tolist():
            rows = scenario == s
            out[rows] = self.towers[s].item(item_ids[rows], s)
        return out


class Zeus(PerScenario):
    """`zeus`: a mixed two-tower per scenario, like `single`, but each fine-tuned from one
    tower pre-trained on the next click across scenarios (recipe: :mod:`models.zeus`)."""


def build_model(cfg: ModelConfig, items: ItemTable) -> nn.Module:
    check_model_name(cfg.name)
    if cfg.name == "single":
        return PerScenario(cfg, items)
    if cfg.name == "zeus":
        return Zeus(cfg, items)
    if cfg.name in FLOORS:
        raise ValueError(f"{cfg.name} is a floor, not a torch model")
    return TwoTower(cfg, items)
