"""The one error boundary of the command line: every failure becomes one line.

* bad input (:class:`core.errors.UserError`) → ``error: <message>``, exit 2;
* a resource failure (any ``OSError``: disk full, permission denied, read-only file system,
  a path the file system cannot encode; polars' I/O errors, which carry the OS error in
  their text) → ``error: <command>: <cause> (<path>)``, exit 2 — the user can act on it;
* SIGTERM → ``terminated: …``, exit 143, after the ``finally`` blocks have removed staging
  files (see :func:`core.staging.sigterm_raises`); Ctrl-C → exit 130;
* anything else is a bug: ``error: internal error in <command>: <type>: <message>`` with
  the path of a log file that holds the traceback (for a bug report), exit 1. The
  traceback never reaches the terminal.

May import ``core`` only.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

from core.errors import UserError
from core.staging import Terminated

EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_TERMINATED = 2, 1, 143
TERMINATED = "terminated: outputs already written are intact"
_OS_ERROR_TEXT = re.compile(r"(os error \d+|No space left|Permission denied|Read-only file)")


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def describe_os_error(exc: OSError) -> str:
    """`exc` as one clause: its cause and the path(s) it names."""
    cause = exc.strerror or errno.errorcode.get(exc.errno or 0) or str(exc) or type(exc).__name__
    paths = [p for p in (exc.filename, exc.filename2) if p is not None]
    where = f" ({' -> '.join(map(str, paths))})" if paths else ""
    return f"{cause}{where}"


def _is_io_failure(exc: BaseException) -> bool:
    """A library error (polars, pyarrow) that wraps an operating-system failure."""
    return type(exc).__module__.split(".")[0] in {"polars", "pyarrow"} and bool(
        _OS_ERROR_TEXT.search(str(exc))
    )


def traceback_log(command: str, exc: BaseException) -> Path | None:
    """Write `exc`'s traceback to a fresh log file: its path, None if it could not be written."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    text = "".join(traceback.format_exception(exc))
    folder = Path(tempfile.gettempdir()) / "abtest-errors"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{command}-{stamp}-{os.getpid()}.log"
        path.write_text(f"python -m abtest {' '.join(sys.argv[1:])}\n{text}", encoding="utf-8")
    except OSError:
        return None
    return path


def guarded(command: str, fn: Callable[[], int]) -> int:
    """Run one command's body inside the boundary; its exit status."""
    try:
        return fn()
    except UserError as exc:
        _say(f"error: {exc}")
        return EXIT_BAD_INPUT
    except Terminated:
        _say(TERMINATED)
        return EXIT_TERMINATED
    except OSError as exc:
        _say(f"error: {command}: {describe_os_error(exc)}")
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:
        if _is_io_failure(exc):
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            _say(f"error: {command}: {first}")
            return EXIT_BAD_INPUT
        log = traceback_log(command, exc)
        where = f"; traceback in {log}" if log else ""
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        _say(f"error: internal error in {command}: {type(exc).__name__}: {message}{where}")
        return EXIT_INTERNAL
