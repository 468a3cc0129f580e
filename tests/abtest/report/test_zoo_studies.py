"""The SASS map's and the ablation's JSON, markdown and heatmap, on hand-built results (no
training)."""

from __future__ import annotations

import json
import math

import pytest

from abtest.report import ablation as ab_report
from abtest.report import sass_map as map_report
from abtest.report.outdir import claim
from abtest.zoo_studies.ablation import VARIANTS, Ablation, AblationRow
from abtest.zoo_studies.estimates import MeanSe, paired_difference
from abtest.zoo_studies.sass_map import MapCell, SassMap

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAN = math.nan


def strict_loads(text: str):
    """json.loads that refuses NaN and infinities (not JSON)."""

    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _scores(recall: list[float], ndcg: list[float] | None = None) -> dict[str, MeanSe]:
    ndcg = ndcg if ndcg is not None else [x / 2 for x in recall]
    return {"recall@50": MeanSe.of(recall), "ndcg@50": MeanSe.of(ndcg)}


def _map(models=("mixed", "star", "sass")) -> SassMap:
    """2 shifts × 2 shares: SASS clearly ahead, tied, behind star, and a cell without clicks."""
    per_cell = {
        (0.0, 0.05): {"mixed": [0.20, 0.21, 0.22], "star": [0.21, 0.22, 0.22],
                      "sass": [0.25, 0.26, 0.27]},
        (0.0, 0.2): {"mixed": [0.20, 0.22, 0.21], "star": [0.21, 0.20, 0.22],
                     "sass": [0.21, 0.21, 0.22]},
        (0.9, 0.05): {"mixed": [0.20, 0.21, 0.22], "star": [0.30, 0.31, 0.32],
                      "sass": [0.25, 0.26, 0.27]},
        (0.9, 0.2): {m: [NAN] * 3 for m in ("mixed", "star", "sass")},
    }  # fmt: skip
    cells = tuple(
        MapCell(shift, share, {m: _scores(per[m]) for m in models},
                0 if math.isnan(per["sass"][0]) else 150, f"hash{i}", 10.0 + i)
        for i, ((shift, share), per) in enumerate(per_cell.items())
    )  # fmt: skip
    return SassMap("related_detail", (0.0, 0.9), (0.05, 0.2), tuple(models), (7, 8, 9),
                   cells, "fp123")  # fmt: skip


def test_sass_map_json_is_strict_with_every_cell_and_difference():
    m = _map()
    doc = strict_loads(map_report.strict_json_text(map_report.sass_map_json(m)))
    assert doc["target"] == "related_detail" and doc["seeds"] == [7, 8, 9]
    assert doc["shifts"] == [0.0, 0.9] and doc["shares"] == [0.05, 0.2]
    assert doc["models"] == ["mixed", "star", "sass"] and doc["config_fingerprint"] == "fp123"
    assert len(doc["cells"]) == 4 and doc["seconds"] == pytest.approx(10 + 11 + 12 + 13)
    ahead, tied, behind, empty = doc["cells"]
    assert ahead["winner"] == {"recall@50": "sass", "ndcg@50": "sass"}
    assert ahead["scores"]["sass"]["recall@50"]["values"] == pytest.approx([0.25, 0.26, 0.27])
    assert ahead["sass_minus_mixed"]["recall@50"]["mean"] == pytest.approx(0.05)
    best = ahead["sass_minus_best_other"]["recall@50"]
    assert best["other"] == "star" and best["mean"] == pytest.approx(0.26 - 0.65 / 3)
    assert behind["winner"]["recall@50"] == "star"
    assert behind["sass_minus_best_other"]["recall@50"]["mean"] == pytest.approx(-0.05)
    # no clicks: NaN written as null, no winner
    assert empty["requests"] == 0 and empty["winner"] == {"recall@50": None, "ndcg@50": None}
    assert empty["scores"]["sass"]["recall@50"] == {"mean": None, "se": None,
                                                    "values": [None] * 3}  # fmt: skip
    assert empty["sass_minus_best_other"]["recall@50"] is None
    assert empty["sass_minus_mixed"]["recall@50"]["mean"] is None
    assert tied["sass_minus_mixed"]["ndcg@50"]["se"] > 0


