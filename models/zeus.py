"""The `zeus` baseline's training recipe: pre-train one mixed two-tower self-supervised on
the whole space of scenarios, then fine-tune it on every scenario's clicks and then a copy
of it per scenario on that scenario's clicks (ZEUS, Alibaba, CIKM 2021; family (c),
"pre-train then fine-tune", of the SASS paper). The torch model is
:class:`models.towers.Zeus`, a :class:`models.towers.PerScenario`, so serving and
checkpoints treat it as `single`.

1. Pre-training (:func:`pretrain_next_click`): predict a user's next click from their
   cross-scenario behaviour sequence. For each request of the training window whose user
   has clicked before (:func:`next_click_rows`), the target is the most recent click of its
   history and the input is the request's user features with that click removed from the
   history (shifted left, padded with -1; :func:`next_click_examples`). The label comes from
   the behaviour sequence alone, not from the recommendation feedback of the request. Loss:
   the recall training's in-batch sampled softmax with log-Q (:func:`next_click_loss`); the
   negatives are the batch's other target items, drawn from the whole item space (no
   scenario pool masking: the sequence spans every scenario, and a next click is not tied to
   the pool of the scenario the request came from), log-Q from the targets' frequencies.
2. Fine-tuning (:func:`finetune_shared`, :func:`spread_to_scenarios`,
   :func:`finetune_each`): the pre-trained tower on all scenarios' clicks (as `mixed`),
   then every scenario's tower starts from those weights and is fine-tuned on its clicks
   alone (as `single`). Throughout both, the id embedding tables (user bucket, history item,
   item id: :func:`id_embeddings`) are frozen — ZEUS found freezing them best. The other
   embeddings (profile, history scenario, category, content type, duration) are few-valued
   features the fine-tuning data covers densely, and stay trainable.

The steps are public so tests can run them one at a time. The trainer is taken as a
parameter (:class:`TrainerLike`): :mod:`models.train` imports this module to call
:func:`run_zeus`. May import ``core`` and ``simulator``, and the ``models`` modules below
``train``; never ``abtest``.

Shapes: B rows in a batch, H history length, D output width, U distinct items in a batch.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

from core.errors import UserError
from models.data import Dataset, Examples, RequestTable
from models.epochs import sampled_epochs
from models.losses import grouped_sampled_softmax_loss
from models.towers import TwoTower, Zeus


class TrainerLike(Protocol):
    """What the recipe uses of :class:`models.train.Trainer`."""

    data: Dataset
    cfg: Any  # models.train.TrainConfig
    rng: np.random.Generator
    progress: bool

    def fit(
        self, model: nn.Module, examples: Examples, scenarios=None, desc: str = "",
        epochs_scale: int = 1,
    ) -> list[dict]: ...  # fmt: skip


# ------------------------------------------------------------------ frozen id embeddings


def id_embeddings(model: nn.Module) -> list[nn.Parameter]:
    """The id embedding tables of every two-tower in `model`: user bucket, history item and
    item id (the large, sparsely trained tables ZEUS freezes while fine-tuning)."""
    return [
        p
        for tower in model.modules()
        if isinstance(tower, TwoTower)
        for p in (
            tower.user_encoder.user.weight,
            tower.user_encoder.hist_item.weight,
            tower.item_encoder.item.weight,
        )
    ]


def set_trainable(params: list[nn.Parameter], trainable: bool) -> None:
    for p in params:
        p.requires_grad_(trainable)


# ------------------------------------------------------------------ pre-training


def next_click_rows(data: Dataset) -> np.ndarray:
    """Pre-training rows: training-window requests whose history is not empty, one per
    distinct (user, history) — the requests a user makes between two clicks all see the
    same history, so each click of the sequence is one example, however many requests
    followed it."""
    req = data.requests
    rows = np.unique(data.pretrain.request)
    rows = rows[req.hist_items[rows, 0] >= 0]
    if rows.size == 0:
        return rows
    key = np.column_stack([req.user_id[rows], req.hist_items[rows]])
    _, first = np.unique(key, axis=0, return_index=True)
    return rows[np.sort(first)]


def next_click_examples(
    req: RequestTable, rows: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The rows' user features with the most recent history click removed (the histories
    shifted left by one, padded with -1), and that click, the target (B).

    The feature ``scenario`` is the target click's scenario (a mixed tower ignores it).
    """
    items, scen = req.hist_items[rows], req.hist_scenarios[rows]  # B x H
    if (items[:, 0] < 0).any():
        raise ValueError("every row needs a non-empty history")
    pad = np.full((rows.size, 1), -1, dtype=items.dtype)
    f = {
        "user_id": req.user_id[rows],
        "user_bucket": req.user_bucket[rows],
        "profile": req.profile[rows],
        "hist_items": np.concatenate([items[:, 1:], pad], axis=1),
        "hist_scenarios": np.concatenate([scen[:, 1:], pad], axis=1),
        "scenario": scen[:, 0].copy(),
    }
    return f, items[:, 0].copy()


