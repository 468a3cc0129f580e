"""Staging folders that clean up after themselves, and whole-folder replacement.

A job that writes several files (a log folder, a report folder) writes them into a sibling
*staging* folder and then puts the folder in place in one step, so a reader sees the old
folder or the new one, never a mix of two runs.

* :func:`staging_dir` creates ``.staging-<pid>-<start>-<random>`` beside the target and
  removes it on success, on failure and on SIGTERM (the CLI turns SIGTERM into an
  exception, see :func:`sigterm_raises`). SIGKILL cannot be caught: the next job removes
  staging folders whose owner is provably dead — no process with that pid, or one whose
  start time differs (the pid was reused) — and leaves live ones alone.
* :func:`replace_dir` swaps the staging folder with the target. On Linux it uses
  ``renameat2(RENAME_EXCHANGE)``, one atomic system call, so there is no moment without a
  complete target; elsewhere it falls back to two renames, with the old folder kept as
  ``<target>.old-<pid>`` until the new one is in place, and :func:`recover_dir` restoring
  it if a crash fell between the two renames.

Imports only the standard library and :mod:`core.errors`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import secrets
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from core.errors import UserError

PREFIX = ".staging-"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def process_start(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot, from /proc), None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: fields follow the last ')'
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start: str) -> bool:
    if pid == os.getpid():
        return process_start(pid) in (start, None)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    now = process_start(pid)
    return now is None or now == start  # without /proc, a live pid counts as the owner


def _owner(name: str) -> tuple[int, str] | None:
    """(pid, start) encoded in a staging folder's name, None if it is not one of ours."""
    parts = name[len(PREFIX) :].split("-") if name.startswith(PREFIX) else []
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    return int(parts[0]), parts[1]


def remove_stale(parent: Path) -> list[Path]:
    """Remove the staging folders in `parent` whose owner process is dead; return them."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in parent.iterdir():
            owner = _owner(entry.name)
            if owner is not None and entry.is_dir() and not _alive(*owner):
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    return removed


@contextlib.contextmanager
def staging_dir(parent: str | Path) -> Iterator[Path]:
    """A fresh staging folder in `parent`, removed when the block ends (any way it ends).

    Stale staging folders of dead processes in `parent` are removed first.
    """
    parent = Path(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale(parent)
        start = process_start(os.getpid()) or "0"
        path = parent / f"{PREFIX}{os.getpid()}-{start}-{secrets.token_hex(4)}"
        path.mkdir()
    except OSError as exc:
        raise UserError(f"cannot write to {parent}: {exc.strerror or exc}") from None
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2; False where the call is unavailable."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError, TypeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: the file system cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _old_of(target: Path) -> Path:
    return target.with_name(f"{target.name}.old-{os.getpid()}")


def recover_dir(target: Path) -> None:
    """Undo a two-rename replacement that a crash interrupted: restore ``<target>.old-*``."""
    olds = sorted(target.parent.glob(f"{target.name}.old-*"))
    if not target.exists() and olds:
        os.replace(olds[-1], target)
        olds = olds[:-1]
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)


def replace_dir(staged: Path, target: Path) -> None:
    """Put the complete folder `staged` in place of `target` (created if missing).

    Afterwards `staged` holds the previous target (or nothing); the caller's
    :func:`staging_dir` block removes it.
    """
    try:
        if not target.exists():
            os.replace(staged, target)
            staged.mkdir()  # the staging block expects its folder back
            return
        if _exchange(staged, target):
            return
        old = _old_of(target)
        os.replace(target, old)  # a crash here leaves only <target>.old-*: recover_dir
        os.replace(staged, target)
        os.replace(old, staged)
    except OSError as exc:
        raise UserError(f"cannot replace {target}: {exc.strerror or exc}") from None


class Terminated(BaseException):
    """SIGTERM arrived; raised in the main thread so `finally` blocks clean up.

    A BaseException, like KeyboardInterrupt: it can surface inside any library call, and a
    library's ``except Exception`` must not swallow it (tqdm, starting its monitor thread,
    turns any Exception into a warning and carries on).
    """


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` in the main thread (so `finally`
    blocks clean up); the previous handler comes back afterwards. No-op off the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
