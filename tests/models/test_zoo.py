"""Recall models: shapes, normalisation, gates, losses, pre-training, overfitting, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import UserError
from models.checkpoint import load_checkpoint, save_checkpoint, training_hash
from models.data import load_dataset
from models.losses import grouped_sampled_softmax_loss, info_nce, sampled_softmax_loss
from models.parts import ScenarioAdaptiveTransfer, ScenarioLinear, ScenarioRuns
from models.train import TrainConfig, Trainer, _tensors, make_optimizer, user_features
from models.zoo import LEARNED, ModelConfig, Recaller, build_model, run_body
from tests.conftest import logged_world, tiny_tree


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    cfg, out, _, _ = logged_world(tmp_path_factory, tree)
    return load_dataset(out, cfg, valid_days=1)


def _small(name, data):
    return ModelConfig(name, data.spec, dim=16, emb_dim=8, hidden=16)


def _batch(data, n=64):
    rows = data.train.request[:n]
    return _tensors(user_features(data.requests, rows)), torch.as_tensor(data.train.item[:n])


@pytest.mark.parametrize("name", LEARNED)
def test_forward_shapes_and_normalisation(data, name):
    torch.manual_seed(0)
    model = build_model(_small(name, data), data.items)
    f, items = _batch(data)
    u = model.user(f)
    assert u.shape == (64, 16)
    torch.testing.assert_close(u.norm(dim=1), torch.ones(64))
    for s in range(data.spec.n_scenarios):
        v = model.item(items, s)
        assert v.shape == (64, 16)
        torch.testing.assert_close(v.norm(dim=1), torch.ones(64))
    per, _ = model.items_in(items, [0, 2])
    assert per.shape == (2, 64, 16)
    torch.testing.assert_close(per[1], model.item(items, 2))
    # a row's scenario tensor and the int form agree
    scen = torch.full((64,), 3)
    torch.testing.assert_close(model.item(items, scen), model.item(items, 3))
    # scenario-aware models represent an item differently per scenario; mixed does not
    differs = not torch.allclose(model.item(items, 0), model.item(items, 1))
    assert differs == (name != "mixed")


def test_scenario_linear_rows_use_their_own_weights():
    torch.manual_seed(0)
    layer = ScenarioLinear(3, 4, 2)
    x = torch.randn(5, 4)
    s = torch.tensor([0, 2, 1, 2, 0])
    want = torch.stack([x[i] @ layer.weight[s[i]] + layer.bias[s[i]] for i in range(5)])
    torch.testing.assert_close(layer(x, s), want)
    # rows sorted into scenario runs (one scenario with no rows) give the same rows
    s2 = torch.tensor([0, 2, 0, 2, 2])
    runs, order = ScenarioRuns.sort(s2, 3)
    assert runs.sizes == [2, 0, 3] and runs.scenario.tolist() == [0, 0, 2, 2, 2]
    torch.testing.assert_close(layer(x[order], runs), layer(x, s2)[order])


@pytest.mark.parametrize("name", [n for n in LEARNED if n not in ("mixed", "single")])
def test_bodies_in_scenario_order_equal_the_per_row_path(data, name):
    """Towers run rows sorted by scenario (one matmul per scenario); the result is each
    row's own, in the rows' order, the same as every scenario's weights on every row."""
    torch.manual_seed(0)
    model = build_model(_small(name, data), data.items)
    f, items = _batch(data)
    scen = f["scenario"]
    assert not bool((scen[1:] >= scen[:-1]).all())  # the batch is not already sorted
    x = model.user_encoder(f, scen)
    want, want_g = model.user_body(x, scen)
    got, got_g = run_body(model.user_body, x, scen, data.spec.n_scenarios)
    torch.testing.assert_close(got, want)
    if want_g is not None:
        torch.testing.assert_close(got_g, want_g)
    xi = model.item_encoder(items)
    torch.testing.assert_close(
        run_body(model.item_body, xi, scen, data.spec.n_scenarios)[0], model.item_body(xi, scen)[0]
    )


def test_sat_gates_in_unit_interval_and_fuse():
    torch.manual_seed(0)
    sat = ScenarioAdaptiveTransfer(2, 8)
    h, g = torch.randn(10, 8) * 5, torch.randn(10, 8) * 5
    out = sat(h, g, torch.tensor([0, 1] * 5))
    a, u = sat.last_gates
    assert ((a > 0) & (a < 1)).all() and ((u > 0) & (u < 1)).all()
    # out = (1-u) h + u (a g): each coordinate lies between h and a*g
    t = a * g
    lo, hi = torch.minimum(h, t), torch.maximum(h, t)
    assert ((out >= lo - 1e-6) & (out <= hi + 1e-6)).all()


