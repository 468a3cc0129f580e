"""Damaged artefacts, end to end: a damaged cache is rebuilt, saying why, and never used; a
damaged log folder the user names is refused; a killed job's staging files do not outlive it.

Each row of ``CACHE_ROWS`` damages one artefact in a fresh copy of one tiny world's cache
(its generated logs and a trained ``mixed`` checkpoint), runs a command through
``abtest.cli.main`` and checks: exit 0; exactly one ``note:`` line on stderr naming what
failed verification and saying it is rebuilt; the numbers are those of the good cache; the
cache verifies afterwards. Each row of ``NAMED_ROWS`` damages a copy of the log folder that
the user names (``replay --logs``, ``run --replay``): exit 2, one ``error:`` line naming the
folder and the file, no file changed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
import yaml

from abtest.cli.main import main
from core import staging
from core.config import config_from_dict
from core.digest import file_sha256
from models.checkpoint import record_sha256, sha256_path, verify_checkpoint
from simulator.generation import log_dir_for
from simulator.logfolder import MANIFEST, problems, read_manifest
from tests.conftest import ROOT, tiny_tree
from tests.damage import edit_manifest, flip, later_pre_period, unsealed

# what a command may print on stderr besides its note or error: its stage lines
STAGE_LINE = re.compile(r"^(\[\d/\d\] |      |generating |note: |wrote )")

# ---------------------------------------------------------------------------- the world


def _tree() -> dict:
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    return tree


def _main(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(args)
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One tiny world: its config file, and a cache with its logs and a trained `mixed`."""
    base = tmp_path_factory.mktemp("world")
    cfg = base / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_tree(), sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ABTEST_CACHE", str(base / "cache"))
        rc, out, err = _main(["train", "--model", "mixed", "--config", str(cfg), "--quiet"])
        assert rc == 0, err
        logs = log_dir_for(config_from_dict(_tree(), "tiny"))
    (ckpt,) = (base / "cache" / "models").rglob("mixed-*.pt")
    return {"base": base, "cfg": cfg, "metrics": out.splitlines()[1:],
            "logs": logs.relative_to(base / "cache"),
            "ckpt": ckpt.relative_to(base / "cache")}  # fmt: skip


@dataclass
class Ctx:
    tmp: Path
    cfg: Path
    cache: Path
    logs: Path  # the config's cached log folder
    ckpt: Path  # the cached `mixed` checkpoint
    out: Path

    def named(self, damage: Callable[[Path], object] | None = None) -> Path:
        """A copy of the log folder that the user names, damaged by `damage`."""
        folder = self.tmp / "named"
        shutil.copytree(self.logs, folder)
        if damage is not None:
            damage(folder)
        return folder


