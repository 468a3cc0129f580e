"""Report folders are replaced whole: a reader sees the old report or the new one, never a mix.

``run``, ``report RUNDIR``, the studies, ``replay`` and ``evaluate`` write into a sibling
staging folder and swap it in (:mod:`abtest.report.outdir`). These tests break that at every
step — a failure midway (in process), a SIGKILL before, right after and (without
``renameat2``) between the two renames of the swap (in a child process started with ``python
-c``) — and check that the folder is the old one byte for byte or the complete new one, that
the next command cleans up (no ``.staging-*``, no ``.*.tmp``), and that files the tool did
not write are kept."""

from __future__ import annotations

import errno
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from abtest.cli.main import main
from abtest.online.results_json import from_json
from abtest.report import folder, outdir, plots, tables
from core.staging import PREFIX
from tests.conftest import FIXTURES, ROOT, tiny_tree

EXAMPLE = FIXTURES / "results_example.json"


def fast_render() -> None:
    """Plots as a few bytes that name the file and the results (PNG encoding is the slow
    part; these tests are about files). Also used by the child processes."""

    def save_png(fig, path) -> None:
        Path(path).write_bytes(b"\x89PNG fake " + fig.get_suptitle().encode())

    plots.save_png = save_png


def results_doc(seed: int) -> dict:
    doc = json.loads(EXAMPLE.read_text())
    doc["seed"] = seed
    doc["daily"] = {"overall": doc["daily"]["overall"]}  # fewer panels: faster
    doc["distributions"] = {"overall": doc["distributions"]["overall"]}
    return doc


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def leftovers(parent: Path) -> list[str]:
    found = [p for p in parent.rglob("*") if p.name.startswith(PREFIX) or ".old-" in p.name]
    found += [p for p in parent.rglob(".*.tmp")]
    return [str(p) for p in found]


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(plots, "save_png", plots.save_png)  # restored afterwards
    fast_render()


@pytest.fixture
def old_run(tmp_path, fast) -> Path:
    """A run folder holding seed 1's report, a user's notes, a subfolder, events.parquet and
    a temporary file an interrupted older version left."""
    run = tmp_path / "runs" / "run"
    folder.write_report(from_json(results_doc(1)), run)
    (run / "notes.txt").write_text("my notes\n")
    (run / "mine").mkdir()
    (run / "mine" / "a.txt").write_text("a\n")
    (run / "events.parquet").write_bytes(b"events of seed 1")
    (run / ".report.md.x1y2.tmp").write_text("half a report")
    return run


