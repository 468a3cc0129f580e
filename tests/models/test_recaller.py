"""`models.recaller.ModelRecaller`: the serving view of a trained torch model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.zoo import LEARNED


def test_model_recaller_vectors_do_not_depend_on_the_batch(data):
    """A row's snapped user vector is the same in a batch of 1, 7 or all rows (float32
    inference moved ~1 in 1,800 rows across a grid point; float64 inference does not)."""
    from models.recaller import ModelRecaller
    from models.train import TrainConfig, Trainer
    from models.zoo import ModelConfig

    model = Trainer(data, ModelConfig("mmoe", data.spec), TrainConfig(max_epochs=1), 0,
                    progress=False).run().model  # fmt: skip
    recaller = ModelRecaller("mmoe", model, data.items)
    _check_batches(recaller, data)


@pytest.mark.parametrize("name", LEARNED)
def test_every_learned_model_serves_in_float64(data, name):
    """The float64 inference copy of every zoo model runs (and gives float32 vectors)."""
    from models.recaller import ModelRecaller
    from models.towers import build_model
    from models.train import user_features
    from models.zoo import ModelConfig

    torch.manual_seed(0)
    model = build_model(ModelConfig(name, data.spec, dim=16, emb_dim=8, hidden=16), data.items)
    recaller = ModelRecaller(name, model, data.items)
    f = user_features(data.requests, np.arange(50))
    assert recaller.user_vectors(f).dtype == np.float32
    for s in range(data.spec.n_scenarios):
        pool, vecs = recaller.item_vectors(s)
        assert vecs.shape == (pool.size, 16) and np.isfinite(vecs).all()


def _check_batches(recaller, data):
    from abtest.serving import snap
    from models.train import user_features

    f = user_features(data.requests, np.arange(min(1500, len(data.requests))))
    whole = snap(recaller.user_vectors(f))
    for size in (1, 7):
        n = whole.shape[0]
        parts = [snap(recaller.user_vectors({k: v[i : i + size] for k, v in f.items()}))
                 for i in range(0, n, size)]  # fmt: skip
        assert np.array_equal(np.concatenate(parts), whole)
