"""What an interleaving run shows: ``interleaving.md``, ``interleaving.json`` and
``interleaving.png`` (the treatment's credited share with its CI per scenario), and the
console table, from the typed results of :mod:`abtest.online.interleaving_analysis`.

:func:`write_interleaving` writes the three files into a folder, each atomically; a command
replacing a whole output folder writes them into its staging folder
(:func:`abtest.report.outdir.replacing` with :data:`FILES` as the owned names).
:func:`read_interleaving` reads the results back from a folder, so the report can be
re-rendered without running again.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import PercentFormatter

from abtest.online.interleaving_analysis import (
    METRICS,
    InterleavingResults,
    MetricPreference,
    PreferencePopulation,
    from_json,
    to_json,
)
from abtest.report.document import Block, to_markdown
from abtest.report.format import DASH, MINUS, as_float, p_value, percent, strict_json_text
from abtest.report.plots import HIGH_COLOUR, LOW_COLOUR, OVERALL_COLOUR, _figure, save_png
from core import fileio
from core.errors import UserError

FILES = ("interleaving.md", "interleaving.json", "interleaving.png")
OVERALL = "overall"
LABELS = {"clicks": "clicks", "watch_time": "watch time"}
IMPRESSION_COLOUR = "tab:grey"

ESTIMAND = (
    "Interleaving measures the users' preference between the two arms' items on the same "
    "requests — a different estimand from the A/B lift. Every request of every user was "
    "served one slate merging both arms' items (team draft), and each click or watch "
    "second was credited to the arm whose item it was: the treatment's share of the "
    "credited engagement says which arm's items win when both are on offer side by side, "
    "not by how much clicks or watch time would change if every user were served by the "
    "treatment alone, which is what the A/B lift estimates. The two need not agree in size, "
    "nor even in sign."
)
VARIANT_NOTES = {
    "recall": (
        "Variant recall: the two arms' candidate lists were merged and the shared ranker "
        "picked each slate from the merged list, so it shows more items of the arm whose "
        "candidates it scores higher: the treatment's share of the impressions is itself a "
        "result (50% = as many items of each arm shown)."
    ),
    "slate": (
        "Variant slate: the two arms' final slates were merged, so each arm has about half "
        "of the slots by construction (impression share near 50%)."
    ),
}


# --------------------------------------------------------------------------- cells


def _level(r: InterleavingResults) -> str:
    return f"{(1 - r.alpha) * 100:g}%"


def _rows(r: InterleavingResults) -> list[tuple[str, PreferencePopulation]]:
    """(name, population) per scenario, high traffic first (each group in the given order),
    then the overall one."""
    names = sorted(r.scenarios, key=lambda n: r.scenarios[n].low_traffic is True)
    return [(n, r.scenarios[n]) for n in names] + [(OVERALL, r.overall)]


def _label(name: str, p: PreferencePopulation) -> str:
    return f"{name} (low traffic)" if p.low_traffic is True else name


def _traffic(name: str, p: PreferencePopulation) -> str:
    return "all" if name == OVERALL else percent(p.traffic_share, signed=False)


def _share_ci(m: MetricPreference, marker: bool = True) -> str:
    s = m.share
    share, lo, hi = as_float(s.share), as_float(s.ci_low), as_float(s.ci_high)
    if share is None:
        return DASH
    text = percent(share, signed=False)
    if lo is not None and hi is not None:
        text += f" [{percent(lo, signed=False)}, {percent(hi, signed=False)}]"
    return text + (" *" if marker and m.significant else "")


def _delta(m: MetricPreference) -> str:
    d = as_float(m.share.delta)
    return DASH if d is None else f"{d:+.3f}".replace("-", MINUS)


def _wins(m: MetricPreference) -> str:
    w = m.wins
    return f"{w.wins:,} / {w.losses:,} / {w.ties:,}"


def _users(p: PreferencePopulation, m: MetricPreference) -> str:
    return f"{p.users:,} ({m.share.n_users:,})"


def _notes(r: InterleavingResults, metric: str) -> list[str]:
    out = []
    for name, p in _rows(r):
        m = p.metrics.get(metric)
        if m is None:
            continue
        reasons = dict.fromkeys(x for x in (m.share.reason, m.wins.reason) if x)
        if reasons:
            out.append(f"{name}: {'; '.join(reasons)}")
    return out


# --------------------------------------------------------------------------- markdown


def _facts(r: InterleavingResults) -> str:
    facts = [
        f"treatment {r.treatment}",
        f"control {r.control}",
        f"variant {r.variant}",
        f"seed {r.seed}",
        f"{r.days} days",
        f"{r.requests:,} requests",
        f"{r.exposures:,} impressions",
        f"alpha {r.alpha:g}",
        f"p-value correction {r.correction} (scenario × metric; overall its own family)",
    ]
    if r.run and r.run.created:
        facts.append(f"created {r.run.created}")
    return "; ".join(facts) + "."


def _metric_table(r: InterleavingResults, metric: str) -> list[Block]:
    what = LABELS.get(metric, metric)
    header = [
        "scenario", "traffic", "users (with credit)", f"share of credited {what} [{_level(r)} CI]",
        "Δ = 2·share−1", "p_adj", "wins / losses / ties", "treatment's impression share",
    ]  # fmt: skip
    rows = []
    for name, p in _rows(r):
        m = p.metrics.get(metric)
        if m is None:
            continue
        rows.append([
            _label(name, p), _traffic(name, p), _users(p, m), _share_ci(m), _delta(m),
            p_value(m.p_adjusted), _wins(m), percent(p.impressions.share, signed=False),
        ])  # fmt: skip
    out: list[Block] = [("h2", f"Credited {what}"), ("table", header, rows)]
    notes = _notes(r, metric)
    if notes:
        out.append(("p", "Not computable: " + "; ".join(notes) + "."))
    return out


def _legend(r: InterleavingResults) -> str:
    return (
        f"share = the treatment's share of the credited engagement (50% = no preference), "
        f"with its delta-method {_level(r)} CI over users; Δ = 2·share−1 on [−1, 1] (> 0 "
        "favours the treatment); p_adj: the sign-flip (randomisation) test of 50% over users, "
        "corrected; * = p_adj < "
        f"{r.alpha:g}. users: who saw at least one arm's item (in brackets: with credited "
        "engagement of the metric). wins / losses / ties: users whose credited total was "
        "higher for the treatment / for the control / equal, over the whole run. Impression "
        "share: the treatment's share of the impressions credited to an arm."
    )


def _uncredited(r: InterleavingResults) -> list[Block]:
    imp = r.overall.impressions
    uncredited = as_float(imp.uncredited)
    if uncredited is None:
        return []
    total = (as_float(imp.treatment) or 0) + (as_float(imp.control) or 0) + uncredited
    share = percent(uncredited / total, signed=False) if total > 0 else DASH
    return [
        ("p", f"Uncredited impressions (slots no arm's candidate could fill): "
              f"{round(uncredited):,} ({share} of all).")
    ]  # fmt: skip


def _reproduction(r: InterleavingResults) -> list[Block]:
    run = r.run
    out: list[Block] = [("h2", "Reproduction")]
    if run and run.command:
        out.append(("code", run.command))
    facts = [f"seed {r.seed}"]
    if run and run.config_fingerprint:
        facts.append(f"config fingerprint {run.config_fingerprint}")
    facts.append("the full results are in interleaving.json")
    return [*out, ("p", "; ".join(facts) + ".")]


def blocks(r: InterleavingResults) -> list[Block]:
    out: list[Block] = [
        ("h1", f"Interleaving: {r.treatment} vs {r.control}"),
        ("p", ESTIMAND),
        ("p", _facts(r)),
    ]
    if r.run and r.run.world:
        out.append(("p", f"World: {r.run.world}."))
    for warning in r.run.warnings if r.run else ():
        out.append(("warn", f"Warning: {warning}."))
    if r.variant in VARIANT_NOTES:
        out.append(("p", VARIANT_NOTES[r.variant]))
    for metric in METRICS:
        out += _metric_table(r, metric)
    out += [("p", _legend(r)), *_uncredited(r)]
    out += [
        ("h2", "Plot"),
        ("img", "interleaving.png", "The treatment's credited share with its CI per scenario"),
    ]
    return out + _reproduction(r)


def markdown(results: InterleavingResults) -> str:
    """The text of interleaving.md."""
    return to_markdown(blocks(results))


# --------------------------------------------------------------------------- console


def _align(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def format_table(results: InterleavingResults) -> str:
    """The console summary: one line per scenario (high traffic first), then overall."""
    r = results
    header = ["scenario", "users"]
    for metric in METRICS:
        header += [f"{metric} share [{_level(r)} CI]", "p_adj"]
    header.append("impr. share")
    table = [header]
    for name, p in _rows(r):
        row = [name + (" (low)" if p.low_traffic is True else ""), f"{p.users:,}"]
        for metric in METRICS:
            m = p.metrics.get(metric)
            row += [DASH, DASH] if m is None else [_share_ci(m), p_value(m.p_adjusted)]
        table.append([*row, percent(p.impressions.share, signed=False)])
    title = (
        f"{r.treatment} (treatment) vs {r.control} (control), team-draft interleaving "
        f"({r.variant}), seed {r.seed}, {r.days} days; share = treatment's share of the "
        f"credited engagement; p_adj: {r.correction} correction; * significant at alpha = "
        f"{r.alpha:g}"
    )
    lines = _align(table)
    rule = "-" * max(len(line) for line in lines)
    notes = [f"note: {metric} {line}" for metric in METRICS for line in _notes(r, metric)]
    return "\n".join([title, lines[0], rule, *lines[1:], rule, *notes]) + "\n"


# --------------------------------------------------------------------------- plot


def _colour(name: str, p: PreferencePopulation) -> str:
    if name == OVERALL:
        return OVERALL_COLOUR
    return LOW_COLOUR if p.low_traffic is True else HIGH_COLOUR


def plot(results: InterleavingResults) -> Figure:
    """Per scenario (then overall) and metric: the treatment's credited share with its CI
    (filled = significant), the treatment's impression share, and a line at 50%."""
    r = results
    rows = _rows(r)
    fig = _figure(10, 1.8 + 0.45 * len(rows))
    axes = fig.subplots(1, len(METRICS), sharey=True, squeeze=False)[0]
    ys = np.arange(len(rows))[::-1]
    for ax, metric in zip(axes, METRICS, strict=True):
        for y, (name, p) in zip(ys, rows, strict=True):
            colour, m = _colour(name, p), p.metrics.get(metric)
            share = None if m is None else as_float(m.share.share)
            lo = None if m is None else as_float(m.share.ci_low)
            hi = None if m is None else as_float(m.share.ci_high)
            sig = m is not None and m.significant
            if lo is not None and hi is not None:
                ax.hlines(y, lo * 100, hi * 100, color=colour, lw=2.6 if sig else 1.2)
            if share is not None:
                ax.plot(share * 100, y, "o", color=colour, ms=7, mfc=colour if sig else "white")
            else:
                ax.annotate("no data", (0.5, y), xycoords=("axes fraction", "data"),
                            ha="center", va="center", color="grey", fontsize=7)  # fmt: skip
            imp = as_float(p.impressions.share)
            if imp is not None:
                ax.plot(imp * 100, y, "x", color=IMPRESSION_COLOUR, ms=7, mew=1.5)
        ax.axvline(50, color="grey", lw=0.8, ls="--")
        ax.set_ylim(-0.6, len(rows) - 0.4)
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=100))
        ax.set_title(f"credited {LABELS.get(metric, metric)}")
        ax.set_xlabel("treatment's share")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ys, [_label(n, p) for n, p in rows])
    for tick, (name, p) in zip(axes[0].get_yticklabels(), rows, strict=True):
        tick.set_color(_colour(name, p))
    handles = [
        Line2D([], [], color=HIGH_COLOUR, marker="o", label="high traffic"),
        Line2D([], [], color=LOW_COLOUR, marker="o", label="low traffic"),
        Line2D([], [], color=OVERALL_COLOUR, marker="o", label="overall"),
        Line2D([], [], color="grey", marker="o", ls="", mfc="white", label="not significant"),
        Line2D([], [], color=IMPRESSION_COLOUR, marker="x", ls="", label="impression share"),
    ]
    # below the panels: inside, it would hide the CIs near 100%
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=7)
    fig.suptitle(
        f"Interleaving {r.treatment} vs {r.control}: the treatment's share of the credited "
        f"engagement with {_level(r)} CI\n(filled, thick = significant; 50% = no preference)"
    )
    return fig


# --------------------------------------------------------------------------- files


def write_interleaving(stage: str | Path, results: InterleavingResults) -> list[Path]:
    """Write :data:`FILES` into the folder `stage`, each file atomically; returns their paths
    in that order."""
    stage = Path(stage)
    fig = plot(results)
    return [
        fileio.write_text(stage / "interleaving.md", markdown(results)),
        fileio.write_text(stage / "interleaving.json", strict_json_text(to_json(results))),
        fileio.atomic_write(stage / "interleaving.png", lambda p: save_png(fig, p)),
    ]


def read_interleaving(folder: str | Path) -> InterleavingResults:
    """The results in `folder`/interleaving.json; UserError if there are none or they are
    malformed."""
    path = Path(folder) / "interleaving.json"
    if not path.is_file():
        raise UserError(f"{folder} has no interleaving.json: not an interleaving run folder")
    return from_json(fileio.read_json(path), source=str(path))