def _main(args: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as exc:
        rc = exc.code
    return rc, capsys.readouterr().err


def _one_error(stderr: str, pattern: str) -> None:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.search(pattern, errors[0]), stderr


# ---------------------------------------------------------------------------- in process


def test_a_rerender_replaces_the_tools_files_and_keeps_the_others(old_run, capsys):
    results = old_run / "results.json"
    doc = json.loads(results.read_text())
    doc["seed"] = 2
    del doc["daily"]  # no cumulative.png / pvalues.png any more
    results.write_text(json.dumps(doc))
    assert _main(["report", str(old_run)], capsys)[0] == 0
    names = {p.name for p in old_run.iterdir()}
    assert {"notes.txt", "mine", "events.parquet"} <= names
    assert "cumulative.png" not in names and "pvalues.png" not in names
    assert (old_run / "notes.txt").read_text() == "my notes\n"
    assert (old_run / "mine" / "a.txt").read_text() == "a\n"
    assert (old_run / "events.parquet").read_bytes() == b"events of seed 1"  # same run
    assert json.loads((old_run / "results.json").read_text())["seed"] == 2
    assert leftovers(old_run.parent) == []


def _boom_plot(monkeypatch) -> None:
    def boom(_results):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(plots, "plot_mde", boom)


def _disk_full(monkeypatch) -> None:
    def full(*_args):
        raise OSError(errno.ENOSPC, "No space left on device", "lift.csv")

    monkeypatch.setattr(folder, "write_lift_csv", full)


def _swap_fails(monkeypatch) -> None:
    def refuse(staged, target):
        raise OSError(errno.EXDEV, "Invalid cross-device link", str(target))

    monkeypatch.setattr(outdir, "replace_dir", refuse)


def _carry_fails(monkeypatch) -> None:
    def fail(src, dst):
        raise OSError(errno.EACCES, "Permission denied", src)

    monkeypatch.setattr(outdir, "_link_or_copy", fail)


def _md_fails(monkeypatch) -> None:
    def fail(*_args):
        raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(folder, "page", fail)


# id -> (inject the failure, exit status, the error line's pattern)
FAILURES = {
    "a-plot-fails": (_boom_plot, 1, r"internal error in report: RuntimeError: plotting failed"),
    "disk-full-midway": (_disk_full, 2, r"error: report: No space left on device \(lift.csv\)"),
    "the-swap-fails": (_swap_fails, 2, r"Invalid cross-device link"),
    "carrying-user-files-fails": (_carry_fails, 2, r"cannot carry the other files of .*run"),
    "rendering-the-page-fails": (_md_fails, 1, r"internal error in report: UnicodeEncodeError"),
}  # fmt: skip


@pytest.mark.parametrize("failure", list(FAILURES))
def test_a_failure_midway_leaves_the_old_folder_byte_identical(failure, old_run, monkeypatch,
                                                                capsys):  # fmt: skip
    inject, status, pattern = FAILURES[failure]
    (old_run / "results.json").write_text(json.dumps(results_doc(2)))
    before = snapshot(old_run)
    inject(monkeypatch)
    rc, stderr = _main(["report", str(old_run)], capsys)
    assert rc == status, stderr
    _one_error(stderr, pattern)
    assert snapshot(old_run) == before
    assert not [p for p in old_run.parent.iterdir() if p.name.startswith(PREFIX)]


def _non_run_folder(tmp: Path) -> Path:
    out = tmp / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious\n")
    return out


def _a_file(tmp: Path) -> Path:
    out = tmp / "file"
    out.write_text("a file\n")
    return out


def _the_current_folder(tmp: Path) -> Path:
    return Path(".")


def _above_the_current_folder(tmp: Path) -> Path:
    return Path("..")


# id -> (the --out folder, the error line's pattern)
REFUSED = {
    "not-a-run-folder": (_non_run_folder, r"mine is not empty and holds no result of this tool"),
    "a-file": (_a_file, r"output folder .*file is a file, not a folder"),
    "the-current-folder": (_the_current_folder, r"output folder \. is the current folder"),
    "above-the-current-folder": (_above_the_current_folder, r"\.\. is the current folder or holds"),
}  # fmt: skip
COMMANDS = {
    "run": ["run", "--treatment", "popular", "--control", "random", "--quiet"],
    "aa": ["aa", "--model", "popular", "--runs", "2", "--quiet"],
    "power": ["power", "--model", "popular", "--quiet"],
    "replay": ["replay", "--policy", "popular", "--quiet"],
    "evaluate": ["evaluate", "--models", "popular", "--quiet"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(REFUSED))
def test_an_out_that_is_not_the_tools_is_refused_at_once(case, command, tmp_path, monkeypatch,
                                                         capsys):  # fmt: skip
    """Refused before any work: the cache stays empty, the folder untouched."""
    make, pattern = REFUSED[case]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(tiny_tree(), sort_keys=False))
    out = make(work)
    before = snapshot(tmp_path)
    rc, stderr = _main([*COMMANDS[command], "--config", str(cfg), "--out", str(out)], capsys)
    assert rc == 2
    _one_error(stderr, pattern)
    assert snapshot(tmp_path) == before and not (tmp_path / "cache").exists()


def test_studies_share_a_folder(tmp_path, fast):
    from abtest.report import studies
    from tests.abtest.report.test_studies import _power, _study

    out = tmp_path / "validity"
    studies.write_aa(_study(), "mixed", out)
    studies.write_power(_power(), out)
    (out / "notes.txt").write_text("mine\n")
    aa = (out / "aa.json").read_bytes()
    studies.write_coverage(_study(), "sass", "mixed", out)
    assert {p.name for p in out.iterdir()} == {"aa.json", "aa_qq.png", "power.json",
                                                "coverage.json", "notes.txt"}  # fmt: skip
    assert (out / "aa.json").read_bytes() == aa
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------- SIGKILL

CHILD = """
import json, os, signal, sys
from pathlib import Path
import core.staging as staging
from abtest.online.results_json import from_json
from abtest.report import folder, outdir
from tests.abtest.cli.test_report_folder import fast_render

mode, target, doc = sys.argv[1], Path(sys.argv[2]), json.loads(sys.argv[3])
fast_render()
real_replace, real_os_replace = outdir.replace_dir, os.replace

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def swap_then_die(staged, to):
    real_replace(staged, to)
    die()

def second_rename_dies(src, dst):
    if Path(src).name.startswith(staging.PREFIX):  # staged -> target: the second rename
        die()
    real_os_replace(src, dst)

if mode == "before-swap":
    outdir.replace_dir = lambda staged, to: die()
elif mode == "after-swap":
    outdir.replace_dir = swap_then_die
elif mode == "between-renames":
    staging._exchange = lambda a, b: False  # a file system without renameat2
    os.replace = second_rename_dies
folder.write_report(from_json(doc), target)
print("not killed")
"""


def _killed_child(mode: str, target: Path, doc: dict) -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(target), json.dumps(doc)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == -9, proc.stdout + proc.stderr


@pytest.mark.parametrize("mode", ["before-swap", "after-swap", "between-renames"])
def test_a_kill_during_the_swap_leaves_a_whole_folder(mode, old_run, tmp_path, capsys):
    old = snapshot(old_run)
    new_doc = results_doc(2)
    expected = tmp_path / "expected"  # what the new render is, rendered undisturbed
    folder.write_report(from_json(new_doc), expected)
    for name in ("notes.txt", "events.parquet"):  # carried over from the old folder
        (expected / name).write_bytes((old_run / name).read_bytes())
    (expected / "mine").mkdir()
    (expected / "mine" / "a.txt").write_text("a\n")
    new = snapshot(expected)

    _killed_child(mode, old_run, new_doc)
    assert leftovers(old_run.parent)  # the dead process's staging (or .old-) folder
    if mode == "between-renames":  # the old folder is out of place until recovered
        assert not old_run.exists()
        outdir.claim(old_run)  # what every command does first: recover_dir
    got = snapshot(old_run)
    assert got == (new if mode == "after-swap" else old)

    # the next command cleans up after the dead one
    assert _main(["report", str(old_run)], capsys)[0] == 0
    assert leftovers(old_run.parent) == []
    assert json.loads((old_run / "results.json").read_text())["seed"] == (
        2 if mode == "after-swap" else 1
    )


# ---------------------------------------------------------------------------- run


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    base = tmp_path_factory.mktemp("world")
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    cfg = base / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(tree, sort_keys=False))
    return cfg, base / "cache"


