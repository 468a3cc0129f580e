"""core.staging: staging folders clean up; stale ones of dead processes go; swaps are whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from core import staging
from core.errors import UserError


def test_staging_dir_is_removed_on_success_and_on_failure(tmp_path):
    with staging.staging_dir(tmp_path) as stage:
        (stage / "f").write_text("x")
        assert stage.name.startswith(staging.PREFIX)
    assert not stage.exists()
    with pytest.raises(RuntimeError), staging.staging_dir(tmp_path) as stage:
        (stage / "f").write_text("x")
        raise RuntimeError("boom")
    assert not stage.exists()
    assert list(tmp_path.iterdir()) == []


def test_stale_staging_of_a_dead_process_is_removed_live_ones_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    pid = int(dead.stdout)
    stale = tmp_path / f"{staging.PREFIX}{pid}-12345-abcd"
    stale.mkdir()
    me = os.getpid()
    mine = tmp_path / f"{staging.PREFIX}{me}-{staging.process_start(me)}-beef"
    mine.mkdir()
    reused = tmp_path / f"{staging.PREFIX}{me}-1-cafe"  # our pid, another start time
    reused.mkdir()
    other = tmp_path / ".staging-not-ours"
    other.mkdir()
    removed = staging.remove_stale(tmp_path)
    assert set(removed) == {stale, reused}
    assert mine.exists() and other.exists()


@pytest.mark.parametrize("exchange", [True, False])
def test_replace_dir_swaps_whole_folders(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(staging, "_exchange", lambda a, b: False)
    target = tmp_path / "report"
    target.mkdir()
    (target / "old.txt").write_text("old")
    (target / "shared.txt").write_text("old")
    with staging.staging_dir(tmp_path) as stage:
        (stage / "shared.txt").write_text("new")
        (stage / "new.txt").write_text("new")
        staging.replace_dir(stage, target)
    assert sorted(p.name for p in target.iterdir()) == ["new.txt", "shared.txt"]
    assert (target / "shared.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_replace_dir_creates_a_missing_target(tmp_path):
    target = tmp_path / "a" / "report"
    target.parent.mkdir()
    with staging.staging_dir(tmp_path) as stage:
        (stage / "x").write_text("1")
        staging.replace_dir(stage, target)
    assert (target / "x").read_text() == "1"


def test_recover_dir_restores_the_old_folder_after_a_crash_between_renames(tmp_path):
    target = tmp_path / "report"
    old = tmp_path / "report.old-999"
    old.mkdir()
    (old / "f").write_text("old")
    staging.recover_dir(target)
    assert (target / "f").read_text() == "old" and not old.exists()


def test_unwritable_parent_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write to"), staging.staging_dir(blocker / "x"):
        pass


def test_sigterm_is_not_swallowed_by_a_library_catching_exception():
    """tqdm wraps the start of its monitor thread in ``except Exception`` (a warning): a
    SIGTERM arriving there must still end the command."""
    with pytest.raises(staging.Terminated, match="signal 15"), staging.sigterm_raises():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises here
        except Exception:
            pytest.fail("SIGTERM swallowed by `except Exception`")
