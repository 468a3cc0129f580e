"""The report document: its blocks (headings, paragraphs, tables, figures) built from the
typed results, rendered both to Markdown (``report.md``) and to HTML (``report.html``), so
the two never drift.

A block is ("h1"|"h2"|"p"|"warn"|"code", text), ("table", header, rows) or
("img", file, caption).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from pathlib import Path

from abtest.online.analysis import HEADLINE_METRICS
from abtest.online.results import ExperimentResults, Population, Serving
from abtest.report import layout
from abtest.report.format import (
    DASH,
    as_float,
    four_digits,
    lift_ci,
    one_decimal,
    p_value,
    percent,
    thousands,
    users,
    yes_no,
)
from abtest.report.plots import PLOT_CAPTIONS, plots_for
from abtest.report.tables import SRM_WARNING, note_lines, srm_line

Block = tuple


def _title(r: ExperimentResults) -> str:
    return f"A/B test: {r.treatment} vs {r.control}"


def _summary(r: ExperimentResults) -> list[Block]:
    facts = [
        f"treatment {r.treatment}",
        f"control {r.control}",
        f"seed {r.seed}",
        f"{r.days} days",
        f"alpha {layout.alpha(r):g}",
        f"p-value correction {r.correction or 'none'}",
        f"CUPED {yes_no(r.cuped)}",
        "world fitted from logs (its truth is model-based)"
        if _fitted(r)
        else f"synthetic world {yes_no(r.synthetic)}",
    ]
    if r.run and r.run.created:
        facts.append(f"created {r.run.created}")
    out: list[Block] = [("h1", _title(r)), ("p", "; ".join(facts) + ".")]
    if r.run and r.run.world:
        out.append(("p", f"World: {r.run.world}."))
        if _fitted(r):
            out.append(
                ("warn", "The true lifts below are the fitted world's own (model-based), not "
                 "ground truth: they are as right as the fitted response model.")
            )  # fmt: skip
    for warning in r.run.warnings if r.run else ():
        out.append(("warn", f"Warning: {warning}."))
    out += [("h2", "Sample ratio"), ("p", srm_line(r))]
    if r.srm.flagged is True:
        out.append(("warn", f"Warning: {SRM_WARNING}."))
    return out


def _fitted(r: ExperimentResults) -> bool:
    return bool(r.run and r.run.world and r.run.world.startswith("fitted"))


def _headline_cells(population: Population) -> list[str]:
    cells = []
    for metric in HEADLINE_METRICS:
        m = population.metric(metric)
        cells += [lift_ci(m, marker=True), p_value(m.p_adjusted)]
    return cells


def _headline_header(r: ExperimentResults, first: list[str]) -> list[str]:
    header = list(first)
    for metric in HEADLINE_METRICS:
        header += [f"{metric} lift [{layout.level(r)} CI]", "p_adj"]
    return header


def _headline(r: ExperimentResults) -> list[Block]:
    header = _headline_header(r, ["scenario", "traffic", "users (C / T)"])
    rows = [
        [layout.label(name, p), layout.traffic(p) or DASH, users(p.users), *_headline_cells(p)]
        for name, p in layout.rows(r)
    ]
    note = (
        f"Lifts marked with an asterisk are significant at alpha {layout.alpha(r):g} "
        f"after {r.correction or 'no'} correction."
    )
    out: list[Block] = [("h2", "Headline"), ("table", header, rows), ("p", note)]
    out += _plan_pointer(r)
    unknown = note_lines(r)
    if unknown:
        out.append(("p", f"Statistics that could not be computed (—): {'; '.join(unknown)}."))
    return out


def _plan_pointer(r: ExperimentResults) -> list[Block]:
    """Scenarios where the A/B could not have detected the lift it observed (MDE > |lift|):
    a pointer to ``plan``, which sizes each design (A/B, CUPED, interleaving) per scenario."""
    short = []
    for name, population in layout.rows(r)[:-1]:
        metrics = [
            m
            for m in HEADLINE_METRICS
            if (x := population.metrics.get(m)) is not None
            and x.mde is not None
            and x.lift is not None
            and x.mde > abs(x.lift)
        ]
        if metrics:
            short.append(f"{name} ({', '.join(metrics)})")
    if not short:
        return []
    command = f"python -m abtest plan --treatment {r.treatment} --control {r.control}"
    return [
        (
            "p",
            f"The minimum detectable effect exceeds the observed lift in {'; '.join(short)}: "
            "at this traffic and duration the A/B could not have detected a lift of that "
            f"size there. `{command}` estimates per scenario the users and days each design "
            "(A/B, A/B with CUPED, interleaving) needs to detect it, and recommends one "
            "(plan.md).",
        )
    ]


def _all_metrics(r: ExperimentResults) -> list[Block]:
    level, truth, metrics = layout.level(r), layout.has_truth(r), layout.metric_names(r)
    header = ["scenario", "metric", "control", "treatment", f"lift [{level} CI]", "p", "p_adj"]
    boot = any(p.metric(m).bootstrap_ci is not None for _, p in layout.rows(r) for m in metrics)
    true_label = "true lift (model-based)" if _fitted(r) else "true lift"
    header += ["significant"] + ([true_label] if truth else []) + ["MDE", "CUPED"]
    header += ["bootstrap CI (no CUPED)"] if boot else []
    notes = any(p.metric(m).note for _, p in layout.rows(r) for m in metrics)
    header += ["note"] if notes else []
    rows = []
    for name, population in layout.rows(r):
        for metric in metrics:
            m = population.metrics.get(metric)
            if m is None:
                continue
            row = [layout.label(name, population), metric, four_digits(m.control)]
            row += [four_digits(m.treatment), lift_ci(m), p_value(m.p_value)]
            row += [p_value(m.p_adjusted), yes_no(m.significant)]
            row += [percent(m.true_lift)] if truth else []
            row += [percent(m.mde, signed=False), yes_no(m.cuped)]
            if boot:
                lo, hi = m.bootstrap_ci or (None, None)
                row += [f"[{percent(lo)}, {percent(hi)}]"]
            row += [m.note or ""] if notes else []
            rows.append(row)
    out: list[Block] = [("h2", "All metrics"), ("table", header, rows)]
    if r.synthetic is True:
        flags = [p.metric(m).true_in_ci for _, p in layout.rows(r)[:-1] for m in metrics]
        known = [f for f in flags if isinstance(f, bool)]
        if known:
            text = (
                f"True lift inside the {level} CI for {sum(known)} of {len(known)} "
                f"scenario × metric pairs (about {level} expected)."
            )
        else:
            text = "Synthetic world, but no true lift was recorded."
        out.append(("p", text))
    return out


def _segments(r: ExperimentResults) -> list[Block]:
    if not r.segments:
        return []
    rows, notes = [], []
    for seg_name, segment in r.segments.items():
        for name in layout.panel_names(r, segment.scenarios):
            population = segment.scenarios[name]
            row = [seg_name, layout.label(name, r.scenarios.get(name)), users(population.users)]
            rows.append(row + _headline_cells(population))
            found = (population.metric(m).note for m in HEADLINE_METRICS)
            notes.append("; ".join(dict.fromkeys(n for n in found if n)))
    header = _headline_header(r, ["segment", "scenario", "users (C / T)"])
    if any(notes):  # a column only where a segment has an unknown statistic
        header.append("note")
        rows = [[*row, note] for row, note in zip(rows, notes, strict=True)]
    return [("h2", "Segments"), ("table", header, rows)]


def _serving(serving: Serving | None) -> list[Block]:
    if serving is None:
        return []
    rps, wall = as_float(serving.requests_per_second), as_float(serving.wall_seconds)
    text = (
        f"{thousands(serving.requests)} requests in {DASH if wall is None else f'{wall:.1f}'} s "
        f"({DASH if rps is None else f'{rps:,.0f}'} requests/s)."
    )
    out: list[Block] = [("h2", "Serving"), ("p", text)]
    if serving.latency:
        header = ["arm", "p50 (ms)", "p99 (ms)", "requests"]
        rows = [
            [arm, one_decimal(x.p50_ms), one_decimal(x.p99_ms), one_decimal(x.requests)]
            for arm, x in serving.latency.items()
        ]
        out.append(("table", header, rows))
    return out


def _reproduction(r: ExperimentResults) -> list[Block]:
    run = r.run
    out: list[Block] = [("h2", "Reproduction")]
    if run and run.command:
        out.append(("code", run.command))
    facts = [f"seed {r.seed}"]
    if run and run.config_fingerprint:
        facts.append(f"config fingerprint {run.config_fingerprint}")
    facts.append("the full config is in results.json")
    out.append(("p", "; ".join(facts) + "."))
    if run and run.checkpoints:
        rows = [[name, c.path or DASH, c.sha256 or DASH] for name, c in run.checkpoints.items()]
        out.append(("table", ["model", "checkpoint", "sha256"], rows))
    return out


def blocks(r: ExperimentResults, plots: Iterable[str]) -> list[Block]:
    """The document of `r`, with the figures named in `plots`."""
    out = _summary(r) + _headline(r) + _all_metrics(r) + _segments(r) + _serving(r.serving)
    plots = list(plots)
    if plots:
        out.append(("h2", "Plots"))
        out += [("img", name, PLOT_CAPTIONS.get(name, name)) for name in plots]
    return out + _reproduction(r)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: list[Block]) -> str:
    parts = []
    for block in doc:
        kind = block[0]
        if kind == "h1":
            parts.append(f"# {block[1]}")
        elif kind == "h2":
            parts.append(f"## {block[1]}")
        elif kind == "p":
            parts.append(block[1])
        elif kind == "warn":
            parts.append(f"> **{block[1]}**")
        elif kind == "code":
            parts.append(f"```\n{block[1]}\n```")
        elif kind == "img":
            parts.append(f"![{Path(block[1]).stem}]({block[1]})\n\n*{block[2]}*")
        elif kind == "table":
            _, header, rows = block
            lines = ["| " + " | ".join(_md_cell(c) for c in header) + " |"]
            lines.append("|" + "|".join("---" for _ in header) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
th { background: #f3f3f3; }
td { font-variant-numeric: tabular-nums; }
.warn { background: #fde2e1; border: 2px solid #c0392b; padding: 0.6em; font-weight: bold; }
figure { margin: 1em 0; } img { max-width: 100%; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; }
""".strip()


