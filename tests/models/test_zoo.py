"""The zoo: model names and the model config."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.errors import UserError
from models.zoo import FLOORS, LEARNED, MODEL_NAMES, ModelConfig, check_model_name
from tests.models.conftest import feature_batch


def test_model_names_are_the_learned_models_then_the_floors():
    assert MODEL_NAMES == LEARNED + FLOORS
    assert FLOORS == ("popular", "random")
    assert len(set(MODEL_NAMES)) == len(MODEL_NAMES)
    assert check_model_name("sass") == "sass"
    with pytest.raises(UserError, match="unknown model 'nope'; known models: mixed, single"):
        check_model_name("nope")


def test_model_config_round_trips_through_a_dict(data):
    cfg = ModelConfig("star", data.spec, dim=8, experts=3)
    back = ModelConfig.from_dict(cfg.to_dict())
    assert back == cfg and isinstance(back.spec.profile_cards, tuple)


# --------------------------------------------------------------------------- SASS ablations


def _n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _sass(data, name: str = "sass", **flags):
    from models.towers import build_model
    from tests.models.conftest import small_config

    cfg = dataclasses.replace(small_config(name, data), **flags)
    return cfg, build_model(cfg, data.items)


def test_no_adaptive_gate_removes_exactly_the_adaptive_gates_and_fixes_a_at_one(data):
    cfg, full = _sass(data)
    _, ablated = _sass(data, adaptive_gate=False)
    s, h = data.spec.n_scenarios, cfg.hidden
    per_gate = s * 2 * h * h + s * h  # one ScenarioLinear(S, 2h, h)
    assert _n_params(full) - _n_params(ablated) == 2 * cfg.layers * per_gate  # 2 towers
    assert all(sat.adaptive is None for sat in ablated.user_body.sat)
    assert [n for n, _ in full.named_parameters() if ".adaptive." not in n] == [
        n for n, _ in ablated.named_parameters()
    ]
    f, _ = feature_batch(data)
    ablated.user(f)
    for sat in ablated.user_body.sat:
        a, u = sat.last_gates
        assert torch.equal(a, torch.ones_like(a)) and not torch.equal(u, torch.ones_like(u))


def test_user_only_transfer_gives_items_one_shared_network(data):
    cfg, full = _sass(data)
    _, ablated = _sass(data, transfer="user")
    assert _n_params(ablated.user_body) == _n_params(full.user_body)
    mixed = ModelConfig("mixed", data.spec, dim=cfg.dim, emb_dim=cfg.emb_dim, hidden=cfg.hidden)
    assert _n_params(ablated.item_body) == _n_params(_sass_free_mixed_body(mixed, ablated))
    items = torch.arange(10)
    vecs, glob = ablated.items_in(items, [0, 1, 2])
    assert glob is None and torch.equal(vecs[0], vecs[2])
    assert torch.allclose(vecs[1], ablated.item(items, 1))
    full_vecs, _ = full.items_in(items, [0, 1])
    assert not torch.equal(full_vecs[0], full_vecs[1])


def _sass_free_mixed_body(mixed_cfg, model):
    from models.bodies import MixedBody

    return MixedBody(model.item_encoder.out_dim, mixed_cfg, 1)


def test_transfer_depth_is_the_number_of_sat_layers(data):
    for depth in (1, 2, 3):
        _, model = _sass(data, layers=depth)
        assert len(model.user_body.sat) == len(model.item_body.sat) == depth


def test_no_aux_loss_keeps_the_model_and_drops_the_global_loss(data):
    from models.train import TrainConfig, Trainer

    cfg, full = _sass(data)
    _, ablated = _sass(data, aux_loss=False)
    assert [(n, p.shape) for n, p in full.named_parameters()] == [
        (n, p.shape) for n, p in ablated.named_parameters()
    ]
    rows, items = data.train.request[:64], data.train.item[:64]
    losses = {}
    for aux in (True, False):
        torch.manual_seed(0)
        trainer = Trainer(data, dataclasses.replace(cfg, aux_loss=aux), TrainConfig(), 0, False)
        trainer.model.eval()
        losses[aux] = trainer.recall_loss(trainer.model, rows, items)
        if not aux:
            losses[aux].backward()
            assert trainer.model.user_body.global_head.weight.grad is None
            zero = TrainConfig(aux_weight=0.0)
            torch.manual_seed(0)
            ref = Trainer(data, cfg, zero, 0, False)
            ref.model.eval()
            want = ref.recall_loss(ref.model, rows, items)
            assert losses[aux].item() == pytest.approx(want.item(), rel=1e-6)
    assert losses[True].item() > losses[False].item()


@pytest.mark.parametrize(("name", "pretrains"), [("sass", True), ("sass_base", False)])
def test_only_sass_pretrains_whatever_its_ablation_flags(data, name, pretrains, monkeypatch):
    from models.train import TrainConfig, Trainer

    calls = []
    monkeypatch.setattr(Trainer, "pretrain", lambda self, model: calls.append(1) or [])
    monkeypatch.setattr(Trainer, "fit", lambda self, model, examples, **kw: [])
    for flags in ({}, {"adaptive_gate": False}, {"aux_loss": False}, {"transfer": "user"}):
        cfg, _ = _sass(data, name, **flags)
        Trainer(data, cfg, TrainConfig(), seed=0, progress=False).run()
    assert len(calls) == (4 if pretrains else 0)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "mixed", "adaptive_gate": False}, "ablation flags apply to"),
        ({"name": "star", "transfer": "user"}, "ablation flags apply to"),
        ({"name": "sass", "transfer": "item"}, "transfer must be one of"),
    ],
)
def test_ablation_flags_are_refused_where_they_mean_nothing(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(spec=data.spec, **kwargs)


def test_an_ablation_label_names_what_differs(data):
    assert ModelConfig("sass", data.spec).label == "sass"
    cfg = ModelConfig("sass", data.spec, adaptive_gate=False, transfer="user", layers=3)
    assert cfg.label == "sass-no_adaptive_gate-user_only-depth3"
    assert ModelConfig("sass_base", data.spec, aux_loss=False).label == "sass_base-no_aux_loss"
