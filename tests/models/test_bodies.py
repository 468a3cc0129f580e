"""The bodies: running rows in scenario order gives each row its own output."""

from __future__ import annotations

import pytest
import torch

from models.bodies import run_body
from models.towers import build_model
from models.zoo import LEARNED
from tests.models.conftest import feature_batch, small_config


@pytest.mark.parametrize("name", [n for n in LEARNED if n not in ("mixed", "single", "zeus")])
def test_bodies_in_scenario_order_equal_the_per_row_path(data, name):
    """Towers run rows sorted by scenario (one matmul per scenario); the result is each
    row's own, in the rows' order, the same as every scenario's weights on every row."""
    torch.manual_seed(0)
    model = build_model(small_config(name, data), data.items)
    f, items = feature_batch(data)
    scen = f["scenario"]
    assert not bool((scen[1:] >= scen[:-1]).all())  # the batch is not already sorted
    x = model.user_encoder(f, scen)
    want, want_g = model.user_body(x, scen)
    got, got_g = run_body(model.user_body, x, scen, data.spec.n_scenarios)
    torch.testing.assert_close(got, want)
    if want_g is not None:
        torch.testing.assert_close(got_g, want_g)
    xi = model.item_encoder(items)
    torch.testing.assert_close(
        run_body(model.item_body, xi, scen, data.spec.n_scenarios)[0], model.item_body(xi, scen)[0]
    )
