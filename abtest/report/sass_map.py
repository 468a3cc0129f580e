"""What the SASS map shows (:mod:`abtest.zoo_studies.sass_map`): ``sass_map.json`` (every
cell's scores, winner and SASS's paired differences, strict JSON), ``sass_map.md`` (a grid
per metric: systematic shift × traffic share of the target scenario) and ``sass_map.png``
(the differences as diverging heatmaps).

:func:`write_sass_map` replaces the three files together (:mod:`abtest.report.outdir`); the
other files of the folder stay.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from abtest.report.format import (
    ABOVE,
    BELOW,
    CLEAR_RULE,
    clear_mark,
    difference,
    mean_se,
    strict_json_text,
)
from abtest.report.outdir import replacing
from abtest.zoo_studies.estimates import MeanSe
from abtest.zoo_studies.sass_map import MapCell, SassMap
from abtest.zoo_studies.scoring import STUDY_METRICS

SASS_MAP_FILES = ("sass_map.json", "sass_map.md", "sass_map.png")
REFERENCE = "mixed"  # the one-model baseline every cell compares SASS with, when mapped
NO_CLICKS = "no validation clicks"
DPI = 110


def share_label(share: float) -> str:
    """A traffic share as the grid's column label: 0.01 -> "1%", 0.005 -> "0.5%"."""
    return f"{share * 100:g}%"


def has_clicks(cell: MapCell) -> bool:
    """Whether the cell's target scenario had validation requests with a click (scores)."""
    return cell.requests > 0 and cell.winner(STUDY_METRICS[0]) is not None


def versus_best_other(cell: MapCell, metric: str) -> tuple[str, MeanSe] | None:
    """The best model other than SASS and SASS's paired difference to it (None if unknown)."""
    other = cell.best_other(metric)
    if other is None or not cell.scores["sass"][metric].known:
        return None
    return other, cell.sass_minus(other, metric)


# --------------------------------------------------------------------------- JSON


def _cell_json(cell: MapCell, with_mixed: bool) -> dict:
    doc = {
        "shift": cell.shift,
        "share": cell.share,
        "requests": cell.requests,
        "data_hash": cell.data_hash,
        "seconds": cell.seconds,
        "scores": {
            model: {m: per[m].to_dict() for m in STUDY_METRICS}
            for model, per in cell.scores.items()
        },
        "winner": {m: cell.winner(m) for m in STUDY_METRICS},
    }
    if with_mixed:
        doc["sass_minus_mixed"] = {
            m: cell.sass_minus(REFERENCE, m).to_dict() for m in STUDY_METRICS
        }
    best = {m: versus_best_other(cell, m) for m in STUDY_METRICS}
    doc["sass_minus_best_other"] = {
        m: None if b is None else {"other": b[0], **b[1].to_dict()} for m, b in best.items()
    }
    return doc


def sass_map_json(m: SassMap) -> dict:
    """The map as a JSON document (NaN is written as null by :func:`write_sass_map`)."""
    with_mixed = REFERENCE in m.models
    return {
        "study": "sass_map",
        "target": m.target,
        "metrics": list(STUDY_METRICS),
        "shifts": list(m.shifts),
        "shares": list(m.shares),
        "models": list(m.models),
        "seeds": list(m.seeds),
        "config_fingerprint": m.config_fingerprint,
        "seconds": sum(c.seconds for c in m.cells),
        "cells": [_cell_json(c, with_mixed) for c in m.cells],
    }


# --------------------------------------------------------------------------- markdown


def _grid_cell(cell: MapCell, metric: str, with_mixed: bool) -> str:
    if not has_clicks(cell):
        return NO_CLICKS
    parts = [f"**{cell.winner(metric)}**"]
    if with_mixed:
        parts.append(f"sass − mixed {difference(cell.sass_minus(REFERENCE, metric))}")
    best = versus_best_other(cell, metric)
    if best is not None and not (with_mixed and best[0] == REFERENCE):  # said just above
        parts.append(f"sass − best other ({best[0]}) {difference(best[1])}")
    return "<br>".join(parts)


