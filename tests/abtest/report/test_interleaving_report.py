"""The interleaving report: the markdown's rows and estimand, the console table, the three
files written (a real PNG) and the re-render from interleaving.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from abtest.online.interleaving_analysis import analyse_interleaving, from_json, to_json
from abtest.report import interleaving as report
from core.errors import UserError
from tests.abtest.online.test_interleaving_analysis import fake_data, fake_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def results():
    return fake_results()


def test_markdown_states_the_estimand_and_has_a_row_per_scenario(results):
    md = report.markdown(results)
    assert md.startswith("# Interleaving: truth vs random\n")
    assert "preference between the two arms' items on the same requests" in md
    assert "a different estimand from the A/B lift" in md
    assert "## Credited clicks" in md and "## Credited watch time" in md
    lines = md.splitlines()
    rows = {cell: [ln for ln in lines if ln.startswith(f"| {cell} |")] for cell in
            ("home", "video", "landing (low traffic)", "overall")}  # fmt: skip
    assert all(len(found) == 2 for found in rows.values()), rows  # one per metric table
    home_clicks = rows["home"][0]
    # share 6/9, Δ = +0.333, wins / losses / ties 2 / 1 / 1, impression share 12/22
    for cell in ("60.0%", "| 4 (3) |", "66.7% [", "+0.333", "2 / 1 / 1", "54.5%"):
        assert cell in home_clicks, (cell, home_clicks)
    assert rows["landing (low traffic)"][0].split(" | ")[3] == "—"  # no share
    assert "landing: no credited engagement; only ties: no wins or losses" in md
    assert "Variant recall" in md and "impression share" in md
    assert "![interleaving](interleaving.png)" in md


def test_significance_marks_follow_the_adjusted_p_values(results):
    md = report.markdown(results)
    for name in ("home", "video", "overall"):
        for metric in ("clicks", "watch_time"):
            m = (results.overall if name == "overall" else results.scenarios[name]).metrics[metric]
            row = [ln for ln in md.splitlines() if ln.startswith(f"| {name} |")][
                0 if metric == "clicks" else 1
            ]
            assert (" *" in row.split(" | ")[3]) == m.significant


def test_format_table_lists_every_scenario_high_traffic_first(results):
    text = report.format_table(results)
    lines = text.splitlines()
    assert lines[0].startswith("truth (treatment) vs random (control), team-draft interleaving")
    names = [ln.split("  ")[0] for ln in lines[3:7]]
    assert names == ["home", "video", "landing (low)", "overall"]
    assert "note: clicks landing: no credited engagement" in text


def test_write_interleaving_writes_the_three_files_and_reads_back(results, tmp_path):
    paths = report.write_interleaving(tmp_path, results)
    assert [p.name for p in paths] == list(report.FILES)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert (tmp_path / "interleaving.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "interleaving.md").read_text() == report.markdown(results)
    doc = json.loads((tmp_path / "interleaving.json").read_text())  # strict JSON: no NaN
    assert doc == json.loads(json.dumps(to_json(results)))
    back = report.read_interleaving(tmp_path)
    assert report.markdown(back) == report.markdown(results)
    assert to_json(back) == to_json(from_json(doc))
    assert not [p.name for p in tmp_path.iterdir() if p.name not in report.FILES]  # no temps


def test_read_interleaving_refuses_a_folder_without_or_with_bad_json(tmp_path):
    with pytest.raises(UserError, match=r"no interleaving\.json"):
        report.read_interleaving(tmp_path)
    (tmp_path / "interleaving.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        report.read_interleaving(tmp_path)
    (tmp_path / "interleaving.json").write_text("{}")
    with pytest.raises(UserError, match="missing required key 'control'"):
        report.read_interleaving(tmp_path)


def test_a_run_without_any_credit_still_renders(tmp_path):
    data = fake_data(np.zeros_like(fake_data().credit))
    empty = analyse_interleaving(data, {})
    report.write_interleaving(tmp_path, empty)
    md = (tmp_path / "interleaving.md").read_text()
    assert "| overall | all | 0 (0) | — | — | — | 0 / 0 / 0 | — |" in md
    assert "overall: no credited engagement; no exposed users" in md
    assert (tmp_path / "interleaving.png").read_bytes()[:8] == PNG_MAGIC
    assert "overall" in report.format_table(empty)


def test_markdown_states_the_world_and_the_run_warnings():
    import dataclasses

    from abtest.online.results import RunInfo

    run = RunInfo(
        command="python -m abtest run --design interleaving",
        world="fitted from logs: W (the twin's lift is model-based, not ground truth)",
        warnings=("home: its pool (8 items) fits in the 100 recalled candidates",),
    )
    md = report.markdown(dataclasses.replace(fake_results(), run=run))
    assert "World: fitted from logs: W" in md
    assert "Warning: home: its pool (8 items) fits in the 100 recalled candidates." in md