def to_html(doc: list[Block], title: str) -> str:
    esc = html.escape
    body = []
    for block in doc:
        kind = block[0]
        if kind in ("h1", "h2", "p"):
            body.append(f"<{kind}>{esc(block[1])}</{kind}>")
        elif kind == "warn":
            body.append(f'<p class="warn">{esc(block[1])}</p>')
        elif kind == "code":
            body.append(f"<pre><code>{esc(block[1])}</code></pre>")
        elif kind == "img":
            body.append(
                f'<figure><img src="{esc(block[1])}" alt="{esc(block[2])}">'
                f"<figcaption>{esc(block[2])}</figcaption></figure>"
            )
        elif kind == "table":
            _, header, rows = block
            head = "".join(f"<th>{esc(c)}</th>" for c in header)
            trs = "".join(
                "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{trs}</tbody></table>")
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>\n{HTML_STYLE}\n</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def markdown(r: ExperimentResults) -> str:
    """The text of report.md (plots embedded as relative links)."""
    return to_markdown(blocks(r, plots_for(r)))


def page(r: ExperimentResults, plots: Iterable[str]) -> dict[str, str]:
    """report.md and report.html of `r` with the figures named in `plots`."""
    doc = blocks(r, plots)
    return {"report.md": to_markdown(doc), "report.html": to_html(doc, _title(r))}