def _grid(m: SassMap, metric: str) -> list[str]:
    with_mixed = REFERENCE in m.models
    lines = [
        f"## {metric}: winner and SASS's paired differences",
        "",
        "| systematic_shift \\ share | " + " | ".join(map(share_label, m.shares)) + " |",
        "|---" * (len(m.shares) + 1) + "|",
    ]
    for shift in m.shifts:
        cells = [_grid_cell(m.cell(shift, share), metric, with_mixed) for share in m.shares]
        lines.append(f"| {shift:g} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _cell_table(m: SassMap, cell: MapCell) -> list[str]:
    head = (
        f"### shift {cell.shift:g}, share {share_label(cell.share)}: "
        f"{cell.requests:,} validation requests, data {cell.data_hash[:12]}, "
        f"{cell.seconds:.0f} s"
    )
    if not has_clicks(cell):
        return [head, "", f"{NO_CLICKS} in {m.target}: no scores.", ""]
    winners = {metric: cell.winner(metric) for metric in STUDY_METRICS}
    lines = [head, "", "| model | " + " | ".join(STUDY_METRICS) + " |"]
    lines.append("|---" * (len(STUDY_METRICS) + 1) + "|")
    for model in m.models:
        texts = []
        for metric in STUDY_METRICS:
            text = mean_se(cell.scores[model][metric])
            texts.append(f"**{text}**" if winners[metric] == model else text)
        lines.append(f"| {model} | " + " | ".join(texts) + " |")
    return [*lines, ""]


def _cost(m: SassMap) -> list[str]:
    total = sum(c.seconds for c in m.cells)
    lines = [
        "## Cost (wall seconds per cell: generation, training, evaluation)",
        "",
        "| systematic_shift \\ share | " + " | ".join(map(share_label, m.shares)) + " |",
        "|---" * (len(m.shares) + 1) + "|",
    ]
    for shift in m.shifts:
        secs = [f"{m.cell(shift, share).seconds:.0f}" for share in m.shares]
        lines.append(f"| {shift:g} | " + " | ".join(secs) + " |")
    lines += ["", f"Total: {total:.0f} s ({total / 60:.1f} min) for {len(m.cells)} cells.", ""]
    return lines


def sass_map_markdown(m: SassMap) -> str:
    """The grids (winner, SASS − mixed, SASS − best other), every cell's table, the cost."""
    metrics = " / ".join(x.replace("recall", "Recall").replace("ndcg", "NDCG")
                         for x in STUDY_METRICS)  # fmt: skip
    lines = [
        f"# SASS map: where SASS beats the baselines in `{m.target}` (seeds: {list(m.seeds)})",
        "",
        f"Offline {metrics} in the target scenario `{m.target}` on the validation split; "
        "mean ± s.e. over training seeds on one world per cell. Each cell sets the target's "
        "`systematic_shift` (rows) and `traffic_share` (columns); the other scenarios' shares "
        "are scaled to fill the rest. Models: " + ", ".join(m.models) + ".",
        "",
        f"Winner in bold. Differences are paired over seeds (same seed, same logs); "
        f"{ABOVE} / {BELOW}: {CLEAR_RULE} (with one seed there is no interval and nothing is "
        "marked). The best other model is picked on the same seeds, so SASS − best other "
        "leans a little against SASS.",
        "",
    ]
    for metric in STUDY_METRICS:
        lines += _grid(m, metric)
    lines += ["## Every model per cell (mean ± s.e.)", ""]
    for cell in m.cells:
        lines += _cell_table(m, cell)
    lines += _cost(m)
    lines.append(f"Config fingerprint {m.config_fingerprint}.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- heatmap


def _difference(cell: MapCell, metric: str, versus: str) -> tuple[MeanSe, str] | None:
    """SASS − `versus` ("mixed" or the cell's best other model) and the model compared
    with; None where unknown (no clicks, or a model without scores)."""
    if not has_clicks(cell):
        return None
    if versus == REFERENCE:
        d, other = cell.sass_minus(REFERENCE, metric), REFERENCE
    else:
        best = versus_best_other(cell, metric)
        if best is None:
            return None
        other, d = best
    return (d, other) if d.known else None


def _limit(grids: list) -> float:
    """The colour scale's half-width: the largest |difference| in `grids` (symmetric)."""
    means = [abs(d[0].mean) for grid in grids for row in grid for d in row if d is not None]
    return max(means) if means and max(means) > 0 else 1e-3


def _panel(fig: Figure, ax, grid, m: SassMap, title: str, name_others: bool, lim: float):
    values = np.array([[np.nan if d is None else d[0].mean for d in row] for row in grid])
    cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="0.88")  # grey: no clicks
    image = ax.imshow(values, cmap=cmap, vmin=-lim, vmax=lim, origin="lower", aspect="auto")
    for i, row in enumerate(grid):
        for j, d in enumerate(row):
            if d is None:
                ax.text(j, i, "no\nclicks", ha="center", va="center", fontsize=7, color="0.3")
                continue
            diff, other = d
            text = f"{diff.mean:+.4f}".replace("-", "−")
            text += f"\n± {diff.se:.4f}" if diff.se is not None else ""
            text += f" {clear_mark(diff)}" if clear_mark(diff) else ""
            text += f"\nvs {other}" if name_others else ""
            colour = "white" if abs(diff.mean) > 0.6 * lim else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
    ax.set_xticks(range(len(m.shares)), [share_label(s) for s in m.shares])
    ax.set_yticks(range(len(m.shifts)), [f"{s:g}" for s in m.shifts])
    ax.set_xlabel(f"traffic share of {m.target}")
    ax.set_ylabel("systematic_shift")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.85)


