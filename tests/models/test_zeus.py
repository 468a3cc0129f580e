"""The `zeus` baseline: next-click examples, per-scenario copies, frozen id embeddings, and
training end to end to a checkpoint that reloads."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from models.checkpoint import load_checkpoint, save_checkpoint, training_hash
from models.data import Examples, RequestTable
from models.recaller import ModelRecaller
from models.towers import Zeus
from models.train import TrainConfig, Trainer, make_optimizer, user_features
from models.zeus import id_embeddings, next_click_examples, next_click_rows, spread_to_scenarios
from tests.models.conftest import small_config

FAST = TrainConfig(max_epochs=1, pretrain_epochs=1, pretrain_rows=2000, eval_requests=50)


def _requests(hist_items: list[list[int]], hist_scenarios: list[list[int]], users=None):
    n = len(hist_items)
    return RequestTable(
        request_id=np.arange(n) + 100,
        user_id=np.asarray(users if users is not None else np.arange(n) + 10),
        user_bucket=np.arange(n) + 20,
        profile=np.arange(2 * n).reshape(n, 2),
        hist_items=np.asarray(hist_items, dtype=np.int64),
        hist_scenarios=np.asarray(hist_scenarios, dtype=np.int64),
        scenario=np.array([4] * n),
    )


def test_next_click_target_is_the_latest_click_and_leaves_the_history():
    req = _requests(
        [[5, 7, 9, -1], [3, -1, -1, -1], [-1, -1, -1, -1]],
        [[1, 0, 2, -1], [2, -1, -1, -1], [-1, -1, -1, -1]],
    )
    f, target = next_click_examples(req, np.array([0, 1]))
    np.testing.assert_array_equal(target, [5, 3])
    np.testing.assert_array_equal(f["hist_items"], [[7, 9, -1, -1], [-1, -1, -1, -1]])
    np.testing.assert_array_equal(f["hist_scenarios"], [[0, 2, -1, -1], [-1, -1, -1, -1]])
    np.testing.assert_array_equal(f["scenario"], [1, 2])  # the target click's scenario
    np.testing.assert_array_equal(f["user_bucket"], [20, 21])
    np.testing.assert_array_equal(f["profile"], req.profile[:2])
    assert set(f) == set(user_features(req, np.array([0])))  # what a tower reads
    assert req.hist_items[0, 0] == 5  # the table is not modified
    with pytest.raises(ValueError, match="non-empty history"):
        next_click_examples(req, np.array([1, 2]))


def test_next_click_rows_are_training_requests_with_a_history_one_per_click():
    # rows 0 and 3: the same user between two clicks (same history); row 2: no history;
    # row 4: not in the training window
    hist = [[5, 7], [3, -1], [-1, -1], [5, 7], [8, 5]]
    req = _requests(hist, hist, users=[1, 2, 3, 1, 1])
    pretrain = Examples(np.array([0, 0, 1, 2, 3]), np.zeros(5, np.int64), np.zeros(5, np.int8))
    data = SimpleNamespace(requests=req, pretrain=pretrain)
    np.testing.assert_array_equal(next_click_rows(data), [0, 1])


def _params(module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _id_names(module) -> set[str]:
    ids = {id(p) for p in id_embeddings(module)}
    return {n for n, p in module.named_parameters() if id(p) in ids}


def test_spread_gives_every_scenario_its_own_copy_of_the_same_weights(data):
    torch.manual_seed(0)
    model = Zeus(small_config("zeus", data), data.items)
    base = copy.deepcopy(model.towers[1])
    with torch.no_grad():
        for p in base.parameters():
            p.add_(1.0)
    spread_to_scenarios(model, base)
    want = base.state_dict()
    for tower in model.towers:
        for k, v in tower.state_dict().items():
            torch.testing.assert_close(v, want[k], rtol=0, atol=0)
        assert all(not p.requires_grad for p in id_embeddings(tower))
        assert sum(p.requires_grad for p in tower.parameters()) > 0
        in_opt = {id(p) for g in make_optimizer(tower, FAST).param_groups for p in g["params"]}
        assert not in_opt & {id(p) for p in id_embeddings(tower)}  # and not in the optimiser
    with torch.no_grad():  # copies, not shared storage
        model.towers[0].user_body.mlp[0].weight.add_(1.0)
    assert not torch.equal(model.towers[0].user_body.mlp[0].weight, base.user_body.mlp[0].weight)
    assert torch.equal(model.towers[1].user_body.mlp[0].weight, base.user_body.mlp[0].weight)


@pytest.fixture(scope="module")
def zeus_run(data):
    """A small `zeus` trained once (about 35 short epochs in all on the tiny data): its
    trainer, its towers' initial weights and the training result."""
    trainer = Trainer(data, small_config("zeus", data), FAST, seed=0, progress=False)
    init = _params(trainer.model.towers[0])  # the pre-trained tower starts as a copy of it
    return trainer, init, trainer.run()


def test_fine_tuning_leaves_the_id_embeddings_frozen_and_trains_the_rest(zeus_run):
    _, init, result = zeus_run
    towers = result.model.towers
    ids = _id_names(towers[0])
    assert ids == {"user_encoder.user.weight", "user_encoder.hist_item.weight",
                   "item_encoder.item.weight"}  # fmt: skip
    pre = result.pretrained_state
    assert len(result.pretrain_losses) == 1 and np.isfinite(result.pretrain_losses).all()
    assert result.pretrain_seconds > 0
    assert all(not torch.equal(init[n], pre[n]) for n in ids)  # pre-training trains them
    after = [_params(t) for t in towers]
    for s, a in enumerate(after):
        for n in init:  # frozen through both fine-tuning phases; the rest moves
            assert torch.equal(a[n], pre[n]) == (n in ids), (s, n)
            # and each scenario's copy was fine-tuned on its own
            assert torch.equal(a[n], after[(s + 1) % len(after)][n]) == (n in ids), (s, n)
    # trainable again, as a model loaded from its checkpoint
    assert all(p.requires_grad for p in result.model.parameters())
    phases = [h["scenario"] for h in result.history]
    assert phases[0] == "all" and set(phases[1:]) == set(range(len(towers)))


def test_zeus_checkpoint_reloads_to_the_same_finite_vectors(zeus_run, data, tmp_path):
    trainer, _, result = zeus_run
    cfg = trainer.model_cfg
    th = training_hash(data, cfg, trainer.cfg, trainer.seed)
    path = save_checkpoint(tmp_path / "zeus.pt", result.model, cfg, th)
    loaded, _ = load_checkpoint(path, data, cfg, th)
    assert isinstance(loaded, Zeus)
    trained = ModelRecaller("zeus", result.model, data.items)
    again = ModelRecaller("zeus", loaded, data.items)
    f = user_features(data.requests, data.valid.request[:100])
    users = again.user_vectors(f)
    assert users.shape == (100, cfg.dim) and np.isfinite(users).all()
    np.testing.assert_allclose(users, trained.user_vectors(f), rtol=0, atol=1e-6)
    for s in range(data.spec.n_scenarios):
        pool, vecs = again.item_vectors(s)
        assert vecs.shape == (pool.size, cfg.dim) and np.isfinite(vecs).all()
        np.testing.assert_allclose(vecs, trained.item_vectors(s)[1], rtol=0, atol=1e-6)
