"""A model's scorer on logs (abtest/offline/scorers.py): without a world only the floors."""

from __future__ import annotations

import pytest

from abtest.offline.run import run_offline
from core.errors import UserError
from simulator.converters import obd_to_logs
from tests.abtest.offline.conftest import write_logs
from tests.conftest import FIXTURES


def test_learned_models_need_a_world(tmp_path):
    logs, _, _ = obd_to_logs(FIXTURES / "obd" / "bts" / "men" / "men.csv")
    with pytest.raises(UserError, match="only the floors"):
        run_offline(None, "sass", None, write_logs(tmp_path / "x", logs), ["ips"])
