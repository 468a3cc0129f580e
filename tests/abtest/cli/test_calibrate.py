"""`calibrate` and `run --world` end to end on a tiny world: the artefact, its diagnostics,
the A/B on the fitted world (labelled model-based) and the refusals."""

from __future__ import annotations

import json

import pytest
import yaml

from abtest.cli.main import main
from tests.abtest.cli.test_bad_input import check_error, run_main
from tests.conftest import tiny_tree


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrate")
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tree))
    mp = pytest.MonkeyPatch()
    mp.setenv("ABTEST_CACHE", str(root / "cache"))
    world = root / "world"
    assert main(["calibrate", "--config", str(cfg), "--out", str(world), "--epochs", "5",
                 "--quiet"]) == 0  # fmt: skip
    yield root, cfg, world, tree
    mp.undo()


def test_calibrate_writes_a_verified_world_and_its_diagnostics(fitted):
    _, _, world, tree = fitted
    for name in ("params.npz", "world.json", "diagnostics.json", "diagnostics.png"):
        assert (world / name).stat().st_size > 0
    diag = json.loads((world / "diagnostics.json").read_text())
    held = diag["click"]["held_out"]
    assert held["rows"] > 0 and len(held["calibration"]) > 0
    meta = json.loads((world / "world.json").read_text())["meta"]
    assert len(meta["logs_sha256"]) == 64 and meta["settings"]["epochs"] == 5
    assert (
        json.loads((world / "world.json").read_text())["shapes"]["user_factors"][0]
        == (tree["world"]["n_users"])
    )


@pytest.mark.slow  # two `run`s on the fitted world; CI runs the slow tests
def test_run_on_the_fitted_world_is_labelled_model_based(fitted, monkeypatch, capsys):
    root, cfg, world, _ = fitted
    monkeypatch.setenv("ABTEST_CACHE", str(root / "cache"))
    out = root / "run"
    args = ["run", "--config", str(cfg), "--treatment", "popular", "--control", "random",
            "--world", str(world), "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["world"].startswith("fitted from logs")
    report = (out / "report.md").read_text()
    assert "true lift (model-based)" in report and "not ground truth" in report
    assert "world fitted from logs (its truth is model-based)" in report
    assert "synthetic world yes" not in report
    # the same seed on the same fitted world gives the same statistics
    again = root / "again"
    assert main([*args[:-3], "--out", str(again), "--quiet"]) == 0
    assert json.loads((again / "results.json").read_text())["scenarios"] == res["scenarios"]


def _tampered(world, tmp):
    import shutil

    copy = tmp / "tampered"
    shutil.copytree(world, copy)
    data = bytearray((copy / "params.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "params.npz").write_bytes(data)
    return copy


def _other_logs(fitted, tmp):
    """A world fitted from another config's logs (another seed)."""
    tree = fitted[3]
    other = dict(tree, seed=tree["seed"] + 1)
    path = tmp / "other.yaml"
    path.write_text(yaml.safe_dump(other))
    world = tmp / "other_world"
    assert main(["calibrate", "--config", str(path), "--out", str(world), "--epochs", "2",
                 "--quiet"]) == 0  # fmt: skip
    return world


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda f, t: t / "missing", "fitted world not found"),
        (_tampered, "params.npz"),
        (_other_logs, "fitted from other logs"),
    ],
)
def test_a_bad_world_is_refused(fitted, tmp_path, monkeypatch, capsys, make, match):
    root, cfg, world, _ = fitted
    monkeypatch.setenv("ABTEST_CACHE", str(root / "cache"))
    bad = make(world, tmp_path) if make is not _other_logs else make(fitted, tmp_path)
    out = tmp_path / "run"
    args = ["run", "--config", str(cfg), "--treatment", "popular", "--control", "random",
            "--world", str(bad), "--out", str(out), "--quiet"]  # fmt: skip
    code, err = run_main(args, capsys)
    assert code == 2
    check_error(err, match)
    assert not out.exists()


def test_fidelity_end_to_end(fitted, monkeypatch, capsys):
    root, cfg, world, _ = fitted
    monkeypatch.setenv("ABTEST_CACHE", str(root / "cache"))
    out = root / "fidelity"
    args = ["fidelity", "--config", str(cfg), "--models", "popular", "--control", "random",
            "--world", str(world), "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    body = json.loads((out / "fidelity.json").read_text())
    assert "kendall_tau" in body and "sign_agreement" in body
    assert set(body["summary"]["by_metric"]) == {"ctr", "watch_time_per_user"}
    assert body["summary"]["overall"]["pairs"] == 2 * 5  # 2 metrics x 5 scenarios
    ll = body["click_log_loss"]
    assert ll["true"] < ll["constant"]  # the true click model is the floor
    assert (out / "fidelity.png").stat().st_size > 0 and "Kendall" in (
        out / "fidelity.md"
    ).read_text()


@pytest.fixture(scope="module")
def imported(fitted):
    """The tiny world's logs rewritten as an imported folder (``import``'s format)."""
    from abtest.pipeline import ensure_logs
    from core.config import load_config
    from tests.helpers import as_imported

    root, cfg, _, _ = fitted
    mp = pytest.MonkeyPatch()
    mp.setenv("ABTEST_CACHE", str(root / "cache"))
    logs = ensure_logs(load_config(cfg), progress=False)
    mp.undo()
    return as_imported(logs, root / "imported", pre_fraction=0.75)


@pytest.mark.slow  # fits a world from the imported folder, then a run on it
def test_run_on_an_imported_folder_runs_on_the_world_fitted_from_it(fitted, imported, monkeypatch):
    import datetime as dt

    from simulator.logfolder import read_manifest

    root, cfg, _, _ = fitted
    monkeypatch.setenv("ABTEST_CACHE", str(root / "cache"))
    out = root / "run_logs"
    args = ["run", "--config", str(cfg), "--logs", str(imported), "--treatment", "popular",
            "--control", "random", "--days", "1", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["world"].startswith(f"fitted from logs in {imported}")
    assert (root / "cache" / "worlds").is_dir()  # fitted once, cached for the next run
    manifest = read_manifest(imported)
    assert set(res["scenarios"]) == set(manifest["scenarios"])
    periods = res["config"]["periods"]
    start = dt.datetime.fromisoformat(manifest["start"])
    pre_end = dt.datetime.fromisoformat(manifest["pre_period_end"])
    assert periods["start_date"] == start.date().isoformat()
    # the pre-period ends at the last midnight at or before the folder's pre_period_end
    assert periods["pre_days"] == (pre_end.date() - start.date()).days
    assert "true lift (model-based)" in (out / "report.md").read_text()


@pytest.mark.parametrize(
    "make, extra, match",
    [
        (lambda f, i, t: t / "nowhere", [], "log folder not found"),
        (lambda f, i, t: t, [], "is not a log folder"),
        (lambda f, i, t: i, ["--world", "W"], "fitted from other logs"),
    ],
)
def test_run_logs_refusals(fitted, imported, tmp_path, monkeypatch, capsys, make, extra, match):
    root, cfg, world, _ = fitted
    monkeypatch.setenv("ABTEST_CACHE", str(root / "cache"))
    logs = make(fitted, imported, tmp_path)
    extra = [str(world) if a == "W" else a for a in extra]
    out = tmp_path / "run"
    args = ["run", "--config", str(cfg), "--logs", str(logs), "--treatment", "popular",
            "--control", "random", "--out", str(out), "--quiet", *extra]  # fmt: skip
    code, err = run_main(args, capsys)
    assert code == 2
    check_error(err, match)
    assert not out.exists()
