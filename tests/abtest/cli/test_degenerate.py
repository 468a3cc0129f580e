"""Degenerate experiments end to end: ``run`` on a tiny world where a scenario or an arm has
no users exits 0 and its report says why a statistic is missing (it used to end in
``ValueError: zero-size array`` in the CUPED check, exit 1, after the whole simulation)."""

from __future__ import annotations

import json

import pytest
import yaml

from abtest.cli.main import main
from tests.conftest import tiny_tree


def _small(**world) -> dict:
    """The issue's small world: 300 users, 500 items, 3 + 2 days."""
    tree = tiny_tree(**world)
    tree["periods"].update({"pre_days": 3, "experiment_days": 2})
    return tree


def _rare_scenario() -> dict:
    tree = _small()
    rare = tree["scenarios"][-1]
    tree["scenarios"][0]["traffic_share"] += rare["traffic_share"] - 1e-9
    rare["traffic_share"] = 1e-9
    return tree


# id -> (config tree, extra flags, a note results.json must hold, text the console shows)
CASES = {
    "a-scenario-nobody-visits": (_rare_scenario(), [], "no users",
                                 "note: new_user_landing: no users"),
    "two-users": (_small(n_users=2), [], "no users", "note: home_feed: no users"),
    "seed-2-empty-segment-arm": (_small(), ["--seed", "2"], "no users in the control arm", ""),
}  # fmt: skip


def _notes(doc: dict) -> set[str]:
    populations = [*doc["scenarios"].values(), doc["overall"]]
    populations += [p for seg in doc["segments"].values() for p in seg["scenarios"].values()]
    return {m["note"] for p in populations for m in p["metrics"].values() if "note" in m}


# one case by default; the other two (about 15 s each, each a whole tiny pipeline) are slow
# (CI runs them)
@pytest.mark.parametrize(
    "case",
    [
        "a-scenario-nobody-visits",
        pytest.param("two-users", marks=pytest.mark.slow),
        pytest.param("seed-2-empty-segment-arm", marks=pytest.mark.slow),
    ],
)
def test_a_degenerate_run_reports_instead_of_crashing(case, tmp_path, monkeypatch, capsys):
    tree, flags, note, printed = CASES[case]
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(tree, sort_keys=False))
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "run"
    args = ["run", "--treatment", "popular", "--control", "random", "--config", str(cfg),
            "--out", str(out), "--quiet", *flags]  # fmt: skip
    capsys.readouterr()
    assert main(args) == 0
    console = capsys.readouterr()
    assert "Traceback" not in console.err and printed in console.out
    doc = json.loads((out / "results.json").read_text())
    assert note in _notes(doc)
    md = (out / "report.md").read_text()
    assert note in md and "nan" not in md.lower()
    if printed:
        assert "Statistics that could not be computed (—)" in md
    # the notes round-trip: re-rendering from results.json gives the same report
    assert main(["report", str(out)]) == 0
    assert (out / "report.md").read_text() == md