def test_sass_map_json_without_mixed_has_no_sass_minus_mixed():
    doc = map_report.sass_map_json(_map(models=("star", "sass")))
    assert all("sass_minus_mixed" not in c for c in doc["cells"])


def test_sass_map_markdown_grid_marks_and_no_click_cells():
    text = map_report.sass_map_markdown(_map())
    assert text.startswith("# SASS map: where SASS beats the baselines in `related_detail` "
                           "(seeds: [7, 8, 9])")  # fmt: skip
    assert "Offline Recall@50 / NDCG@50 in the target scenario `related_detail`" in text
    assert "mean ± s.e. over training seeds on one world per cell" in text
    assert "▲ / ▼: the 95% t-interval over the seeds (n − 1 df) lies above / below zero" in text
    grid = text.split("## recall@50")[1].split("## ndcg@50")[0]
    rows = [line for line in grid.splitlines() if line.startswith("| ")]
    assert rows[0] == "| systematic_shift \\ share | 5% | 20% |"
    ahead, tied = rows[1].split(" | ")[1:3]
    assert ahead.startswith("**sass**<br>sass − mixed +0.0500 ± 0.0000 ▲")
    assert "sass − best other (star) +0.0433 ± 0.0033 ▲" in ahead
    assert "▲" not in tied and "▼" not in tied
    assert "best other (mixed)" not in tied  # the line above it already compares with mixed
    behind, empty = rows[2].split(" | ")[1:3]
    assert behind.startswith("**star**") and "sass − best other (star) −0.0500" in behind
    assert behind.endswith("▼") and empty.startswith("no validation clicks")
    # every model per cell, the winner in bold; the cost
    assert "| sass | **0.2600 ± 0.0058** | **0.1300 ± 0.0029** |" in text
    assert "no validation clicks in related_detail: no scores." in text
    assert "Total: 46 s (0.8 min) for 4 cells." in text


def test_without_mixed_the_grid_compares_with_the_best_other_only():
    text = map_report.sass_map_markdown(_map(models=("star", "sass")))
    assert "sass − mixed" not in text
    assert "**sass**<br>sass − best other (star) +0.0033 ± 0.0033 |" in text


def test_one_seed_marks_nothing():
    m = _map()
    one = SassMap(m.target, m.shifts, m.shares, m.models, (7,), tuple(
        MapCell(c.shift, c.share, {k: {x: MeanSe.of(v[x].values[:1]) for x in v}
                                   for k, v in c.scores.items()}, c.requests, c.data_hash, 1.0)
        for c in m.cells), m.config_fingerprint)  # fmt: skip
    grid = map_report.sass_map_markdown(one).split("## Every model")[0]
    assert "sass − mixed +0.0500 <br>" not in grid and "+0.0500<br>" in grid
    assert "▲<br>" not in grid and "▼<br>" not in grid and not grid.rstrip().endswith("▼ |")
    assert "t-interval" in map_report.sass_map_markdown(one)  # the rule is still stated


@pytest.mark.parametrize("models", [("mixed", "star", "sass"), ("star", "sass")])
def test_sass_map_files_replace_together(tmp_path, models):
    out = tmp_path / "map"
    assert map_report.write_sass_map(_map(models), out) == out
    assert sorted(p.name for p in out.iterdir()) == sorted(map_report.SASS_MAP_FILES)
    strict_loads((out / "sass_map.json").read_text())
    png = (out / "sass_map.png").read_bytes()
    assert png.startswith(PNG_MAGIC) and len(png) > 10_000
    assert claim(out) == out  # sass_map.json marks a folder this tool may replace


