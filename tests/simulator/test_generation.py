"""simulator.generation: where caches go, and a generation's staging folder, which never
outlives its job (a killed job's is removed by the next)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core import staging
from core.errors import UserError
from simulator import generation
from simulator.generation import cache_dir, generate
from simulator.logfolder import DATA_FILES, MANIFEST, problems
from simulator.logs import chunk_root


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


# ---------------------------------------------------------------- staging folders


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_generation_removes_stale_staging_and_keeps_other_files(generated, folder):
    config, _ = generated
    stale = folder / f"{staging.PREFIX}{_dead_pid()}-12345-abcd"
    stale.mkdir()
    (stale / "logs.parquet").write_bytes(b"half written")
    (folder / "notes.txt").write_text("mine")
    generate(config, folder, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*DATA_FILES, MANIFEST, "notes.txt"])
    assert problems(folder) == []


def test_failed_generation_leaves_no_staging_and_the_old_folder_intact(
    generated, folder, monkeypatch, tmp_path
):
    config, _ = generated
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def boom(world):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(generation, "world_tables", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        generate(config, folder, progress=False)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert list(chunk_root().iterdir()) == []  # the log writer's chunks are gone too
