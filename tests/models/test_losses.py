"""The losses against plain reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.losses import grouped_sampled_softmax_loss, info_nce, sampled_softmax_loss


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


def test_info_nce_reference():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    z = a @ b.T / 0.2

    def ce(m):
        return np.mean([-(m[i, i] - np.log(np.exp(m[i]).sum())) for i in range(5)])

    got = info_nce(torch.tensor(a), torch.tensor(b), 0.2).item()
    assert got == pytest.approx(0.5 * (ce(z) + ce(z.T)), rel=1e-9)