def sass_map_heatmap(m: SassMap, path: Path) -> None:
    """Per metric (rows): SASS − mixed (left; only if mixed was mapped) and SASS − best
    other (right), diverging colours centred at 0; a mark where beyond 2 s.e."""
    versus = ([REFERENCE] if REFERENCE in m.models else []) + ["best other"]
    cols, rows = len(versus), len(STUDY_METRICS)
    width = max(4.5, 1.3 * len(m.shares) + 2.2)
    height = max(3.2, 0.9 * len(m.shifts) + 1.6)
    with matplotlib.rc_context({"font.size": 8, "axes.titlesize": 9}):
        fig = Figure(figsize=(cols * width, rows * height), dpi=DPI, layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        for r, metric in enumerate(STUDY_METRICS):
            grids = [[[_difference(m.cell(shift, share), metric, v) for share in m.shares]
                      for shift in m.shifts] for v in versus]  # fmt: skip
            lim = _limit(grids)  # one scale per metric: the panels compare
            for c, (v, grid) in enumerate(zip(versus, grids, strict=True)):
                title = f"{metric}: sass − {v}"
                _panel(fig, axes[r][c], grid, m, title, v != REFERENCE, lim)
        fig.suptitle(
            f"SASS map in {m.target}\npaired differences over seeds {list(m.seeds)} "
            f"({ABOVE}/{BELOW}: 95% t-interval excludes 0)"
        )
        fig.savefig(path, format="png", metadata={"Software": None})


# --------------------------------------------------------------------------- files


def write_sass_map(m: SassMap, out: Path) -> Path:
    """Write sass_map.json, .md and .png into `out`, replacing them together; returns `out`."""
    with replacing(out, SASS_MAP_FILES) as stage:
        (stage / "sass_map.json").write_text(strict_json_text(sass_map_json(m)), encoding="utf-8")
        (stage / "sass_map.md").write_text(sass_map_markdown(m), encoding="utf-8")
        sass_map_heatmap(m, stage / "sass_map.png")
    return Path(out)