@pytest.fixture
def ctx(world, tmp_path, monkeypatch) -> Ctx:
    cache = tmp_path / "cache"
    shutil.copytree(world["base"] / "cache", cache)
    monkeypatch.setenv("ABTEST_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)
    return Ctx(tmp_path, world["cfg"], cache, cache / world["logs"], cache / world["ckpt"],
               tmp_path / "out")  # fmt: skip


# ---------------------------------------------------------------------------- damage


def rewrite_logs(folder: Path) -> None:
    """Valid parquet with other clicks: only the digest can tell."""
    logs = pl.read_parquet(folder / "logs.parquet")
    logs.with_columns(click=1 - pl.col("click")).write_parquet(folder / "logs.parquet")


def flip_weights(path: Path) -> None:
    """Flip bits inside the largest tensor record of the checkpoint's zip (CRC left stale)."""
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for k in range(0, 256, 8):
        raw[start + info.file_size // 3 + k] ^= 0x40
    path.write_bytes(bytes(raw))


def on_logs(damage: Callable[[Path], object]) -> Callable[[Ctx], None]:
    return lambda ctx: damage(ctx.logs)


def on_ckpt(damage: Callable[[Path], object], *, reseal: bool = False) -> Callable[[Ctx], None]:
    def apply(ctx: Ctx) -> None:
        damage(ctx.ckpt)
        if reseal:  # intact bytes, as recorded, that are no checkpoint
            record_sha256(ctx.ckpt)

    return apply


# ---------------------------------------------------------------------------- cached artefacts

TRAIN = ["train", "--model", "mixed", "--quiet"]
RUN = ["run", "--treatment", "mixed", "--control", "popular", "--no-twin", "--quiet"]


@dataclass(frozen=True)
class CacheRow:
    id: str
    damage: Callable[[Ctx], None]
    rebuilt: str  # "regenerating" (the logs) or "retraining" (the checkpoint)
    reason: str  # a pattern for what failed verification
    command: tuple[str, ...] = tuple(TRAIN)


CACHE_ROWS = [
    CacheRow("logs-one-bit-flip", on_logs(flip("logs.parquet")), "regenerating",
             r"logs\.parquet: content changed \(sha256 \w+…, recorded \w+…\)"),
    CacheRow("logs-bit-flip-near-the-end", on_logs(flip("logs.parquet", 0.97)), "regenerating",
             r"logs\.parquet: content changed"),
    CacheRow("logs-rewritten-valid-parquet", on_logs(rewrite_logs), "regenerating",
             r"logs\.parquet: content changed"),
    CacheRow("logs-truncated", on_logs(lambda f: (f / "logs.parquet").write_bytes(b"PAR1")),
             "regenerating", r"logs\.parquet: content changed"),
    CacheRow("users-one-byte", on_logs(flip("users.parquet", 0.2)), "regenerating",
             r"users\.parquet: content changed"),
    CacheRow("items-deleted", on_logs(lambda f: (f / "items.parquet").unlink()), "regenerating",
             r"items\.parquet: missing"),
    CacheRow("manifest-not-json", on_logs(lambda f: (f / MANIFEST).write_text("{not json")),
             "regenerating", r"manifest\.json: unreadable manifest \("),
    CacheRow("manifest-deleted", on_logs(lambda f: (f / MANIFEST).unlink()), "regenerating",
             r"no manifest\.json"),
    CacheRow("manifest-pre-period-edited", on_logs(edit_manifest(later_pre_period)),
             "regenerating", r"manifest\.json: content changed since it was written"),
    CacheRow("manifest-one-bit-flip", on_logs(flip(MANIFEST, 0.3)), "regenerating",
             r"manifest\.json: (content changed|unreadable manifest)"),
    CacheRow("manifest-of-an-older-version", on_logs(edit_manifest(unsealed)), "regenerating",
             r"manifest\.json: no file digests \(written by an older version\)"),
    CacheRow("manifest-of-another-config",
             on_logs(edit_manifest(lambda m: m.update(logs_fingerprint="0" * 16), reseal=True)),
             "regenerating", r"manifest\.json: written for another config"),
    CacheRow("checkpoint-weight-bit-flips", on_ckpt(flip_weights), "retraining",
             r"content changed \(sha256 \w+…, recorded \w+…\)"),
    CacheRow("checkpoint-not-torch",
             on_ckpt(lambda p: p.write_text("this is not a checkpoint\n"), reseal=True),
             "retraining", r"not a readable checkpoint: \S"),
    CacheRow("checkpoint-empty", on_ckpt(lambda p: p.write_bytes(b""), reseal=True),
             "retraining", r"not a readable checkpoint"),
    CacheRow("checkpoint-truncated-zip",
             on_ckpt(lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])),
             "retraining", r"content changed"),
    CacheRow("checkpoint-record-missing", on_ckpt(lambda p: sha256_path(p).unlink()),
             "retraining", r"no recorded sha256 \(mixed-\S+\.pt\.sha256 is missing\)"),
    CacheRow("checkpoint-record-garbage",
             on_ckpt(lambda p: sha256_path(p).write_text("not a digest\n")), "retraining",
             r"mixed-\S+\.pt\.sha256 is not a sha256 record"),
    CacheRow("run-checkpoint-truncated-zip",
             on_ckpt(lambda p: p.write_bytes(b"PK\x03\x04 truncated zip")), "retraining",
             r"content changed", tuple(RUN)),
    CacheRow("run-logs-one-bit-flip", on_logs(flip("logs.parquet", 0.6)), "regenerating",
             r"logs\.parquet: content changed", tuple(RUN)),
]  # fmt: skip


@pytest.mark.parametrize("row", CACHE_ROWS, ids=[r.id for r in CACHE_ROWS])
def test_a_damaged_cache_is_rebuilt_saying_why_never_used(row: CacheRow, ctx: Ctx, world):
    row.damage(ctx)
    args = [*row.command, "--config", str(ctx.cfg)]
    if row.command[0] == "run":
        args += ["--out", str(ctx.out)]
    rc, stdout, stderr = _main(args)
    assert rc == 0, stderr
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    notes = [line for line in lines if line.startswith("note:")]
    what = "logs in" if row.rebuilt == "regenerating" else "checkpoint"
    assert len(notes) == 1, stderr
    note = rf"note: cached {what} {re.escape(str(ctx.cache))}/\S+ failed verification, "
    assert re.match(rf"{note}{row.rebuilt}: {row.reason}", notes[0]), notes[0]
    assert all(STAGE_LINE.match(line) for line in lines if line not in notes), stderr
    if row.command[0] == "train":
        status = "trained in" if row.rebuilt == "retraining" else "loaded"
        assert stdout.splitlines()[0].startswith(f"mixed (seed {_tree()['seed']}): {status}")
        assert stdout.splitlines()[1:] == world["metrics"]  # the good cache's numbers
    else:
        assert ("trained in" in stderr) == (row.rebuilt == "retraining")
        assert (ctx.out / "results.json").exists()
    assert problems(ctx.logs, fingerprint=ctx.logs.name) == []
    verify_checkpoint(ctx.ckpt)


