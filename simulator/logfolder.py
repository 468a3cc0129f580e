"""A log folder's files and its manifest: sealed with content digests, verified before use.

A generated log folder holds ``logs.parquet``, ``users.parquet``, ``items.parquet`` and,
written last, ``manifest.json``: what shaped the logs (config, seed, periods, the
fingerprint of the config sections that shape them), the sha256 of each data file under
``files``, and under ``manifest_sha256`` the sha256 of the rest of the manifest (canonical
JSON), so an edited manifest is caught as well as an edited data file.

* :func:`seal` records the digests and writes the manifest (generation; a deliberate edit);
* :func:`problems` says why a folder fails verification (empty when it verifies): a cache
  treats any problem as a missing folder and regenerates it, saying why;
* :func:`verify_named` refuses a folder the user named, with an error naming the folder and
  the file. A folder without a manifest (logs converted from KuaiRand or the Open Bandit
  Dataset) has nothing to check and stays readable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core import fileio
from core.config import Config
from core.digest import digests, mismatches, text_sha256
from core.errors import UserError

LOGS, USERS, ITEMS, MANIFEST = "logs.parquet", "users.parquet", "items.parquet", "manifest.json"
DATA_FILES = (LOGS, USERS, ITEMS)
FILES, SELF = "files", "manifest_sha256"
# The config sections that shape the logged traffic (serving and experiment settings do not).
LOG_SECTIONS = ("seed", "world", "scenarios", "traffic", "leave", "periods", "logging_policy")


def logs_fingerprint(config: Config) -> str:
    """Fingerprint of the config sections that shape the logs (names the cached log folder)."""
    return config.fingerprint(LOG_SECTIONS)


def _self_digest(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != SELF}
    return text_sha256(json.dumps(body, sort_keys=True, separators=(",", ":")))


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The folder's manifest as a dict; UserError when it is missing or not a JSON object."""
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{folder} is not a complete log folder (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise UserError(f"{path}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise UserError(
            f"{path}: unreadable manifest (a JSON object expected, got {type(manifest).__name__})"
        )
    return manifest


def seal(folder: str | Path, manifest: dict[str, Any] | None = None) -> dict[str, Any]:
    """Record the sha256 of the folder's data files in `manifest` (default: the folder's own
    manifest, re-sealed after a deliberate edit) and write it as ``manifest.json``."""
    folder = Path(folder)
    body = dict(read_manifest(folder) if manifest is None else manifest)
    body.pop(FILES, None)
    body.pop(SELF, None)
    body[FILES] = digests(folder, [n for n in DATA_FILES if (folder / n).exists()])
    body[SELF] = _self_digest(body)
    fileio.write_json(folder / MANIFEST, body)
    return body


def _sealed(manifest: dict[str, Any]) -> bool:
    return FILES in manifest or SELF in manifest


def problems(folder: str | Path, *, fingerprint: str | None = None) -> list[str]:
    """Why `folder` fails verification, as short reasons ("logs.parquet: content changed
    ..."); empty when it verifies. `fingerprint`: the :func:`logs_fingerprint` its manifest
    must record (a cached folder's key)."""
    folder = Path(folder)
    if not (folder / MANIFEST).exists():
        return [f"no {MANIFEST}"]
    try:
        manifest = read_manifest(folder)
    except UserError as exc:
        return [str(exc).removeprefix(f"{folder}/")]
    recorded = manifest.get(FILES)
    if not _sealed(manifest):
        return [f"{MANIFEST}: no file digests (written by an older version)"]
    if manifest.get(SELF) != _self_digest(manifest) or not isinstance(recorded, dict):
        return [f"{MANIFEST}: content changed since it was written"]
    unrecorded = [n for n in DATA_FILES if not isinstance(recorded.get(n), str)]
    if unrecorded:
        return [f"{MANIFEST}: no digest of {', '.join(unrecorded)}"]
    if fingerprint is not None and manifest.get("logs_fingerprint") != fingerprint:
        return [
            f"{MANIFEST}: written for another config (logs fingerprint "
            f"{manifest.get('logs_fingerprint')}, expected {fingerprint})"
        ]
    return mismatches(folder, {n: recorded[n] for n in DATA_FILES})


def verify_named(path: str | Path) -> None:
    """Refuse a log folder (or a file in one) that the user named if it fails verification.

    The error names the folder and what failed. Nothing is checked without a manifest (real
    logs), nor for a manifest of another kind without digests; a synthetic manifest without
    digests (written by an older version) cannot be verified and is refused.
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if not (folder / MANIFEST).exists():
        return
    manifest = read_manifest(folder)
    if not _sealed(manifest) and manifest.get("kind") != "synthetic":
        return
    bad = problems(folder)
    if bad:
        raise UserError(
            f"log folder {folder} failed verification: {'; '.join(bad)}; it was changed or "
            f"damaged after it was generated (regenerate it: python -m abtest generate --out DIR)"
        )
