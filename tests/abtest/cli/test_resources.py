"""A full disk, for the output folder or for the cache: one ``error:`` line, exit 2, no
traceback, and what was there before is intact.

Two ways to fill a disk: a real 64 KiB tmpfs (needs root and mount rights, as on the
project's machines; skipped elsewhere) and an injected ``OSError(ENOSPC)`` from the parquet
writer, which runs everywhere.
"""

from __future__ import annotations

import errno
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import polars as pl
import pytest
import yaml

from abtest.cli.main import main
from tests.conftest import tiny_tree


def _cfg(tmp_path: Path) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_tree(), sort_keys=False))
    return path


def _run(capsys, args: list[str]) -> tuple[int, list[str]]:
    """Exit status and the stderr lines other than progress (stage and "generating" lines)."""
    capsys.readouterr()
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    return code, [line for line in lines if not re.match(r"\[\d/\d\] |generating ", line)]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def small_disk(tmp_path):
    """A mounted 64 KiB tmpfs, unmounted afterwards."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    point = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(point)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def test_generate_onto_a_full_disk(small_disk, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    (small_disk / "earlier.txt").write_text("a file that was there before\n")
    before = _snapshot(small_disk)
    code, lines = _run(capsys, ["generate", "--config", str(_cfg(tmp_path)), "--out",
                                str(small_disk / "logs"), "--quiet"])  # fmt: skip
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error:"), lines
    assert re.search(r"No space left on device|os error 28", lines[0]), lines[0]
    assert _snapshot(small_disk) == before  # nothing half-written left behind


def test_cache_on_a_full_disk(small_disk, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ABTEST_CACHE", str(small_disk))
    monkeypatch.chdir(tmp_path)
    code, lines = _run(capsys, ["generate", "--config", str(_cfg(tmp_path)), "--quiet"])
    assert code == 2 and lines[-1].startswith("error:"), lines
    assert re.search(r"No space left on device|os error 28", lines[-1]), lines[-1]
    assert len(lines) == 1, lines


@pytest.mark.parametrize("how", ["oserror", "polars"])
def test_injected_disk_full_while_writing_logs(how, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "logs"

    def full(self, path, *args, **kwargs):
        if how == "oserror":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        raise pl.exceptions.ComputeError("failed to write: No space left on device (os error 28)")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    monkeypatch.setattr(pl.LazyFrame, "sink_parquet", full)
    code, lines = _run(capsys, ["generate", "--config", str(_cfg(tmp_path)), "--out", str(out),
                                "--quiet"])  # fmt: skip
    assert code == 2 and len(lines) == 1, lines
    assert re.match(r"error: generate: .*No space left on device", lines[0]), lines[0]
    leftovers = [p.name for p in out.iterdir()] if out.exists() else []
    assert leftovers == [], leftovers
