"""models.data's data hash: what keys the cached models, so what must change it (and what
must not)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from core.config import config_from_dict
from models.data import data_hash
from tests.conftest import tiny_tree

PRE_END = dt.datetime(2026, 3, 4, tzinfo=dt.timezone.utc)
FRAMES = [pl.DataFrame({"item_id": [1, 2, 3], "click": [0, 1, 0]})]


def _hash(frames=FRAMES, pre_end=PRE_END, tree=None, valid_days=2) -> str:
    return data_hash(frames, pre_end, config_from_dict(tree or tiny_tree(), "tiny"), valid_days)


def _tree(section: str, key: str, value) -> dict:
    tree = tiny_tree()
    tree[section][key] = value
    return tree


CHANGES = [
    ("a table's rows", lambda: _hash(frames=[FRAMES[0].with_columns(click=pl.lit(1))])),
    ("a column's dtype", lambda: _hash(frames=[FRAMES[0].cast({"click": pl.Int8})])),
    ("the end of the pre-period", lambda: _hash(pre_end=PRE_END + dt.timedelta(hours=12))),
    ("the held-out days", lambda: _hash(valid_days=1)),
    ("the history length", lambda: _hash(tree=_tree("world", "history_length", 7))),
    ("the seed", lambda: _hash(tree={**tiny_tree(), "seed": 1})),
]


@pytest.mark.parametrize("other", [c for _, c in CHANGES], ids=[i for i, _ in CHANGES])
def test_what_shapes_the_data_changes_its_hash(other):
    assert len(_hash()) == 16 and _hash() == _hash()
    assert other() != _hash()


def test_serving_and_experiment_settings_do_not_retrain():
    serving = _tree("serving", "candidates", 200)
    experiment = _tree("experiment", "alpha", 0.01)
    assert _hash(tree=serving) == _hash(tree=experiment) == _hash()