def next_click_loss(
    tower: TwoTower, f: dict[str, Tensor], targets: np.ndarray, log_q: Tensor, temperature: float
) -> Tensor:
    """In-batch sampled softmax (log-Q) of the B users against the batch's U distinct target
    items, every one a negative of the other rows (the whole item space, no pool mask)."""
    uniq, positive, counts = np.unique(targets, return_inverse=True, return_counts=True)
    u = tower.user(f)  # B x D
    v = tower.item(torch.as_tensor(uniq), 0)  # U x D: a mixed tower has one view of an item
    return grouped_sampled_softmax_loss(
        u @ v.T,
        torch.as_tensor(positive.reshape(-1)),
        log_q[uniq],
        torch.as_tensor(counts),
        None,
        temperature,
    )


def pretrain_next_click(
    trainer: TrainerLike, tower: TwoTower, make_optimizer: Callable
) -> list[float]:
    """Pre-train `tower` on the next click: ``pretrain_epochs`` epochs of at most
    ``pretrain_rows`` sampled examples; the mean loss of each epoch."""
    cfg, data = trainer.cfg, trainer.data
    f_all, targets = next_click_examples(data.requests, next_click_rows(data))
    if targets.size == 0:
        return []
    counts = np.bincount(targets, minlength=data.spec.n_items) + 1.0
    log_q = torch.as_tensor(np.log(counts / counts.sum()), dtype=torch.float32)

    def batch_loss(idx: np.ndarray) -> Tensor:
        f = {k: torch.as_tensor(v[idx]) for k, v in f_all.items() if k != "user_id"}
        return next_click_loss(tower, f, targets[idx], log_q, cfg.temperature)

    opt = make_optimizer(tower, cfg)
    return sampled_epochs(
        tower, opt, trainer.rng, targets.size, cfg, batch_loss, "zeus pre-training",
        trainer.progress,
    )  # fmt: skip


# ------------------------------------------------------------------ fine-tuning


def finetune_shared(trainer: TrainerLike, tower: TwoTower) -> list[dict]:
    """Phase 1: `tower` on every scenario's clicks, id embeddings frozen."""
    set_trainable(id_embeddings(tower), False)
    return trainer.fit(tower, trainer.data.train, desc="zeus[all]")


def spread_to_scenarios(model: Zeus, tower: TwoTower) -> None:
    """Every scenario's tower of `model` starts from `tower`'s weights (copies, not shared
    storage), with the id embeddings frozen."""
    state = tower.state_dict()
    for t in model.towers:
        t.load_state_dict(state)
    set_trainable(id_embeddings(model), False)


def scenario_clicks(data: Dataset, s: int) -> tuple[Examples, int]:
    """Scenario `s`'s training clicks and `single`'s epoch scale for them (about as many
    steps as a model trained on every scenario's clicks, at most 10x the epochs)."""
    scen = data.requests.scenario[data.train.request]
    sel = np.flatnonzero(scen == s)
    sub = Examples(data.train.request[sel], data.train.item[sel], data.train.click[sel])
    return sub, min(round(len(data.train) / max(len(sub), 1)), 10)


def finetune_each(trainer: TrainerLike, model: Zeus) -> list[dict]:
    """Phase 2: each scenario's tower on its scenario's clicks alone (as `single`)."""
    history = []
    for s, tower in enumerate(model.towers):
        sub, scale = scenario_clicks(trainer.data, s)
        hist = trainer.fit(tower, sub, scenarios={s}, desc=f"zeus[{s}]", epochs_scale=scale)
        history += [{**h, "scenario": s} for h in hist]
    return history


# ------------------------------------------------------------------ the whole recipe


def run_zeus(trainer: TrainerLike, model: Zeus, result: Any, make_optimizer: Callable) -> None:
    """Train `model` by the recipe; fills `result` (a :class:`models.train.TrainResult`):
    ``pretrain_losses``, ``pretrained_state`` (the pre-trained mixed tower's state dict),
    ``pretrain_seconds`` and ``history`` (the shared phase's epochs, then each scenario's,
    marked ``"scenario"``). The id embeddings are trainable again at the end, as in a
    model loaded from its checkpoint."""
    if trainer.data.spec.history_length == 0:
        raise UserError("zeus pre-trains on the click history: it needs world.history_length >= 1")
    t0 = time.perf_counter()
    tower = copy.deepcopy(model.towers[0])
    result.pretrain_losses = pretrain_next_click(trainer, tower, make_optimizer)
    result.pretrained_state = copy.deepcopy(tower.state_dict())
    result.pretrain_seconds = time.perf_counter() - t0
    shared = finetune_shared(trainer, tower)
    spread_to_scenarios(model, tower)
    result.history = [{**h, "scenario": "all"} for h in shared] + finetune_each(trainer, model)
    set_trainable(id_embeddings(model), True)
