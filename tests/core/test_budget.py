"""core.budget: impossible allocations are refused in one line before they are tried."""

from __future__ import annotations

import pytest

from core import budget
from core.errors import UserError


def test_small_arrays_pass():
    budget.check_array("per-user sums", (2, 5, 1000, 7, 5))


def test_the_109_tib_request_is_refused_naming_shape_and_limit():
    with pytest.raises(UserError) as exc:
        budget.check_array("per-user sums (arms x scenarios x users x days x 5)",
                           (2, 5, 8000, 1_000_000_000, 5))  # fmt: skip
    msg = str(exc.value)
    assert "per-user sums" in msg and "2.8 PiB" in msg and "1,000,000,000" in msg
    assert "of this machine's memory" in msg and "\n" not in msg


def test_the_limit_follows_the_machine(monkeypatch):
    monkeypatch.setattr(budget, "physical_memory", lambda: 1 << 20)
    budget.check_array("x", (1 << 16,))  # 512 KiB: exactly the limit
    with pytest.raises(UserError, match=r"x needs 512.0 KiB.*limit of 512.0 KiB"):
        budget.check_array("x", ((1 << 16) + 1,))
