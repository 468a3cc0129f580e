"""`python -m abtest plan` end to end on the tiny world (the three files, the summary) and its
refusals of bad input (exit 2, one ``error:`` line, nothing written)."""

from __future__ import annotations

import json

import pytest

from abtest.cli.main import main
from abtest.online.analysis import HEADLINE_METRICS
from abtest.online.plan import DESIGNS, OVERALL
from abtest.report.plan import FILES
from tests.abtest.cli.test_bad_input import check_error, run_main
from tests.conftest import tiny_tree


@pytest.fixture
def tiny_cfg(write_yaml, tmp_path, monkeypatch):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    return write_yaml(tree), tree


# about 8 s (16 s on 2 busy cores): the tiny world's logs, two simulations, re-randomisation;
# tests/abtest/online/test_plan.py covers the same job in the default suite
@pytest.mark.slow
def test_plan_writes_its_three_files_and_prints_the_summary(tiny_cfg, tmp_path, capsys):
    cfg, tree = tiny_cfg
    out = tmp_path / "plan"
    args = ["plan", "--config", str(cfg), "--treatment", "popular", "--control", "random",
            "--reps", "10", "--variant", "slate", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}/plan.md, plan.json, plan.png" in printed
    assert "recommended" in printed and "A/B + CUPED" in printed
    for name in FILES:
        assert (out / name).stat().st_size > 0
    body = json.loads((out / "plan.json").read_text())
    names = [s["name"] for s in tree["scenarios"]]
    assert body["treatment"] == "popular" and body["control"] == "random" and body["days"] == 1
    assert body["variant"] == "slate" and "slate-variant" in (out / "plan.md").read_text()
    assert [(r["scenario"], r["metric"]) for r in body["rows"]] == [
        (n, m) for n in [*names, OVERALL] for m in HEADLINE_METRICS
    ]
    for r in body["rows"]:
        assert r["recommended"] in (*DESIGNS, None)
    md = (out / "plan.md").read_text()
    for heading in ("## Recommendation", "## Why", "## What each design estimates", "## Caveats"):
        assert heading in md
    assert all(f"| {n} |" in md for n in names)


ROWS = [
    # (arguments after the config, the error's pattern)
    (["--treatment", "nonesuch", "--control", "random"], "unknown model 'nonesuch'"),
    (["--treatment", "popular", "--control", "popular,random"], "one model name expected"),
    (["--treatment", "popular", "--control", "random", "--days", "0"], "invalid count 0"),
    (["--treatment", "popular", "--control", "random", "--reps", "0"], "invalid count 0"),
    (
        ["--treatment", "popular", "--control", "random", "--world", "{tmp}/no-world"],
        "fitted world not found",
    ),
    (["--treatment", "popular", "--control", "random", "--out", "{tmp}/a-file"], "is a file"),
    (["--control", "random"], "--treatment"),
]


@pytest.mark.parametrize("extra, pattern", ROWS)
def test_bad_input_exits_2_with_one_line(tiny_cfg, tmp_path, capsys, extra, pattern):
    cfg, _ = tiny_cfg
    (tmp_path / "a-file").write_text("not a folder")
    out = tmp_path / "out"
    extra = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    if "--out" not in extra:
        extra += ["--out", str(out)]
    code, err = run_main(["plan", "--config", str(cfg), *extra, "--quiet"], capsys)
    assert code == 2
    check_error(err, pattern)
    assert not out.exists() and not (tmp_path / "cache").exists()  # refused before any work
