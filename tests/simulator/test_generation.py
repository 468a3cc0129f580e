"""simulator.generation: where caches go."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import UserError
from simulator.generation import cache_dir


def test_cache_dir_defaults_to_dot_cache(monkeypatch):
    monkeypatch.delenv("ABTEST_CACHE", raising=False)
    assert cache_dir() == Path(".cache")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path))
    assert cache_dir() == tmp_path


@pytest.mark.parametrize("value", ["", " ", "\t"])
def test_empty_cache_variable_is_refused_not_read_as_the_source_tree(monkeypatch, value):
    monkeypatch.setenv("ABTEST_CACHE", value)
    with pytest.raises(UserError, match="ABTEST_CACHE is set but empty"):
        cache_dir()
