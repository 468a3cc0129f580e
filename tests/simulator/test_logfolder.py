"""simulator.logfolder: the sealed log folder (its manifest records every file's sha256 and
its own), how verification names what changed, and read_logs verifying what it reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.digest import file_sha256
from core.errors import UserError
from simulator import logfolder
from simulator.generation import log_dir_for
from simulator.logfolder import (
    DATA_FILES,
    FILES,
    MANIFEST,
    SELF,
    logs_fingerprint,
    problems,
    read_manifest,
    seal,
    verify_named,
)
from simulator.logs import read_logs
from tests.conftest import FAST
from tests.damage import edit_manifest, flip, later_pre_period, unsealed


def test_the_manifest_records_the_files_digests_and_its_own(generated):
    config, out = generated
    manifest = read_manifest(out)
    assert sorted(p.name for p in out.iterdir()) == sorted([*DATA_FILES, MANIFEST])
    assert manifest[FILES] == {name: file_sha256(out / name) for name in DATA_FILES}
    assert list(manifest)[-2:] == [FILES, SELF] and len(manifest[SELF]) == 64
    assert manifest["logs_fingerprint"] == logs_fingerprint(config) == log_dir_for(config).name
    assert problems(out) == [] and problems(out, fingerprint=logs_fingerprint(config)) == []
    verify_named(out)
    verify_named(out / "logs.parquet")


def _one_digest_less(m: dict) -> None:
    del m[FILES]["users.parquet"]
    m[SELF] = logfolder._self_digest(m)


def _rewrite_logs(folder: Path) -> None:
    """Valid parquet, other rows: only the digest can tell."""
    logs = pl.read_parquet(folder / "logs.parquet")
    logs.with_columns(click=1 - pl.col("click")).write_parquet(folder / "logs.parquet")


DAMAGE = [
    ("logs-one-bit", flip("logs.parquet"), r"^logs\.parquet: content changed \(sha256 "),
    ("logs-rewritten", _rewrite_logs, r"^logs\.parquet: content changed"),
    ("users-one-bit", flip("users.parquet", 0.1), r"^users\.parquet: content changed"),
    ("items-truncated", lambda f: (f / "items.parquet").write_bytes(b"PAR1"),
     r"^items\.parquet: content changed"),
    ("items-deleted", lambda f: (f / "items.parquet").unlink(), r"^items\.parquet: missing$"),
    ("logs-a-folder", lambda f: ((f / "logs.parquet").unlink(), (f / "logs.parquet").mkdir()),
     r"^logs\.parquet: unreadable"),
    ("manifest-deleted", lambda f: (f / MANIFEST).unlink(), r"^no manifest\.json$"),
    ("manifest-not-json", lambda f: (f / MANIFEST).write_text("{not json"),
     r"^manifest\.json: unreadable manifest \("),
    ("manifest-empty", lambda f: (f / MANIFEST).write_text(""), r"^manifest\.json: unreadable"),
    ("manifest-binary", lambda f: (f / MANIFEST).write_bytes(b"\xff\xfe{"),
     r"^manifest\.json: unreadable"),
    ("manifest-a-list", lambda f: (f / MANIFEST).write_text("[1]"),
     r"^manifest\.json: unreadable manifest \(a JSON object expected, got list\)"),
    ("manifest-one-bit", flip(MANIFEST, 0.2), r"^manifest\.json: (content changed|unreadable)"),
    ("manifest-pre-period-edited", edit_manifest(later_pre_period),
     r"^manifest\.json: content changed since it was written$"),
    ("manifest-config-edited", edit_manifest(lambda m: m["config"]["world"].update(n_users=9)),
     r"^manifest\.json: content changed"),
    ("manifest-digest-edited", edit_manifest(lambda m: m[FILES].update({"logs.parquet": "0"})),
     r"^manifest\.json: content changed"),
    ("manifest-of-an-older-version", edit_manifest(unsealed),
     r"^manifest\.json: no file digests \(written by an older version\)$"),
    ("manifest-one-digest-less", edit_manifest(_one_digest_less),
     r"^manifest\.json: no digest of users\.parquet$"),
]  # fmt: skip


@pytest.mark.parametrize(("damage", "pattern"), [pytest.param(d, p, id=i) for i, d, p in DAMAGE])
def test_verification_names_what_changed(folder, damage, pattern):
    damage(folder)
    bad = problems(folder)
    assert len(bad) == 1 and "\n" not in bad[0], bad
    assert re.search(pattern, bad[0]), bad[0]
    if (folder / MANIFEST).exists():  # without a manifest a named folder has nothing to check
        named = re.escape(str(folder))
        with pytest.raises(UserError, match=rf"^(log folder {named} failed verification: "
                           rf"|{named}/manifest\.json: unreadable manifest \()"):  # fmt: skip
            verify_named(folder)


def test_a_deliberate_edit_resealed_verifies(folder):
    edit_manifest(later_pre_period, reseal=True)(folder)
    _rewrite_logs(folder)
    seal(folder)  # the folder's own manifest, digests recomputed
    assert problems(folder) == []
    assert read_manifest(folder)["pre_period_end"].endswith("T12:00:00+00:00")


def test_a_manifest_for_another_config_fails_a_cache_check(generated, folder):
    config, _ = generated
    edit_manifest(lambda m: m.update(logs_fingerprint="0" * 16), reseal=True)(folder)
    assert problems(folder) == []  # a named folder: any config
    (reason,) = problems(folder, fingerprint=logs_fingerprint(config))
    assert reason.startswith("manifest.json: written for another config (logs fingerprint 0000")


def test_named_folders_without_digests(folder):
    """No manifest (real logs) or another kind without digests: nothing to check. A synthetic
    manifest without digests cannot be verified: refused."""
    (folder / MANIFEST).unlink()
    verify_named(folder)
    (folder / MANIFEST).write_text(json.dumps({"kind": "kuairand"}))
    verify_named(folder)
    edit_manifest(lambda m: m.update(kind="synthetic"))(folder)
    with pytest.raises(UserError, match=r"no file digests \(written by an older version\)"):
        verify_named(folder)


# ---------------------------------------------------------------- read_logs verifies


def test_read_logs_verifies_the_folder_it_reads_from(folder):
    good = read_logs(folder)
    _rewrite_logs(folder)  # valid, but not what was sealed
    for path in (folder, folder / "logs.parquet"):
        with pytest.raises(UserError, match=rf"^log folder {re.escape(str(folder))} failed "
                           r"verification: logs\.parquet: content changed"):  # fmt: skip
            read_logs(path)
    assert read_logs(folder, verify=False)["click"].sum() == good.height - good["click"].sum()
    (folder / "logs.parquet").write_bytes(b"")  # unreadable as well: verification comes first
    with pytest.raises(UserError, match=r"failed verification: logs\.parquet: content changed"):
        read_logs(folder)


def test_read_logs_checks_every_file_of_the_folder(folder):
    (folder / "items.parquet").write_bytes(b"other items")
    with pytest.raises(UserError, match=r"failed verification: items\.parquet: content changed"):
        read_logs(folder / "logs.parquet")


@settings(FAST, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from([*DATA_FILES, MANIFEST]), at=st.floats(0, 1, exclude_max=True),
       bit=st.integers(0, 7))  # fmt: skip
def test_any_flipped_bit_in_any_file_fails_verification(folder, name, at, bit):
    path = folder / name
    good = path.read_bytes()
    raw = bytearray(good)
    raw[int(at * len(raw))] ^= 1 << bit
    path.write_bytes(bytes(raw))
    try:
        assert problems(folder) != []
        with pytest.raises(UserError):
            verify_named(folder)
    finally:
        path.write_bytes(good)
    assert problems(folder) == []
