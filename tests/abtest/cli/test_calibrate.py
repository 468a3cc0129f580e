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
