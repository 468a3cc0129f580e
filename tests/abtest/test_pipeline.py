"""Getting a model ready: training configs, checkpoint paths, the floors without training."""

from __future__ import annotations

import pytest

from abtest.pipeline import checkpoint_path, get_model, train_config
from models.floors import PopularRecaller, RandomRecaller
from models.train import TrainConfig
from models.zoo import ModelConfig
from tests.models.conftest import tiny_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory)


def test_epochs_override_gives_its_own_checkpoint(data):
    assert train_config() == TrainConfig()
    assert train_config(8) == TrainConfig(max_epochs=8)
    cfg = ModelConfig("sass", data.spec)
    default, _ = checkpoint_path(data, cfg, train_config(), 0)
    longer, _ = checkpoint_path(data, cfg, train_config(8), 0)
    assert default != longer and default.parent == longer.parent


def test_floors_are_ready_without_training(data):
    pop = get_model("popular", data, 5, progress=False)
    rnd = get_model("random", data, 5, progress=False)
    assert isinstance(pop.recaller, PopularRecaller) and isinstance(rnd.recaller, RandomRecaller)
    for ready in (pop, rnd):
        assert ready.checkpoint is None and not ready.trained_now
        assert ready.train_seconds == 0.0 and ready.history == []
    assert pop.recaller.seed == rnd.recaller.seed == 5
