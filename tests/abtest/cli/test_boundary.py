"""abtest.cli.boundary: every failure is one stderr line with the right exit status."""

from __future__ import annotations

import errno
import os
import re
import signal

import pytest

from abtest.cli import boundary
from core.errors import UserError
from core.staging import Terminated, sigterm_raises


def _raise(exc: BaseException):
    def body() -> int:
        raise exc

    return body


class _ComputeError(Exception):  # stands in for polars.exceptions.ComputeError
    pass


_ComputeError.__module__ = "polars.exceptions"


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (UserError("bad --days: 0"), 2, r"^error: bad --days: 0$"),
        (OSError(errno.ENOSPC, "No space left on device", "/out/report.md"), 2,
         r"^error: run: No space left on device \(/out/report.md\)$"),
        (PermissionError(errno.EACCES, "Permission denied", "/cache/x"), 2,
         r"^error: run: Permission denied \(/cache/x\)$"),
        (OSError(errno.EROFS, "Read-only file system", "a", None, "b"), 2,
         r"^error: run: Read-only file system \(a -> b\)$"),
        (_ComputeError("failed to write: No space left on device (os error 28)"), 2,
         r"^error: run: failed to write: No space left on device \(os error 28\)$"),
        (Terminated("terminated by signal 15"), 143, r"^terminated: outputs already written"),
        (ZeroDivisionError("division by zero"), 1,
         r"^error: internal error in run: ZeroDivisionError: division by zero; "
         r"traceback in .+\.log$"),
    ],
)  # fmt: skip
def test_each_failure_is_one_line(capsys, exc, code, line):
    assert boundary.guarded("run", _raise(exc)) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert re.match(line, err.strip()), err
    assert "Traceback" not in err


def test_internal_error_traceback_goes_to_the_log_file(capsys):
    boundary.guarded("run", _raise(KeyError("k")))
    err = capsys.readouterr().err.strip()
    path = err.rsplit("traceback in ", 1)[1]
    with open(path) as f:
        text = f.read()
    assert "Traceback" in text and "KeyError" in text
    os.unlink(path)


def test_success_passes_the_status_through():
    assert boundary.guarded("run", lambda: 0) == 0


def test_keyboard_interrupt_is_left_to_the_caller():
    with pytest.raises(KeyboardInterrupt):
        boundary.guarded("run", _raise(KeyboardInterrupt()))


def test_sigterm_raises_inside_the_block_and_the_old_handler_returns():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), sigterm_raises():
        os.kill(os.getpid(), signal.SIGTERM)
        signal.pause() if hasattr(signal, "pause") else None
    assert signal.getsignal(signal.SIGTERM) == before
