"""Shared by the simulator tests: one tiny generated log folder, and a fresh copy of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.config import config_from_dict
from simulator.generation import generate
from tests.conftest import tiny_tree


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The tiny world's config and its generated log folder (never modified)."""
    config = config_from_dict(tiny_tree(), "tiny")
    out = tmp_path_factory.mktemp("gen") / "logs"
    generate(config, out, progress=False)
    return config, out


@pytest.fixture
def folder(generated, tmp_path) -> Path:
    """A copy of the generated log folder, for a test to damage."""
    copy = tmp_path / "logs"
    shutil.copytree(generated[1], copy)
    return copy
