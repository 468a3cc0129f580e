"""The lift tables: the console summary of a run, the sample-ratio line and ``lift.csv``."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from abtest.online.analysis import HEADLINE_METRICS
from abtest.online.results import ExperimentResults, MetricLift
from abtest.report import layout
from abtest.report.format import DASH, as_float, lift_ci, p_value, percent, thousands

SRM_WARNING = "sample ratio mismatch: do not trust these results"
CSV_FIELDS = (
    "scenario", "traffic", "metric", "control", "treatment", "lift", "ci_low", "ci_high",
    "p_value", "p_adjusted", "significant", "true_lift", "true_in_ci", "mde", "cuped",
)  # fmt: skip


def srm_line(r: ExperimentResults) -> str:
    """One line on the sample-ratio check, with the warning when it is flagged."""
    srm, expected = r.srm, r.srm.expected
    control, treatment = (srm.users.control, srm.users.treatment) if srm.users else (None, None)
    stat = as_float(srm.statistic)
    text = (
        f"SRM: chi² = {DASH if stat is None else f'{stat:.2f}'}, p = {p_value(srm.p_value)}; "
        f"users control {thousands(control)} / treatment {thousands(treatment)}"
    )
    if expected is not None:
        text += (
            f" (expected {percent(expected.control, signed=False)} / "
            f"{percent(expected.treatment, signed=False)})"
        )
    if srm.flagged is None:
        return text + (f" — not checked ({srm.note})" if srm.note else " — not checked")
    if srm.note:
        text += f"; {srm.note}"
    if srm.flagged is True:
        return f"{text} — FLAGGED: {SRM_WARNING}"
    return text + " — OK"


def note_lines(r: ExperimentResults) -> list[str]:
    """Why statistics are unknown, per scenario (then overall): "name: note" when every
    metric of the scenario has the same note, else "name metric: note"; [] when none is."""
    out = []
    for name, population in layout.rows(r):
        notes = {
            m: population.metrics[m].note
            for m in layout.metric_names(r)
            if m in population.metrics and population.metrics[m].note
        }
        if len(notes) == len(population.metrics) and len(set(notes.values())) == 1:
            out.append(f"{name}: {next(iter(notes.values()))}")
        else:
            out += [f"{name} {m}: {note}" for m, note in notes.items()]
    return out


def _align(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def format_table(r: ExperimentResults) -> str:
    """The console summary: one line per scenario (high traffic first) and the SRM line."""
    truth = layout.has_truth(r)
    header = ["scenario"]
    for metric in HEADLINE_METRICS:
        header += [f"{metric} lift [{layout.level(r)} CI]", "p_adj"] + (["true"] if truth else [])
    table = [header]
    for name, population in layout.rows(r):
        row = [name + (" (low)" if layout.is_low(population) else "")]
        for metric in HEADLINE_METRICS:
            m = population.metric(metric)
            row += [lift_ci(m, marker=True), p_value(m.p_adjusted)]
            row += [percent(m.true_lift)] if truth else []
        table.append(row)
    title = (
        f"{r.treatment} (treatment) vs {r.control} (control), "
        f"seed {r.seed}, {r.days} days; p_adj: {r.correction or 'no'} correction; "
        f"* significant at alpha = {layout.alpha(r):g}"
    )
    lines = _align(table)
    rule = "-" * max(len(line) for line in lines)
    notes = [f"note: {line}" for line in note_lines(r)]
    return "\n".join([title, lines[0], rule, *lines[1:], rule, *notes, srm_line(r)]) + "\n"


def _csv_value(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, int):
        return str(x)
    x = as_float(x)
    return "" if x is None else repr(x)


def _csv_values(m: MetricLift) -> list[str]:
    """The cells of CSV_FIELDS after scenario, traffic and metric."""
    values = [m.control, m.treatment, m.lift, m.ci_low, m.ci_high, m.p_value, m.p_adjusted,
              m.significant, m.true_lift, m.true_in_ci, m.mde, m.cuped]  # fmt: skip
    return [_csv_value(v) for v in values]


def write_lift_csv(r: ExperimentResults, path: Path) -> None:
    """lift.csv: one row per scenario × metric (high traffic first), then overall."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for name, population in layout.rows(r):
            traffic = "all" if name == layout.OVERALL else layout.traffic(population) or ""
            for metric in layout.metric_names(r):
                if metric in population.metrics:
                    writer.writerow(
                        [name, traffic, metric, *_csv_values(population.metrics[metric])]
                    )
