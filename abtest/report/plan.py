"""What ``plan`` writes: ``plan.md`` (the recommendation per scenario and metric, the
reasons, the estimands, the users needed per design with their analytic cross-checks, the
assumptions and caveats), ``plan.json`` (:meth:`~abtest.online.plan.Plan.to_json`) and
``plan.png`` (users needed per design on a log axis with the available users marked, and
the power curves measured at the grid points); and the console summary table.

May import ``core`` and ``abtest.online``; never ``abtest.cli``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import FuncFormatter, NullFormatter

from abtest.online.analysis import HEADLINE_METRICS
from abtest.online.plan import (
    DESIGN_LABELS,
    DESIGNS,
    OVERALL,
    DesignPlan,
    Plan,
    ScenarioPlan,
    planned,
)
from abtest.report.format import DASH, percent, strict_json_text
from abtest.report.plots import _figure, save_png
from core import fileio

FILES = ("plan.md", "plan.json", "plan.png")
DESIGN_COLOURS = {"ab": "tab:blue", "ab_cuped": "tab:green", "interleaving": "tab:orange"}
DESIGN_MARKERS = {"ab": "o", "ab_cuped": "s", "interleaving": "D"}


# ------------------------------------------------------------------------------- numbers


def _count(n: float | None) -> str:
    return DASH if n is None else f"{n:,.0f}"


def _days(d: float | None) -> str:
    if d is None:
        return DASH
    return f"{d:.2g}" if d < 10 else f"{d:,.0f}"


def users_cell(d: DesignPlan) -> str:
    """Users needed and days: "266 (4.4 d)", "≤ 50 (0.83 d)", "> 6,000" (beyond the range);
    a "✓" when the design fits the planned days."""
    u = d.needed
    if u.n is None:
        return f"> {u.hi:,}"
    how = "≤ " if u.status == "at most lo" else ""
    return f"{how}{_count(u.n)} ({how}{_days(d.days_needed)} d)" + (" ✓" if d.fits else "")


def _share(x: float | None) -> str:
    return DASH if x is None else f"{x:.1%}"


def _label(design: str | None) -> str:
    return "none" if design is None else DESIGN_LABELS[design]


# ------------------------------------------------------------------------------- tables


def _table_rows(plan: Plan) -> list[list[str]]:
    head = ["scenario", "metric", "users", "true lift", "preference"]
    head += [DESIGN_LABELS[d] for d in DESIGNS] + ["recommended"]
    rows = [head]
    for r in plan.rows:
        cells = [r.scenario, r.metric, f"{r.users_available:,}", percent(r.true_lift)]
        cells.append(_share(r.preference_share))
        cells += [users_cell(r.design(d)) if r.designs else DASH for d in DESIGNS]
        rows.append([*cells, _label(r.recommended)])
    return rows


def summary_table(plan: Plan) -> str:
    """The console summary: per scenario and metric, the users needed per design (days in
    brackets, ✓ = fits the planned days) and the recommended design."""
    rows = _table_rows(plan)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        f"Design plan: {plan.treatment} (treatment) vs {plan.control} (control), "
        f"{planned(plan.days)}; users needed for {plan.power:.0%} power at alpha "
        f"{plan.alpha:g} (✓ = fits the planned days)",
        "",
    ]
    for k, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)


def _md_table(rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    return out + ["| " + " | ".join(row) + " |" for row in rows[1:]]


def _grid_text(d: DesignPlan) -> str:
    u = d.needed
    return ", ".join(f"{n:,}: {p:.2f}" for n, p in zip(u.grid, u.powers, strict=True))


def markdown(plan: Plan) -> str:
    lines = [
        f"# Design plan: {plan.treatment} vs {plan.control}",
        "",
        f"World: {plan.world}. One simulation of {planned(plan.days)} (seed {plan.seed}): "
        "an A/B run with its truth twin (every user under both arms) and one "
        f"{plan.variant}-variant interleaving run. Users needed for "
        f"{plan.power:.0%} power at alpha {plan.alpha:g}, by re-randomisation ({plan.reps} "
        f"simulated experiments per size, sizes from {plan.lo:,} to {plan.hi_per_available} x "
        "the available users).",
        "",
        *[line for n in plan.notes for line in (f"**Note:** {n}", "")],
        "## Recommendation",
        "",
        "Users needed per design, with the days that takes in brackets (✓ = fits the planned "
        "days; ≤ = already at the smallest size searched; > = beyond the largest). *Users* = "
        "users with a session in the scenario during the planned days; *preference* = the "
        "treatment's share of the interleaving run's credited engagement.",
        "",
        *_md_table(_table_rows(plan)),
        "",
        "## Why",
        "",
        *[f"- **{r.scenario}, {r.metric}**: {r.reason}." for r in plan.rows],
        "",
        "![users needed per design](plan.png)",
        "",
        "## What each design estimates",
        "",
        *[f"- **{DESIGN_LABELS[d]}**: {plan.estimands[d]}." for d in DESIGNS],
        "",
        "## Users needed, in detail",
        "",
        "Re-randomisation's answer, the normal approximation's (analytic, from the full "
        "population's variance), the days needed (in proportion to days) and by the simulated "
        "accrual of distinct users (— beyond the planned days), and the power measured at "
        "each size searched.",
        "",
        "| scenario | metric | design | status | users needed | analytic | days needed | "
        "days by accrual | power by size |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in plan.rows:
        for d in r.designs:
            lines.append(
                f"| {r.scenario} | {r.metric} | {DESIGN_LABELS[d.design]} | {d.needed.status} | "
                f"{_count(d.needed.n)} | {_count(d.needed.analytic)} | {_days(d.days_needed)} | "
                f"{DASH if d.days_by_accrual is None else d.days_by_accrual} | {_grid_text(d)} |"
            )
    lines += ["", "## Users by day", "", "Distinct users with a session by the end of each day."]
    days = list(range(1, plan.days + 1))
    lines += ["", "| scenario | " + " | ".join(f"day {d}" for d in days) + " |"]
    lines.append("|---|" + "---|" * len(days))
    for r in plan.rows:
        if r.metric == HEADLINE_METRICS[0]:
            lines.append(f"| {r.scenario} | " + " | ".join(f"{n:,}" for n in r.users_by_day) + " |")
    lines += ["", "## Assumptions", "", *[f"- {a}." for a in plan.assumptions]]
    lines += ["", "## Caveats", "", *[f"- {c}." for c in plan.caveats]]
    s = plan.simulation
    lines += [
        "",
        "## The simulation",
        "",
        f"A/B {s.ab_requests:,} requests ({s.ab_wall_seconds:g} s, twin "
        f"{s.twin_wall_seconds:g} s); interleaving {s.interleaving_requests:,} requests "
        f"({s.interleaving_wall_seconds:g} s), {s.uncredited_impressions:,} impressions "
        "credited to neither arm (slots filled from the pool).",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------- plot


def _populations(plan: Plan) -> list[str]:
    return [*plan.scenarios, OVERALL]


def _log_axis(ax) -> None:
    """A log x axis labelled with plain counts (1,000 rather than 10³), no minor labels."""
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _summary_panel(ax, plan: Plan, metric: str) -> None:
    """Per population, users needed per design on a log axis; the available users as a
    black bar; a design at the smallest size searched as a left arrow at it, one beyond the
    search as an open right arrow at its upper bound."""
    names = _populations(plan)
    offsets = dict(zip(DESIGNS, np.linspace(-0.25, 0.25, len(DESIGNS)), strict=True))
    for y, name in enumerate(names):
        r = plan.row(name, metric)
        ax.plot([r.users_available] * 2, [y - 0.4, y + 0.4], color="black", lw=1.5)
        for d in r.designs:
            u, colour = d.needed, DESIGN_COLOURS[d.design]
            at = (y + offsets[d.design],)
            if u.n is None:
                ax.plot((u.hi,), at, marker=">", color=colour, ls="none", mfc="none")
            elif u.status == "at most lo":
                ax.plot((u.n,), at, marker="<", color=colour, ls="none")
            else:
                ax.plot((u.n,), at, marker=DESIGN_MARKERS[d.design], color=colour, ls="none")
    for d in DESIGNS:
        ax.plot([], [], marker=DESIGN_MARKERS[d], color=DESIGN_COLOURS[d], ls="none",
                label=DESIGN_LABELS[d])  # fmt: skip
    ax.plot([], [], color="black", lw=1.5, label="users available")
    ax.plot([], [], marker="<", color="grey", ls="none", label="at most (smallest size)")
    ax.plot([], [], marker=">", color="grey", mfc="none", ls="none", label="beyond the search")
    _log_axis(ax)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set(title=f"{metric}: users for {plan.power:.0%} power", xlabel="users (log)")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)


def _power_panel(ax, plan: Plan, r: ScenarioPlan) -> None:
    for d in r.designs:
        u = d.needed
        ax.plot(u.grid, u.powers, marker=DESIGN_MARKERS[d.design], ms=3,
                color=DESIGN_COLOURS[d.design], label=DESIGN_LABELS[d.design])  # fmt: skip
    ax.axhline(plan.power, color="grey", lw=0.8, ls="--")
    ax.axvline(r.users_available, color="black", lw=1.0)
    if r.designs:
        _log_axis(ax)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{r.scenario}, {r.metric}", fontsize=8)
    ax.tick_params(labelsize=7)


def plot(plan: Plan):
    """The figure of ``plan.png``: a summary panel per metric on top, then a power curve
    panel per population and metric (power measured at each size searched; dashed: the
    target power; black: the users available)."""
    names = _populations(plan)
    n_metrics = len(HEADLINE_METRICS)
    fig = _figure(5.5 * n_metrics, 0.5 * len(names) + 2.5 + 2.0 * len(names))
    grid = fig.add_gridspec(1 + len(names), n_metrics, height_ratios=[3.0] + [2.0] * len(names))
    for k, metric in enumerate(HEADLINE_METRICS):
        _summary_panel(fig.add_subplot(grid[0, k]), plan, metric)
        for i, name in enumerate(names):
            ax = fig.add_subplot(grid[1 + i, k])
            _power_panel(ax, plan, plan.row(name, metric))
            if i == 0 and k == 0:
                ax.legend(fontsize=6, loc="lower right")
            if i == len(names) - 1:
                ax.set_xlabel("users in the experiment (log)", fontsize=7)
            if k == 0:
                ax.set_ylabel("power", fontsize=7)
    return fig


# ------------------------------------------------------------------------------- writing


def write_plan(stage: str | Path, plan: Plan) -> list[Path]:
    """Write :data:`FILES` into `stage` (each file atomically)."""
    stage = Path(stage)
    fig = plot(plan)
    return [
        fileio.write_text(stage / "plan.md", markdown(plan)),
        fileio.write_text(stage / "plan.json", strict_json_text(plan.to_json())),
        fileio.atomic_write(stage / "plan.png", lambda p: save_png(fig, p)),
    ]
