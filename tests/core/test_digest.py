"""core.digest: recorded digests catch every changed, missing or unreadable file."""

from __future__ import annotations

import hashlib

from core.digest import digests, file_sha256, mismatches


def test_file_sha256_matches_hashlib(tmp_path):
    data = bytes(range(256)) * 5000  # over one read chunk
    (tmp_path / "a.bin").write_bytes(data)
    assert file_sha256(tmp_path / "a.bin") == hashlib.sha256(data).hexdigest()


def test_one_flipped_bit_is_a_mismatch(tmp_path):
    (tmp_path / "a").write_bytes(b"\x00" * 1000)
    (tmp_path / "b").write_bytes(b"hello")
    recorded = digests(tmp_path, ["a", "b"])
    assert mismatches(tmp_path, recorded) == []
    raw = bytearray((tmp_path / "a").read_bytes())
    raw[500] ^= 0x10
    (tmp_path / "a").write_bytes(bytes(raw))
    (tmp_path / "b").unlink()
    bad = mismatches(tmp_path, recorded)
    assert len(bad) == 2
    assert bad[0].startswith("a: content changed") and bad[1] == "b: missing"
