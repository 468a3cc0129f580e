"""How tests damage a log folder: flip bits of a file, edit (and perhaps re-seal) its manifest.

Each helper returns a function of the folder, so a table row can say what it breaks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from simulator.logfolder import FILES, MANIFEST, SELF, read_manifest, seal


def flip(name: str, at: float = 0.5, bits: int = 1) -> Callable[[Path], None]:
    """Flip `bits` bits of file `name` (in a folder) from relative offset `at` on."""

    def apply(folder: Path) -> None:
        path = folder / name
        raw = bytearray(path.read_bytes())
        for k in range(bits):
            raw[int(len(raw) * at) + 8 * k] ^= 0x04
        path.write_bytes(bytes(raw))

    return apply


def edit_manifest(edit: Callable[[dict], None], *, reseal: bool = False):
    """Edit the folder's manifest in place; `reseal`: record new digests (a deliberate edit)."""

    def apply(folder: Path) -> None:
        manifest = read_manifest(folder)
        edit(manifest)
        if reseal:
            seal(folder, manifest)
        else:
            (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))

    return apply


def later_pre_period(m: dict) -> None:
    m["pre_period_end"] = m["pre_period_end"].replace("T00:00", "T12:00")


def unsealed(m: dict) -> None:
    """As an older version wrote it: no digests."""
    del m[FILES], m[SELF]
