"""`models.recaller.ModelRecaller`: the serving view of a trained torch model."""

from __future__ import annotations

import numpy as np


def test_model_recaller_vectors_do_not_depend_on_the_batch(data):
    """A row's snapped user vector is the same in a batch of 1, 7 or all rows (float32
    inference moved ~1 in 1,800 rows across a grid point; float64 inference does not)."""
    from abtest.serving import snap
    from models.recaller import ModelRecaller
    from models.train import TrainConfig, Trainer, user_features
    from models.zoo import ModelConfig

    model = Trainer(data, ModelConfig("mmoe", data.spec), TrainConfig(max_epochs=1), 0,
                    progress=False).run().model  # fmt: skip
    recaller = ModelRecaller("mmoe", model, data.items)
    f = user_features(data.requests, np.arange(min(1500, len(data.requests))))
    whole = snap(recaller.user_vectors(f))
    for size in (1, 7):
        n = whole.shape[0]
        parts = [snap(recaller.user_vectors({k: v[i : i + size] for k, v in f.items()}))
                 for i in range(0, n, size)]  # fmt: skip
        assert np.array_equal(np.concatenate(parts), whole)