def _ablation() -> Ablation:
    scenarios = ("home_feed", "related_detail")
    full = {"home_feed": [0.30, 0.31, 0.32], "related_detail": [0.20, 0.22, 0.21]}
    shift = {  # per variant: its per-seed change from the full model
        "sass": [0.0, 0.0, 0.0],
        "no pre-training": [-0.04, -0.05, -0.045],  # clearly hurts
        "transfer depth 3": [0.01, -0.01, 0.002],  # noise
        "mixed": [-0.06, -0.07, -0.065],  # a reference, not a removal
    }
    rows = []
    for v in VARIANTS:
        if v.label not in shift:
            continue
        scores = {s: _scores([f + d for f, d in zip(full[s], shift[v.label], strict=True)])
                  for s in scenarios}  # fmt: skip
        rows.append((v, scores))
    full_scores = rows[0][1]
    built = tuple(
        AblationRow(v, sc, {s: {m: paired_difference(sc[s][m], full_scores[s][m]) for m in sc[s]}
                            for s in scenarios}, 12.5)
        for v, sc in rows
    )  # fmt: skip
    return Ablation(scenarios, {"home_feed": 0.9, "related_detail": 0.05}, (1, 2, 3), built,
                    {"home_feed": 900, "related_detail": 40}, "fp", "data9")  # fmt: skip


def test_ablation_json_is_strict_and_has_every_variant():
    a = _ablation()
    doc = strict_loads(map_report.strict_json_text(ab_report.ablation_json(a)))
    assert [v["label"] for v in doc["variants"]] == ["sass", "no pre-training",
                                                     "transfer depth 3", "mixed"]  # fmt: skip
    full, no_pre = doc["variants"][:2]
    assert full["vs_full"] is None and no_pre["model"] == "sass_base"
    d = no_pre["vs_full"]["home_feed"]["recall@50"]
    assert d["mean"] == pytest.approx(-0.045) and len(d["values"]) == 3
    assert doc["traffic"] == {"home_feed": 0.9, "related_detail": 0.05}
    assert doc["seeds"] == [1, 2, 3] and doc["data_hash"] == "data9"


def test_ablation_markdown_table_differences_and_summary():
    text = ab_report.ablation_markdown(_ablation())
    assert "| variant | what changes | home_feed (90%) | related_detail (5%, low) |" in text
    assert (
        "| **sass** | the full model: 2 SAT layers, user and item transfer | 0.3100 ± 0.0058 |"
        in text
    )
    rows = {line.split(" | ")[0][2:]: line for line in text.split("## ndcg@50")[0].splitlines()
            if line.startswith("| ")}  # fmt: skip
    assert "(−0.0450 ± 0.0029 ▼)" in rows["no pre-training"]
    assert "(" not in rows["**sass**"].split(" | ", 2)[2]  # the full model has no difference
    assert "▲" not in rows["transfer depth 3"] and "▼" not in rows["transfer depth 3"]
    summary = text.split("## What carries SASS's gain")[1].split("##")[0]
    assert "- home_feed (90%): recall@50: no pre-training −0.0450 ± 0.0029 ▼" in summary
    assert "mixed" not in summary.split("Reference rows")[1]  # a reference, not a removal
    assert "depth 3" not in summary
    assert "- sass: 12.5" in text and "- related_detail: 40" in text


def test_ablation_markdown_says_when_no_removal_hurts(tmp_path):
    a = _ablation()
    kept = tuple(r for r in a.rows if r.variant.label in ("sass", "transfer depth 3"))
    calm = Ablation(a.scenarios, a.traffic, a.seeds, kept, a.requests, "fp", "d")
    assert "- home_feed (90%): no removal hurts clearly" in ab_report.ablation_markdown(calm)
    out = tmp_path / "ablation"
    assert ab_report.write_ablation(calm, out) == out
    assert sorted(p.name for p in out.iterdir()) == ["ablation.json", "ablation.md"]
    strict_loads((out / "ablation.json").read_text())
    assert claim(out) == out