def test_sat_gates_start_open_and_their_biases_are_not_decayed(data):
    sat = ScenarioAdaptiveTransfer(3, 4, gate_bias=2.0)
    sat(torch.zeros(5, 4), torch.zeros(5, 4), torch.tensor([0, 1, 2, 0, 1]))
    for gate in sat.last_gates:
        torch.testing.assert_close(gate, torch.full((5, 4), torch.sigmoid(torch.tensor(2.0))))
    model = build_model(_small("sass", data), data.items)
    opt = make_optimizer(model, TrainConfig(weight_decay=0.5))
    decayed, exempt = opt.param_groups
    assert decayed["weight_decay"] == 0.5 and exempt["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)].split(".")[-2] for p in exempt["params"]} == {"adaptive", "update"}
    assert len(exempt["params"]) == 2 * 2 * _small("sass", data).layers  # 2 gates x layers x towers
    n_all = sum(1 for _ in model.parameters())
    assert len(decayed["params"]) + len(exempt["params"]) == n_all
    # models without SAT units: one group, everything decayed
    mixed = build_model(_small("mixed", data), data.items)
    assert len(make_optimizer(mixed, TrainConfig()).param_groups) == 1


def test_sass_gradients_reach_global_and_scenario_networks(data):
    torch.manual_seed(0)
    cfg = _small("sass", data)
    trainer = Trainer(data, cfg, TrainConfig(), seed=0, progress=False)
    loss = trainer.recall_loss(trainer.model, data.train.request[:64], data.train.item[:64])
    loss.backward()
    body = trainer.model.user_body
    for name, p in [("global", body.global_layers[0].weight),
                    ("scenario", body.scenario_layers[0].weight),
                    ("sat", body.sat[0].adaptive.weight), ("bias", body.bias.emb.weight),
                    ("item global", trainer.model.item_body.global_layers[-1].weight)]:  # fmt: skip
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    # only the scenarios present in the batch get gradient in the scenario network
    present = set(data.requests.scenario[data.train.request[:64]].tolist())
    grads = body.scenario_layers[0].weight.grad.abs().sum(dim=(1, 2))
    assert {int(s) for s in torch.nonzero(grads).flatten()} == present


def _reference_sampled_softmax(logits, log_q, valid, t):
    b = logits.shape[0]
    total = 0.0
    for i in range(b):
        denom = 0.0
        for j in range(b):
            if j == i or valid[i, j]:
                denom += np.exp(logits[i, j] / t - log_q[j])
        total += -(logits[i, i] / t - log_q[i] - np.log(denom))
    return total / b


def test_sampled_softmax_with_log_q_matches_reference():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(7, 7))
    log_q = np.log(rng.dirichlet(np.ones(7)))
    valid = rng.random((7, 7)) > 0.3
    got = sampled_softmax_loss(torch.tensor(logits), torch.tensor(log_q), torch.tensor(valid), 0.5)
    assert got.item() == pytest.approx(
        _reference_sampled_softmax(logits, log_q, valid, 0.5), rel=1e-9
    )
    # without the correction, popular items are penalised less: the loss changes
    plain = sampled_softmax_loss(torch.tensor(logits), torch.zeros(7), torch.tensor(valid), 0.5)
    assert plain.item() != pytest.approx(got.item())


def test_grouped_softmax_equals_the_expanded_batch_form():
    """Scoring each distinct item once with its count gives the B x B loss exactly."""
    rng = np.random.default_rng(3)
    n_items, b = 6, 15
    items = rng.integers(0, n_items, b)
    assert np.unique(items).size < b  # repeated items are the point
    item_scores = rng.normal(size=(b, n_items))  # row b's score for item i
    log_q_item = np.log(rng.dirichlet(np.ones(n_items)))
    in_pool_item = rng.random((b, n_items)) > 0.25
    in_pool_item[np.arange(b), items] = True
    logits = item_scores[:, items]
    valid = in_pool_item[:, items] & (items[None, :] != items[:, None])
    want = _reference_sampled_softmax(logits, log_q_item[items], valid, 0.3)
    uniq, positive, counts = np.unique(items, return_inverse=True, return_counts=True)
    got = grouped_sampled_softmax_loss(
        torch.tensor(item_scores[:, uniq]),
        torch.tensor(positive),
        torch.tensor(log_q_item[uniq]),
        torch.tensor(counts),
        torch.tensor(in_pool_item[:, uniq]),
        0.3,
    )
    assert got.item() == pytest.approx(want, rel=1e-9)