def test_run_into_an_earlier_run_folder(tiny_world, tmp_path, monkeypatch, capsys):
    """A failed run leaves the earlier run whole; a good one replaces it (events.parquet of
    the earlier run included) and keeps the user's notes."""
    cfg, cache = tiny_world
    monkeypatch.setenv("ABTEST_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    base = ["run", "--treatment", "popular", "--control", "random", "--no-twin", "--quiet",
            "--config", str(cfg), "--out", str(out)]  # fmt: skip
    assert _main([*base, "--save-events"], capsys)[0] == 0
    assert (out / "events.parquet").is_file()
    (out / "notes.txt").write_text("my notes\n")
    before = snapshot(out)

    with monkeypatch.context() as mp:
        _boom_plot(mp)
        rc, stderr = _main([*base, "--seed", "5"], capsys)
    assert rc == 1 and "plotting failed" in stderr
    assert snapshot(out) == before and leftovers(tmp_path) == []

    assert _main([*base, "--seed", "5"], capsys)[0] == 0
    names = {p.name for p in out.iterdir()}
    assert "events.parquet" not in names  # the earlier run's: replaced with the rest
    assert (out / "notes.txt").read_text() == "my notes\n"
    assert json.loads((out / "results.json").read_text())["seed"] == 5
    assert tables.CSV_FIELDS[0] in (out / "lift.csv").read_text()
    assert leftovers(tmp_path) == []