def test_a_bit_flipped_checkpoint_in_run_gives_the_good_caches_results(ctx: Ctx):
    """The issue's example: the flipped weights moved a lift from +6.9% to +11.7%."""
    good, damaged = ctx.tmp / "good", ctx.tmp / "damaged"
    args = [*RUN, "--config", str(ctx.cfg)]
    assert _main([*args, "--out", str(good)])[0] == 0
    flip_weights(ctx.ckpt)
    rc, _, stderr = _main([*args, "--out", str(damaged)])
    assert rc == 0 and "failed verification, retraining: content changed" in stderr, stderr
    before, after = (json.loads((d / "results.json").read_text()) for d in (good, damaged))
    for key in ("scenarios", "overall"):
        assert after[key] == before[key], key
    # the same checkpoint path, retrained (its bytes hold the training time: another sha256)
    assert after["checkpoints"]["mixed"]["path"] == before["checkpoints"]["mixed"]["path"]
    assert after["checkpoints"]["mixed"]["sha256"] == file_sha256(ctx.ckpt)


def test_an_edited_and_resealed_pre_period_retrains_never_loads(ctx: Ctx, world):
    """A deliberate edit (manifest re-sealed): the split changed, so the data hash did."""
    edit_manifest(later_pre_period, reseal=True)(ctx.logs)
    rc, stdout, stderr = _main([*TRAIN, "--config", str(ctx.cfg)])
    assert rc == 0 and "note:" not in stderr, stderr
    first = stdout.splitlines()[0]
    assert ": trained in" in first and str(ctx.ckpt) not in first
    assert stdout.splitlines()[1:] != world["metrics"]  # another validation window
    assert ctx.ckpt.read_bytes() == (world["base"] / "cache" / world["ckpt"]).read_bytes()


# ---------------------------------------------------------------------------- named folders


def snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): file_sha256(p) for p in root.rglob("*") if p.is_file()}


