"""Output folders replaced as a whole: a reader sees the old files or the new ones, never a mix.

A command that writes a folder of files (``run``'s report, ``report RUNDIR``'s re-render,
the studies', ``replay``'s and ``evaluate``'s ``--out``) writes them into a sibling staging folder
(:func:`core.staging.staging_dir`) and swaps it with the output folder in one step
(:func:`core.staging.replace_dir`). A failure or a kill before the swap leaves the old folder
byte for byte; a kill after it leaves the new one; either way the next command removes the
dead staging folder, and restores an interrupted two-rename swap (:func:`core.staging.recover_dir`).

The rules, checked by :func:`claim` before any slow work:

* ``--out`` must be a folder (or not exist yet; it is created only by the swap, so a failed
  command leaves none), in a writable parent (the staging folder goes there), and not the
  current folder or one above it (the swap would pull it from under the shell);
* a non-empty ``--out`` must hold a result file of this tool (one of :data:`MARKERS`): any
  other folder (``reports/`` itself, a home folder) is refused rather than replaced;
* the files a command writes are replaced together; every other entry of the folder (a
  user's notes, another study's JSON, a run's ``events.parquet`` on re-render) is carried
  into the new folder (hard-linked where possible) — nothing the command did not write is
  lost. Temporary ``.*.tmp`` files of an interrupted earlier version are not carried.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Collection, Iterator
from pathlib import Path

from core.errors import UserError
from core.fileio import check_writable_dir
from core.staging import recover_dir, replace_dir, staging_dir

# a folder holding one of these was written by this tool, and may be replaced
MARKERS = (
    "results.json",
    "aa.json",
    "coverage.json",
    "power.json",
    "replay.json",
    "offline.json",
    "sass_map.json",
    "ablation.json",
    "world.json",  # a fitted world (calibrate)
    "fidelity.json",
    "interleaving.json",
    "plan.json",
)
_TEMP_LEFTOVER = re.compile(r"^\..+\.tmp$")  # core.fileio.atomic_path's temporary files


def _resolved(out: Path) -> Path:
    try:
        return out.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise UserError(f"output folder {out} cannot be resolved: {exc}") from None


def _check_writable(out: Path) -> None:
    """`out` (or, if it does not exist yet, its nearest existing parent) can take new files."""
    if out.is_dir():
        check_writable_dir(out)
        return
    parent = next(p for p in out.parents if p.exists() or p == p.parent)
    if not parent.is_dir():
        raise UserError(f"output folder {out} is not writable: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"output folder {out} is not writable: permission denied ({parent})")


def claim(out: str | Path) -> Path:
    """Check, before any slow work, that `out` may be replaced as a whole; returns it.

    Nothing is created: a command that fails leaves no empty output folder behind.
    """
    out = Path(out)
    real = _resolved(out)
    with contextlib.suppress(OSError):
        recover_dir(real)  # an earlier swap was cut between its two renames
    if out.exists() and not out.is_dir():
        raise UserError(f"output folder {out} is a file, not a folder")
    if real.parent == real or Path.cwd().resolve().is_relative_to(real):
        raise UserError(
            f"output folder {out} is the current folder or holds it; it is replaced as a "
            "whole: name a folder below the current one, or run from elsewhere"
        )
    if out.is_dir():
        try:
            entries = [p.name for p in out.iterdir()]
        except OSError as exc:
            raise UserError(f"cannot read output folder {out}: {exc.strerror or exc}") from None
        if entries and not any(name in entries for name in MARKERS):
            raise UserError(
                f"output folder {out} is not empty and holds no result of this tool "
                f"({', '.join(MARKERS)}); it would be replaced as a whole: use a new or "
                "empty folder"
            )
    _check_writable(out)
    if real.parent.is_dir() and not os.access(real.parent, os.W_OK | os.X_OK):
        raise UserError(  # the staging folder is written beside `out`
            f"output folder {out} cannot be replaced: its parent folder {real.parent} is not "
            "writable"
        )
    return out


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst, follow_symlinks=False)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _carry_over(old: Path, new: Path, owned: Collection[str]) -> None:
    """Put every entry of `old` that is not `owned` (nor already in `new`) into `new`."""
    for entry in old.iterdir():
        name = entry.name
        if name in owned or _TEMP_LEFTOVER.match(name) or (new / name).exists():
            continue
        if entry.is_symlink():
            os.symlink(os.readlink(entry), new / name)
        elif entry.is_dir():
            shutil.copytree(entry, new / name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(str(entry), str(new / name))


@contextlib.contextmanager
def replacing(out: str | Path, owned: Collection[str]) -> Iterator[Path]:
    """A staging folder to write `out`'s new files into; when the block ends without an
    error it replaces `out` as a whole.

    `owned` names the files the command writes: those of the old folder are dropped (a plot
    the new results have no data for goes with them); every other entry is carried over.
    """
    out = claim(out)
    target = _resolved(out)
    with staging_dir(target.parent) as stage:
        yield stage
        if target.is_dir():
            try:
                _carry_over(target, stage, owned)
            except OSError as exc:
                raise UserError(f"cannot carry the other files of {out} over: {exc}") from None
        replace_dir(stage, target)
