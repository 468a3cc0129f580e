"""The epoch loop of the pre-training recipes (SASS's contrastive pre-training in
:mod:`models.train`, ZEUS's next-click pre-training in :mod:`models.zeus`): each epoch
samples a subset of the examples without replacement and steps through it in minibatches.

May import ``core`` and the ``models`` modules below it; never ``abtest``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from torch import Tensor, nn
from tqdm import tqdm


def sampled_epochs(
    model: nn.Module,
    opt,
    rng: np.random.Generator,
    n: int,
    cfg,
    batch_loss: Callable[[np.ndarray], Tensor],
    desc: str,
    progress: bool,
) -> list[float]:
    """``cfg.pretrain_epochs`` epochs over ``min(cfg.pretrain_rows, n)`` of the `n` examples
    drawn afresh each epoch, ``cfg.batch_size`` at a time; `batch_loss` maps a batch's
    example indices to its loss. Returns each epoch's mean loss."""
    losses = []
    for epoch in range(cfg.pretrain_epochs):
        model.train()
        pick = rng.choice(n, min(cfg.pretrain_rows, n), replace=False)
        bar = tqdm(
            range(0, pick.size, cfg.batch_size),
            desc=f"{desc} {epoch + 1}",
            leave=False,
            disable=None if progress else True,
            mininterval=0.5,
        )
        epoch_losses = []
        for i in bar:
            loss = batch_loss(pick[i : i + cfg.batch_size])
            opt.zero_grad()
            loss.backward()
            opt.step()
            epoch_losses.append(loss.item())
        losses.append(float(np.mean(epoch_losses)))
    return losses
