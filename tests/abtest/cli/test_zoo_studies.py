"""``study sass-map`` and ``study sass-ablation``: bad input is one ``error:`` line and exit 2
before any slow work; end to end on the tiny world."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

import abtest.pipeline
from abtest.cli.main import build_parser, main
from abtest.zoo_studies import sass_map as study
from abtest.zoo_studies.ablation import VARIANTS
from tests.conftest import tiny_tree

TARGET = "related_detail"


def _tree() -> dict:
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})  # a validation split
    return tree


def _one_error(capsys, args: list[str]) -> str:
    """Run `args`: exit 2 with exactly one ``error:`` line on stderr; that line."""
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse's own usage errors
        rc = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--target", "nope"], "--target: unknown scenario 'nope'; the config's scenarios: "
                               "home_feed, immersive_video, image_text, related_detail, "
                               "new_user_landing"),
        (["--shares", "0"], "argument --shares: invalid traffic share 0: must be in (0, 1)"),
        (["--shares", "0.1,1.5"], "invalid traffic share 1.5: must be in (0, 1)"),
        (["--shares", "0.1,abc"], "invalid traffic share 'abc': must be a number in (0, 1)"),
        (["--shares", "0.1,0.10"], "a traffic share is given twice in '0.1,0.10'"),
        (["--shares", ",".join(f"0.0{i}" for i in range(1, 10)) + ",0.1,0.2"],
         "11 values of traffic share: the limit is 10"),
        (["--shares", ","], "no traffic share given"),
        (["--shifts", "0,nan"], "invalid systematic shift nan: must be in [0, 1]"),
        (["--shifts", "-0.1"], "invalid systematic shift -0.1: must be in [0, 1]"),
        (["--models", "mixed,star"], "--models must include sass and at least one model"),
        (["--models", "sass"], "--models must include sass and at least one model"),
        (["--models", "mixed,sass,mixed"], "--models: a model is named twice"),
        (["--models", "mixed,sas"], "unknown model 'sas'; known models: mixed,"),
        (["--workers", "0"], "invalid count 0: must be >= 1"),
    ],
)  # fmt: skip
def test_bad_sass_map_input_is_one_line_and_exit_2(
    tmp_path, write_yaml, capsys, monkeypatch, extra, match
):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    args = ["study", "sass-map", "--config", str(write_yaml(_tree())), "--out", str(out),
            "--quiet", *extra]  # fmt: skip
    assert match in _one_error(capsys, args)
    assert not out.exists() and not (tmp_path / "cache").exists()  # nothing slow ran


def test_a_config_without_the_default_target_names_it(tmp_path, write_yaml, capsys, monkeypatch):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    tree = _tree()
    tree["scenarios"] = tree["scenarios"][:2]  # home_feed 0.48, immersive_video 0.52
    tree["scenarios"][1]["traffic_share"] = 0.52
    args = ["study", "sass-map", "--config", str(write_yaml(tree)), "--models", "mixed,sass",
            "--out", str(tmp_path / "o")]  # fmt: skip
    assert _one_error(capsys, args) == (
        "error: --target: unknown scenario 'related_detail'; the config's scenarios: "
        "home_feed, immersive_video"
    )
    assert not (tmp_path / "o").exists() and not (tmp_path / "cache").exists()


def test_out_folder_of_something_else_is_refused_before_any_slow_work(
    tmp_path, write_yaml, capsys, monkeypatch
):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    cfg = str(write_yaml(_tree()))
    for cmd in (["sass-map", "--models", "mixed,sass"], ["sass-ablation"]):
        line = _one_error(capsys, ["study", *cmd, "--config", cfg, "--out", str(other)])
        assert "holds no result of this tool" in line
    assert not (tmp_path / "cache").exists() and (other / "notes.txt").read_text() == "mine"


def test_help_names_the_study_defaults(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["study", "sass-map", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {study.DEFAULT_TARGET})" in text
    assert f"(default: {','.join(study.MAP_MODELS)})" in text
    assert f"(default: {','.join(f'{x:g}' for x in study.SHIFTS)})" in text
    assert f"(default: {','.join(f'{x:g}' for x in study.SHARES)})" in text


@pytest.fixture
def one_thread(monkeypatch):
    """The commands' training config (with their --epochs) on one torch thread: on 2 cores
    shared with other work, two threads spin against each other (the tiny world's SASS
    trains in about 1 s with one, over a minute with two)."""
    plain = abtest.pipeline.train_config

    def train_config(epochs=None):
        return dataclasses.replace(plain(epochs), threads=1)

    monkeypatch.setattr(abtest.pipeline, "train_config", train_config)


def _finite(entry: dict, seeds: int) -> bool:
    values = entry["values"]
    return len(values) == seeds and all(math.isfinite(v) for v in [*values, entry["mean"]])


@pytest.mark.slow  # trains every model on 4 worlds (about 15 s); CI runs the slow tests
def test_sass_map_end_to_end_on_a_tiny_2x2_grid(
    tmp_path, write_yaml, capsys, monkeypatch, one_thread
):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "map"
    args = ["study", "sass-map", "--config", str(write_yaml(_tree())), "--models", "mixed,sass",
            "--shifts", "0.9,0", "--shares", "0.2,0.5", "--seeds", "2", "--epochs", "1",
            "--target", TARGET, "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"# SASS map: where SASS beats the baselines in `{TARGET}`")
    assert printed.rstrip().endswith(f"wrote {out}/sass_map.json, sass_map.md and sass_map.png")
    doc = json.loads((out / "sass_map.json").read_text())
    seed = _tree()["seed"]
    assert doc["seeds"] == [seed, seed + 1] and doc["shifts"] == [0.0, 0.9]
    assert [(c["shift"], c["share"]) for c in doc["cells"]] == [
        (0.0, 0.2), (0.0, 0.5), (0.9, 0.2), (0.9, 0.5)
    ]  # fmt: skip
    for cell in doc["cells"]:
        assert cell["requests"] > 0 and cell["seconds"] > 0
        for model in ("mixed", "sass"):
            assert all(_finite(cell["scores"][model][m], 2) for m in ("recall@50", "ndcg@50"))
        assert _finite(cell["sass_minus_mixed"]["recall@50"], 2)
        assert cell["sass_minus_best_other"]["recall@50"]["other"] == "mixed"
        assert cell["winner"]["recall@50"] in ("mixed", "sass")
    assert len({c["data_hash"] for c in doc["cells"]}) == 4  # a world per cell
    assert (out / "sass_map.md").read_text() in printed
    assert (out / "sass_map.png").stat().st_size > 10_000


@pytest.mark.slow  # trains every variant (about 12 s)
def test_sass_ablation_end_to_end_on_the_tiny_world(
    tmp_path, write_yaml, capsys, monkeypatch, one_thread
):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "ablation"
    args = ["study", "sass-ablation", "--config", str(write_yaml(_tree())), "--seeds", "2",
            "--epochs", "1", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert printed.rstrip().endswith(f"wrote {out}/ablation.json and ablation.md")
    doc = json.loads((out / "ablation.json").read_text())
    assert [v["label"] for v in doc["variants"]] == [v.label for v in VARIANTS]
    for v in doc["variants"]:
        for s in doc["scenarios"]:
            assert _finite(v["scores"][s]["recall@50"], 2)
            assert v["vs_full"] is None or _finite(v["vs_full"][s]["recall@50"], 2)
    assert "## What carries SASS's gain" in (out / "ablation.md").read_text()