def check_error(stderr: str, pattern: str) -> None:
    """Exactly one line ``error: ...`` matching `pattern`, last, after stage lines only."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    assert all(STAGE_LINE.match(line) for line in lines[:-1]), stderr
    assert re.search(pattern, errors[0]), f"{pattern!r} not in {errors[0]!r}"


def _replay(ctx: Ctx, logs: Path) -> list[str]:
    return ["replay", "--policy", "popular", "--logs", str(logs), "--config", str(ctx.cfg),
            "--out", str(ctx.out), "--quiet"]  # fmt: skip


def _run_replay(ctx: Ctx, logs: Path) -> list[str]:
    return ["run", "--treatment", "popular", "--control", "random", "--replay", str(logs),
            "--config", str(ctx.cfg), "--out", str(ctx.out), "--no-twin", "--quiet"]  # fmt: skip


@dataclass(frozen=True)
class NamedRow:
    id: str
    build: Callable[[Ctx], list[str]]
    pattern: str


FAILED = r"log folder \S+/named failed verification: "
NAMED_ROWS = [
    NamedRow("replay-logs-one-bit-flip", lambda c: _replay(c, c.named(flip("logs.parquet"))),
             FAILED + r"logs\.parquet: content changed \(sha256 \w+…, recorded \w+…\); it was "
             r"changed or damaged after it was generated"),
    NamedRow("replay-logs-rewritten", lambda c: _replay(c, c.named(rewrite_logs)),
             FAILED + r"logs\.parquet: content changed"),
    NamedRow("replay-file-named-users-changed",
             lambda c: _replay(c, c.named(flip("users.parquet", 0.3)) / "logs.parquet"),
             FAILED + r"users\.parquet: content changed"),
    NamedRow("replay-items-deleted",
             lambda c: _replay(c, c.named(lambda f: (f / "items.parquet").unlink())),
             FAILED + r"items\.parquet: missing"),
    NamedRow("replay-manifest-pre-period-edited",
             lambda c: _replay(c, c.named(edit_manifest(later_pre_period))),
             FAILED + r"manifest\.json: content changed since it was written"),
    NamedRow("replay-manifest-of-an-older-version",
             lambda c: _replay(c, c.named(edit_manifest(unsealed))),
             FAILED + r"manifest\.json: no file digests \(written by an older version\)"),
    NamedRow("run-replay-one-bit-flip", lambda c: _run_replay(c, c.named(flip("logs.parquet"))),
             FAILED + r"logs\.parquet: content changed"),
    NamedRow("run-replay-manifest-edited",
             lambda c: _run_replay(c, c.named(edit_manifest(later_pre_period))),
             FAILED + r"manifest\.json: content changed"),
    NamedRow("run-replay-items-one-bit-flip",
             lambda c: _run_replay(c, c.named(flip("items.parquet", 0.4)) / "logs.parquet"),
             FAILED + r"items\.parquet: content changed"),
]  # fmt: skip


@pytest.mark.parametrize("row", NAMED_ROWS, ids=[r.id for r in NAMED_ROWS])
def test_a_damaged_named_log_folder_is_refused(row: NamedRow, ctx: Ctx):
    args = row.build(ctx)
    before = snapshot(ctx.tmp)
    rc, stdout, stderr = _main(args)
    assert rc == 2, stderr
    check_error(stderr, row.pattern)
    assert stdout == ""
    after = snapshot(ctx.tmp)
    assert [p for p, h in before.items() if after.get(p) != h] == []


def test_a_named_folder_without_a_manifest_stays_readable(ctx: Ctx):
    """Real logs (KuaiRand, Open Bandit Dataset) have no manifest: nothing to verify."""
    folder = ctx.named(lambda f: (f / MANIFEST).unlink())
    real = ctx.tmp / "real"
    real.mkdir()
    shutil.copy(folder / "logs.parquet", real / "logs.parquet")
    rc, stdout, stderr = _main(_replay(ctx, real))
    assert rc == 0, stderr
    assert "popular" in stdout and (ctx.out / "replay.json").exists()


# ---------------------------------------------------------------------------- killed jobs


def _slow_world(tmp: Path) -> Path:
    """A world whose generation takes a few seconds: time to signal it."""
    tree = tiny_tree(n_users=3000)
    tree["periods"].update({"pre_days": 4, "experiment_days": 2})
    cfg = tmp / "slow.yaml"
    cfg.write_text(yaml.safe_dump(tree, sort_keys=False))
    return cfg


def _start_generation(tmp: Path, out: Path) -> tuple[subprocess.Popen, Path]:
    """`generate` in a subprocess with its own cache and temp folder, once it is writing."""
    temp = tmp / "temp"
    temp.mkdir()
    env = {**os.environ, "ABTEST_CACHE": str(tmp / "cache"), "TMPDIR": str(temp),
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    args = [sys.executable, "-m", "abtest", "generate", "--config", str(_slow_world(tmp)),
            "--out", str(out), "--quiet"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    chunks = temp / f"abtest-logs-{os.getuid()}"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        writing = list(chunks.glob(f"{staging.PREFIX}*")) if chunks.exists() else []
        if writing and list(out.glob(f"{staging.PREFIX}*")):
            break
        time.sleep(0.02)
    assert proc.poll() is None, "generation ended before it could be signalled"
    return proc, chunks


def test_sigterm_during_generation_leaves_no_staging_and_exits_143(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("the user's own file\n")
    proc, chunks = _start_generation(tmp_path, out)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, (stdout, stderr, sorted(p.name for p in out.iterdir()))
    assert "terminated" in stderr and "Traceback" not in stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert list(chunks.iterdir()) == []


def test_staging_of_a_killed_generation_is_removed_by_the_next_run(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    proc, chunks = _start_generation(tmp_path, out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    left = list(out.glob(f"{staging.PREFIX}*"))
    assert proc.returncode == -signal.SIGKILL and left and list(chunks.iterdir())
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "temp"))
    cfg = config_from_dict(_tree(), "tiny")
    tree_file = tmp_path / "tiny.yaml"
    tree_file.write_text(yaml.safe_dump(_tree(), sort_keys=False))
    rc, _, stderr = _main(["generate", "--config", str(tree_file), "--out", str(out), "--quiet"])
    assert rc == 0, stderr
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert list(chunks.iterdir()) == [] and problems(out) == []
    assert read_manifest(out)["logs_fingerprint"] == log_dir_for(cfg).name


def test_stale_staging_in_the_cache_is_removed_by_a_run_that_rebuilds_nothing(ctx: Ctx):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = [folder / f"{staging.PREFIX}{int(done.stdout)}-12345-abcd"
             for folder in (ctx.logs, ctx.ckpt.parent)]  # fmt: skip
    for folder in stale:
        folder.mkdir()
        (folder / "half-written").write_bytes(b"x" * 1000)
    rc, stdout, stderr = _main([*TRAIN, "--config", str(ctx.cfg)])
    assert rc == 0 and ": loaded" in stdout and "note:" not in stderr, stderr
    assert not any(folder.exists() for folder in stale)
