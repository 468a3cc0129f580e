"""Content digests of artefacts: sha256 per file, recorded last, verified before use.

A cached or saved artefact (a log folder, a checkpoint) records the sha256 of each of its
files when it is complete; whoever loads it recomputes them first. A mismatch means the
artefact was damaged or edited after it was written: a cache treats it as missing (and
rebuilds it, saying so); a file the user named is refused with an error naming it.

Imports only the standard library.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from pathlib import Path

_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def digests(folder: str | Path, names: Iterable[str]) -> dict[str, str]:
    """``{name: sha256}`` of the named files in `folder`."""
    folder = Path(folder)
    return {name: file_sha256(folder / name) for name in names}


def mismatches(folder: str | Path, expected: Mapping[str, str]) -> list[str]:
    """The files of `expected` that are missing from `folder` or whose content differs.

    Each entry is a short reason ("logs.parquet: content changed"), empty if all match.
    """
    folder = Path(folder)
    bad = []
    for name, want in expected.items():
        path = folder / name
        try:
            got = file_sha256(path)
        except FileNotFoundError:
            bad.append(f"{name}: missing")
            continue
        except OSError as exc:
            bad.append(f"{name}: unreadable ({exc.strerror or exc})")
            continue
        if got != want:
            bad.append(f"{name}: content changed (sha256 {got[:12]}…, recorded {want[:12]}…)")
    return bad


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
