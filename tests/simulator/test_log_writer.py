"""simulator.logs.LogWriter's chunk files: in a staging folder of the temp folder, removed
when the writer closes (however its block ends), and removed by the next writer when a
killed process left them behind."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from core import staging
from simulator.logs import LogWriter, chunk_root


@pytest.fixture
def chunks(tmp_path, monkeypatch) -> Path:
    """The log writers' chunk root, inside this test's temp folder."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return chunk_root()


def test_log_writer_removes_its_chunks_on_close_and_on_failure(chunks):
    with LogWriter(None, ["logging"]) as writer:  # no world needed until lazy()
        assert writer.tmpdir.parent == chunks and writer.tmpdir.name.startswith(staging.PREFIX)
        (writer.tmpdir / "chunk-00000.parquet").write_bytes(b"rows")
    assert not writer.tmpdir.exists()
    writer.close()  # idempotent
    with pytest.raises(RuntimeError, match="boom"), LogWriter(None, ["logging"]) as writer:
        raise RuntimeError("boom")
    assert list(chunks.iterdir()) == []


def test_chunks_of_a_killed_writer_are_removed_by_the_next_one(chunks):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = chunks / f"{staging.PREFIX}{int(done.stdout)}-12345-abcd"
    stale.mkdir(parents=True)
    (stale / "chunk-00000.parquet").write_bytes(b"13.5 MB of rows")
    with LogWriter(None, ["logging"]) as writer:
        assert not stale.exists()
        assert [p.name for p in chunks.iterdir()] == [writer.tmpdir.name]
