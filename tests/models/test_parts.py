"""The named parts: per-scenario linear layers, scenario runs and SAT units."""

from __future__ import annotations

import torch

from models.parts import ScenarioAdaptiveTransfer, ScenarioLinear, ScenarioRuns


def test_scenario_linear_rows_use_their_own_weights():
    torch.manual_seed(0)
    layer = ScenarioLinear(3, 4, 2)
    x = torch.randn(5, 4)
    s = torch.tensor([0, 2, 1, 2, 0])
    want = torch.stack([x[i] @ layer.weight[s[i]] + layer.bias[s[i]] for i in range(5)])
    torch.testing.assert_close(layer(x, s), want)
    # rows sorted into scenario runs (one scenario with no rows) give the same rows
    s2 = torch.tensor([0, 2, 0, 2, 2])
    runs, order = ScenarioRuns.sort(s2, 3)
    assert runs.sizes == [2, 0, 3] and runs.scenario.tolist() == [0, 0, 2, 2, 2]
    torch.testing.assert_close(layer(x[order], runs), layer(x, s2)[order])


def test_sat_gates_in_unit_interval_and_fuse():
    torch.manual_seed(0)
    sat = ScenarioAdaptiveTransfer(2, 8)
    h, g = torch.randn(10, 8) * 5, torch.randn(10, 8) * 5
    out = sat(h, g, torch.tensor([0, 1] * 5))
    a, u = sat.last_gates
    assert ((a > 0) & (a < 1)).all() and ((u > 0) & (u < 1)).all()
    # out = (1-u) h + u (a g): each coordinate lies between h and a*g
    t = a * g
    lo, hi = torch.minimum(h, t), torch.maximum(h, t)
    assert ((out >= lo - 1e-6) & (out <= hi + 1e-6)).all()


def test_sat_gates_start_open():
    sat = ScenarioAdaptiveTransfer(3, 4, gate_bias=2.0)
    sat(torch.zeros(5, 4), torch.zeros(5, 4), torch.tensor([0, 1, 2, 0, 1]))
    for gate in sat.last_gates:
        torch.testing.assert_close(gate, torch.full((5, 4), torch.sigmoid(torch.tensor(2.0))))
