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


def info_nce(a: Tensor, b: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE: (a_i, b_i) are positive pairs, the other rows in the batch negatives."""
    logits = a @ b.T / temperature
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