def _reference_recall_loss(trainer, model, rows, items):
    """The recall loss the plain way: rows in batch order, B x B logits, every batch item
    encoded once per row in that row's scenario."""
    f = _tensors(user_features(trainer.data.requests, rows))
    scen = f["scenario"]
    item_t = torch.as_tensor(items)
    if model.has_global:
        u, ug = model.user(f, with_global=True)
    else:
        u, ug = model.user(f), None
    logits = torch.stack([model.item(item_t, int(scen[b])) @ u[b] for b in range(len(rows))])
    valid = trainer.pool_mask[scen][:, item_t] & (item_t[None, :] != item_t[:, None])
    log_q, t = trainer.log_q[item_t], trainer.cfg.temperature
    loss = sampled_softmax_loss(logits, log_q, valid, t)
    if ug is not None:
        _, vg = model.item(item_t, 0, with_global=True)
        loss = loss + trainer.cfg.aux_weight * sampled_softmax_loss(ug @ vg.T, log_q, valid, t)
    return loss


@pytest.mark.parametrize("name", LEARNED)
def test_recall_loss_matches_the_plain_batch_loss(data, name):
    torch.manual_seed(0)
    trainer = Trainer(data, _small(name, data), TrainConfig(), seed=0, progress=False)
    idx = np.r_[np.arange(40), np.arange(12)]  # some rows twice: repeated items and users
    rows, items = data.train.request[idx], data.train.item[idx]
    assert np.unique(items).size < idx.size
    assert np.unique(data.requests.scenario[rows]).size > 1
    trainer.model.eval()
    got = trainer.recall_loss(trainer.model, rows, items)
    want = _reference_recall_loss(trainer, trainer.model, rows, items)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)


def test_info_nce_reference():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    z = a @ b.T / 0.2

    def ce(m):
        return np.mean([-(m[i, i] - np.log(np.exp(m[i]).sum())) for i in range(5)])

    got = info_nce(torch.tensor(a), torch.tensor(b), 0.2).item()
    assert got == pytest.approx(0.5 * (ce(z) + ce(z.T)), rel=1e-9)


def test_pretraining_lowers_its_loss_and_finetuning_starts_from_it(data):
    cfg = TrainConfig(
        pretrain_epochs=4, pretrain_rows=4000, batch_size=256, max_epochs=1, weight_decay=0.0
    )
    trainer = Trainer(data, _small("sass", data), cfg, seed=0, progress=False)
    result = trainer.run()
    assert len(result.pretrain_losses) == 4
    assert result.pretrain_losses[-1] < 0.8 * result.pretrain_losses[0]
    # the fine-tuning started from the pre-trained weights, not a fresh initialisation
    fresh = build_model(_small("sass", data), data.items).state_dict()
    pre = result.pretrained_state
    key = "user_body.global_layers.0.weight"
    assert not torch.equal(pre[key], fresh[key])
    trainer2 = Trainer(data, _small("sass", data), cfg, seed=0, progress=False)
    before_finetune = {}

    def spy(model, examples, scenarios=None, desc=""):
        before_finetune.update({k: v.clone() for k, v in model.state_dict().items()})
        return []

    trainer2.fit = spy
    res2 = trainer2.run()
    for k, v in res2.pretrained_state.items():
        torch.testing.assert_close(before_finetune[k], v)


@pytest.mark.parametrize("name", LEARNED)
def test_each_model_overfits_a_tiny_set(data, name):
    torch.manual_seed(0)
    trainer = Trainer(data, _small(name, data), TrainConfig(temperature=0.1), seed=0,
                      progress=False)  # fmt: skip
    model = trainer.model
    rows, items = data.train.request[:48], data.train.item[:48]
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    first = None
    for _ in range(150):
        loss = trainer.recall_loss(model, rows, items)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
    # Among the items it was trained to tell apart, each row's clicked item now ranks at the
    # top (a user clicked up to a few of them on one page, so allow a few ahead of it).
    rec = Recaller(name, model, data.items)
    users = rec.user_vectors(user_features(data.requests, rows))
    scen = data.requests.scenario[rows]
    universe = np.unique(items)
    hits = []
    for r in range(rows.size):
        pool, vecs = rec.item_vectors(int(scen[r]))
        cand = universe[np.isin(universe, pool)]
        scores = vecs[np.searchsorted(pool, cand)] @ users[r]
        own = scores[np.searchsorted(cand, items[r])]
        hits.append((scores > own).sum() < 5)
    assert np.mean(hits) > 0.9


