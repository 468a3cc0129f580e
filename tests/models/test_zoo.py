"""The zoo: model names and the model config."""

from __future__ import annotations

import pytest

from core.errors import UserError
from models.zoo import FLOORS, LEARNED, MODEL_NAMES, ModelConfig, check_model_name


def test_model_names_are_the_learned_models_then_the_floors():
    assert MODEL_NAMES == LEARNED + FLOORS
    assert FLOORS == ("popular", "random")
    assert len(set(MODEL_NAMES)) == len(MODEL_NAMES)
    assert check_model_name("sass") == "sass"
    with pytest.raises(UserError, match="unknown model 'nope'; known models: mixed, single"):
        check_model_name("nope")


def test_model_config_round_trips_through_a_dict(data):
    cfg = ModelConfig("star", data.spec, dim=8, experts=3)
    back = ModelConfig.from_dict(cfg.to_dict())
    assert back == cfg and isinstance(back.spec.profile_cards, tuple)
