"""`run --design interleaving` end to end on a tiny world: the report folder, the A/A note,
reproducibility, and the options that do not apply."""

from __future__ import annotations

import json

import pytest
import yaml

from abtest.cli.main import main
from tests.abtest.cli.test_bad_input import check_error, run_main
from tests.conftest import tiny_tree


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("interleaving")
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    cfg = root / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(tree))
    mp = pytest.MonkeyPatch()
    mp.setenv("ABTEST_CACHE", str(root / "cache"))
    yield root, cfg
    mp.undo()


def _args(cfg, out, *extra):
    return ["run", "--config", str(cfg), "--design", "interleaving", "--treatment", "popular",
            "--control", "random", "--out", str(out), "--quiet", *extra]  # fmt: skip


# a whole tiny pipeline run twice per variant (about 10 s each): slow, CI runs them; the
# interleaving itself is in the default suite (tests/abtest/online/test_interleaving.py)
@pytest.mark.slow
@pytest.mark.parametrize("variant", ["recall", "slate"])
def test_interleaving_run_writes_its_report_and_is_reproducible(tiny, variant, capsys):
    root, cfg = tiny
    out = root / f"run-{variant}"
    assert main(_args(cfg, out, "--variant", variant)) == 0
    printed = capsys.readouterr().out
    assert "share" in printed and f"{out}/interleaving.md" in printed
    doc = json.loads((out / "interleaving.json").read_text())
    assert doc["variant"] == variant and doc["treatment"] == "popular"
    assert set(doc["scenarios"]) == {s["name"] for s in tiny_tree()["scenarios"]}
    assert doc["run"]["command"].startswith("python -m abtest run")
    md = (out / "interleaving.md").read_text()
    assert "estimand" in md.lower() and (out / "interleaving.png").stat().st_size > 0
    # the same seed gives the same statistics; a rerun replaces the folder whole
    assert main(_args(cfg, out, "--variant", variant)) == 0
    again = json.loads((out / "interleaving.json").read_text())
    assert again["scenarios"] == doc["scenarios"] and again["overall"] == doc["overall"]


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--save-events"], "--save-events does not apply"),
        (["--bootstrap", "100"], "--bootstrap does not apply"),
        (["--workers", "2"], "Ray shards"),
        (["--days", "0"], "--days"),
    ],
)
def test_options_that_do_not_apply_are_refused(tiny, tmp_path, capsys, extra, match):
    _, cfg = tiny
    out = tmp_path / "run"
    code, err = run_main(_args(cfg, out, *extra), capsys)
    assert code == 2
    check_error(err, match)
    assert not out.exists()


def test_variant_needs_the_interleaving_design(tiny, tmp_path, capsys):
    _, cfg = tiny
    args = ["run", "--config", str(cfg), "--treatment", "popular", "--control", "random",
            "--variant", "slate", "--out", str(tmp_path / "run"), "--quiet"]  # fmt: skip
    code, err = run_main(args, capsys)
    assert code == 2
    check_error(err, "--variant needs --design interleaving")