def test_epochs_override_gives_its_own_checkpoint(data):
    from abtest.pipeline import checkpoint_path, train_config

    assert train_config() == TrainConfig()
    assert train_config(8) == TrainConfig(max_epochs=8)
    cfg = ModelConfig("sass", data.spec)
    default, _ = checkpoint_path(data, cfg, train_config(), 0)
    longer, _ = checkpoint_path(data, cfg, train_config(8), 0)
    assert default != longer and default.parent == longer.parent


def test_checkpoint_round_trip_and_refusals(data, tmp_path):
    cfg, tcfg = _small("sass_base", data), TrainConfig()
    model = build_model(cfg, data.items)
    th = training_hash(data, cfg, tcfg, seed=1)
    path = save_checkpoint(tmp_path / "m.pt", model, cfg, th, {"train_seconds": 1.5})
    loaded, extra = load_checkpoint(path, data, cfg, th)
    assert extra == {"train_seconds": 1.5}
    f, items = _batch(data)
    model.eval()
    torch.testing.assert_close(loaded.user(f), model.user(f))
    torch.testing.assert_close(loaded.item(items, 2), model.item(items, 2))
    assert training_hash(data, cfg, tcfg, seed=2) != th

    with pytest.raises(UserError, match="trained on other data"):
        load_checkpoint(path, data, cfg, "0" * 16)
    with pytest.raises(UserError, match="architecture differs"):
        load_checkpoint(path, data, _small("sass_base", data).__class__(
            "sass_base", data.spec, dim=8, emb_dim=8, hidden=16), th)  # fmt: skip
    with pytest.raises(UserError, match="holds model 'sass_base', expected 'star'"):
        load_checkpoint(path, data, _small("star", data), th)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UserError, match="not a readable checkpoint"):
        load_checkpoint(junk, data, cfg, th)
    torch.save({"some": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not a checkpoint written by this tool"):
        load_checkpoint(tmp_path / "other.pt", data, cfg, th)
    with pytest.raises(UserError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt", data, cfg, th)


def test_floors_rank_as_they_should(data):
    from models.zoo import popularity_counts

    pop = Recaller("popular", None, data.items, popularity=popularity_counts(data))
    pool, vecs = pop.item_vectors(0)
    counts = popularity_counts(data)[0, pool]
    order = np.argsort(-vecs[:, 0])
    assert np.all(np.diff(counts[order]) <= 0)  # ranked by click count
    rnd = Recaller("random", None, data.items, seed=3)
    f = user_features(data.requests, data.train.request[:5])
    u = rnd.user_vectors(f)
    assert u.shape == (5, 16) and np.allclose(np.linalg.norm(u, axis=1), 1, atol=1e-5)


def test_sass_items_in_every_scenario_matches_one_scenario_at_a_time():
    """The batched all-scenario item path equals running the body once per scenario."""
    import torch.nn.functional as F

    from models.data import FeatureSpec, ItemTable
    from models.zoo import ModelConfig, TwoTower

    rng = np.random.default_rng(0)
    spec = FeatureSpec(100, (3, 4), 50, 5, 3, 8, 5, 10)
    items = ItemTable(
        rng.integers(0, 5, 50),
        rng.integers(0, 3, 50),
        rng.integers(0, 8, 50),
        tuple(np.arange(50) for _ in range(5)),
    )
    torch.manual_seed(0)
    model = TwoTower(ModelConfig("sass", spec), items)
    ids = torch.arange(50)
    fast, glob = model.items_in(ids, [0, 2, 4])
    x = model.item_encoder(ids)
    for j, s in enumerate([0, 2, 4]):
        out, g = model.item_body(x, s)
        torch.testing.assert_close(fast[j], F.normalize(out, dim=-1))
        torch.testing.assert_close(glob, F.normalize(g, dim=-1))
