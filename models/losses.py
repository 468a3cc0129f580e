"""Training losses (kept out of the models): sampled softmax with log-Q, and InfoNCE.

Shapes: B rows in the batch, D embedding width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def sampled_softmax_loss(
    logits: Tensor, log_q: Tensor, valid: Tensor | None = None, temperature: float = 1.0
) -> Tensor:
    """In-batch sampled softmax with log-Q correction (Yi et al., RecSys 2019).

    ``logits[b, j]`` scores row b's user against row j's positive item; the diagonal holds
    the positives. In-batch negatives are sampled in proportion to item popularity, so each
    logit is corrected by the log of its item's sampling probability ``log_q[j]``.
    ``valid[b, j]`` (bool) marks the usable negatives (the diagonal is always kept).
    """
    b = logits.shape[0]
    z = logits / temperature - log_q.unsqueeze(0)
    eye = torch.eye(b, dtype=torch.bool, device=logits.device)
    if valid is not None:
        z = z.masked_fill(~(valid | eye), float("-inf"))
    return F.cross_entropy(z, torch.arange(b, device=logits.device))


def grouped_sampled_softmax_loss(
    logits: Tensor,
    positive: Tensor,
    log_q: Tensor,
    counts: Tensor,
    in_pool: Tensor | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """:func:`sampled_softmax_loss` with the batch's repeated items scored once.

    A batch of B clicks holds U <= B distinct items (B ~ 1.4 U at the default batch size).
    ``logits[b, u]`` (B x U) scores row b against distinct item u, which is the positive of
    ``counts[u]`` rows; ``positive[b]`` is row b's own item's column. Row b's in-batch
    softmax runs over its positive once and over every other distinct item u in its pool
    ``counts[u]`` times (``in_pool[b, u]``, bool), as the B x B form does when the other
    copies of the row's own item are not negatives. So the loss equals
    ``sampled_softmax_loss`` on the expanded B x B logits with
    ``valid[b, j] = in_pool[b, item_j] and item_j != item_b``, at U/B of its cost.
    """
    b = logits.shape[0]
    weight = torch.log(counts.to(logits.dtype)).unsqueeze(0).expand(b, -1)
    if in_pool is not None:
        weight = weight.masked_fill(~in_pool, float("-inf"))
    rows = torch.arange(b, device=logits.device)
    weight = weight.index_put((rows, positive), torch.zeros((), dtype=logits.dtype))
    z = logits / temperature - log_q.unsqueeze(0) + weight
    return F.cross_entropy(z, positive)


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE: (a_i, b_i) are positive pairs, the other rows in the batch negatives."""
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
