"""`train --logs DIR` and `evaluate --logs DIR`: every model on any log folder."""

from __future__ import annotations

import json

import pytest

from abtest.cli.main import main
from tests.abtest.cli.test_bad_input import check_error, run_main
from tests.conftest import logged_world, tiny_tree
from tests.helpers import as_imported


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    _, out, _, _ = logged_world(tmp_path_factory, tree)
    return out, as_imported(out, tmp_path_factory.mktemp("imported"))


def test_evaluate_on_an_imported_folder(folders, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    _, imported = folders
    out = tmp_path / "offline"
    args = ["evaluate", "--logs", str(imported), "--models", "popular,mixed", "--epochs", "1",
            "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    result = json.loads((out / "offline.json").read_text())
    manifest = json.loads((imported / "manifest.json").read_text())
    assert result["logs"] == str(imported)
    for model in ("popular", "mixed"):
        assert list(result["models"][model]) == manifest["scenarios"]
        assert 0 < result["models"][model]["home_feed"]["recall@100"] <= 1
    share = manifest["traffic_share"]["home_feed"]
    assert f"home_feed ({share:.0%})" in (out / "offline.md").read_text()


def test_train_on_a_generated_folder_uses_its_world(folders, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    generated, _ = folders
    # --config is the default scenarios.yaml: the folder's own config shapes its scenarios
    assert main(["train", "--logs", str(generated), "--model", "popular", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "home_feed" in printed and "validation requests" in printed


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda root, f: root / "missing", "log folder not found"),
        (lambda root, f: root, "is not a log folder .no manifest.json.: write one with"),
        (lambda root, f: _kind(root, f, "mystery"), "unknown kind 'mystery'"),
    ],
)
def test_bad_log_folders(folders, tmp_path, capsys, make, match):
    folder = make(tmp_path, folders[1])
    for cmd in (["train", "--model", "popular"], ["evaluate", "--models", "popular"]):
        code, err = run_main([*cmd, "--logs", str(folder), "--quiet"], capsys)
        assert code == 2
        check_error(err, match)


def _kind(root, imported, kind):
    import shutil

    from simulator.logfolder import read_manifest, seal

    folder = root / "copy"
    shutil.copytree(imported, folder)
    seal(folder, read_manifest(folder) | {"kind": kind})
    return folder
