"""The figures of a report: forest plot, cumulative lift, p-value paths, watch-time
distributions and MDE; which of them the results have data for; PNG output."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator, PercentFormatter

from abtest.online.analysis import HEADLINE_METRICS
from abtest.online.results import DailySeries, ExperimentResults
from abtest.report import layout
from abtest.report.format import as_float

PLOT_FILES = ("forest.png", "cumulative.png", "pvalues.png", "watch_time.png", "mde.png")
PLOT_CAPTIONS = {
    "forest.png": "Relative lift with confidence interval per scenario",
    "cumulative.png": "Cumulative lift with confidence band by day",
    "pvalues.png": "p-value paths by day: naive vs always-valid",
    "watch_time.png": "Per-user watch-time distribution per arm",
    "mde.png": "Minimum detectable effect vs |observed lift|",
}
DPI = 110
HIGH_COLOUR, LOW_COLOUR, OVERALL_COLOUR = "tab:blue", "tab:orange", "black"
TRUTH_COLOUR = "crimson"
P_FLOOR = 1e-8  # p-values below this are drawn at it
RC = {"svg.hashsalt": "abtest-report", "font.size": 9, "axes.titlesize": 9}

Plot = Callable[[ExperimentResults], Figure]


def plots_for(r: ExperimentResults) -> dict[str, Plot]:
    """The plots these results have data for: file name → plotting function."""
    plots: dict[str, Plot] = {"forest.png": plot_forest}
    if r.daily:
        plots["cumulative.png"] = plot_cumulative
        plots["pvalues.png"] = plot_pvalues
    if r.distributions:
        plots["watch_time.png"] = plot_watch_time
    plots["mde.png"] = plot_mde
    return plots


def save_png(fig: Figure, path: Path) -> None:
    with matplotlib.rc_context(RC):
        # No "Software" entry: the bytes then depend only on the results, not the version.
        fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})


def _figure(width: float, height: float) -> Figure:
    # A bare Figure (no pyplot) renders with Agg, keeps no global state and needs no closing,
    # so plotting never touches the caller's backend and is safe in worker threads.
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _series(values: tuple, n: int) -> np.ndarray:
    """The first `n` values as floats, unknown and missing ones as NaN."""
    out = [as_float(v) for v in values[:n]] + [None] * max(0, n - len(values))
    return np.array([np.nan if v is None else v for v in out], dtype=float)


def _colour(r: ExperimentResults, name: str) -> str:
    if name == layout.OVERALL:
        return OVERALL_COLOUR
    return LOW_COLOUR if layout.is_low(r.scenarios.get(name)) else HIGH_COLOUR


def _label(r: ExperimentResults, name: str) -> str:
    return layout.label(name, r.scenarios.get(name))


def _traffic_legend(truth: bool) -> list[Line2D]:
    handles = [
        Line2D([], [], color=HIGH_COLOUR, marker="o", label="high traffic"),
        Line2D([], [], color=LOW_COLOUR, marker="o", label="low traffic"),
        Line2D([], [], color=OVERALL_COLOUR, marker="o", label="overall"),
        Line2D([], [], color="grey", marker="o", ls="", mfc="white", label="not significant"),
    ]
    if truth:
        handles.append(Line2D([], [], color=TRUTH_COLOUR, marker="x", ls="", label="true lift"))
    return handles


def plot_forest(r: ExperimentResults) -> Figure:
    rows = layout.rows(r)
    fig = _figure(10, 1.2 + 0.45 * len(rows))
    axes = fig.subplots(1, len(HEADLINE_METRICS), sharey=True, squeeze=False)[0]
    ys = np.arange(len(rows))[::-1]
    truth = False
    for ax, metric in zip(axes, HEADLINE_METRICS, strict=True):
        for y, (name, population) in zip(ys, rows, strict=True):
            m = population.metric(metric)
            colour, sig = _colour(r, name), m.significant is True
            lift, lo, hi = as_float(m.lift), as_float(m.ci_low), as_float(m.ci_high)
            if lo is not None and hi is not None:
                ax.hlines(y, lo * 100, hi * 100, color=colour, lw=2.6 if sig else 1.2)
            if lift is not None:
                ax.plot(lift * 100, y, "o", color=colour, ms=7, mfc=colour if sig else "white")
            true = as_float(m.true_lift)
            if true is not None:
                truth = True
                ax.plot(true * 100, y, "x", color=TRUTH_COLOUR, ms=8, mew=2)
            if lift is None and m.note:  # e.g. an arm without users: say so in the row
                ax.annotate("no data", (0.5, y), xycoords=("axes fraction", "data"),
                            ha="center", va="center", color="grey", fontsize=7)  # fmt: skip
                ax.set_ylim(-0.6, len(rows) - 0.4)  # room for the text in the outer rows
        ax.axvline(0, color="grey", lw=0.8, ls="--")
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=100))
        ax.set_title(metric)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ys, [_label(r, n) for n, _ in rows])
    for tick, (name, _) in zip(axes[0].get_yticklabels(), rows, strict=True):
        tick.set_color(_colour(r, name))
    axes[-1].legend(handles=_traffic_legend(truth), loc="best", fontsize=7)
    fig.suptitle(
        f"Relative lift with {layout.level(r)} CI per scenario (filled, thick = significant)"
    )
    return fig


def _daily_grid(r: ExperimentResults) -> tuple[list[str], list[str]]:
    """Panel columns (scenarios, then overall) and rows (metrics, watch time on top)."""
    names = layout.panel_names(r, r.daily)
    present = {m for n in names for m in r.daily[n]}
    return names, [m for m in HEADLINE_METRICS[::-1] if m in present]


def _truth_of(r: ExperimentResults, name: str, metric: str) -> float | None:
    population = r.overall if name == layout.OVERALL else r.scenarios.get(name)
    return as_float(population.metric(metric).true_lift) if population else None


def _empty(ax: Any, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def _small_multiples(
    r: ExperimentResults, draw: Callable[..., None], ylabel: str, sharey: bool | str = False
) -> Figure:
    names, metrics = _daily_grid(r)
    metrics = metrics or list(HEADLINE_METRICS)
    nrows, ncols = len(metrics), max(1, len(names))
    fig = _figure(2.4 * ncols + 0.6, 2.3 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=sharey)
    for row, metric in enumerate(metrics):
        for c in range(ncols):
            ax = axes[row][c]
            if c >= len(names):
                _empty(ax)
                continue
            name = names[c]
            series = r.daily[name].get(metric)
            if series is None:
                _empty(ax)
            else:
                draw(ax, name, metric, _series(series.day, len(series.day)), series)
            if row == 0:
                ax.set_title(_label(r, name), color=_colour(r, name))
            if c == 0:
                ax.set_ylabel(f"{metric}\n{ylabel}")
            if row == nrows - 1:
                ax.set_xlabel("day")
    return fig


def plot_cumulative(r: ExperimentResults) -> Figure:
    def draw(ax: Any, name: str, metric: str, day: np.ndarray, s: DailySeries) -> None:
        n = len(day)
        lift = _series(s.lift, n) * 100
        lo, hi = _series(s.ci_low, n) * 100, _series(s.ci_high, n) * 100
        colour = _colour(r, name)
        if not np.isfinite(lift).any():
            _empty(ax)
        ax.fill_between(day, lo, hi, color=colour, alpha=0.2, lw=0)
        ax.plot(day, lift, "-o", color=colour, ms=3)
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        true = _truth_of(r, name, metric)
        if true is not None:
            ax.axhline(true * 100, color=TRUTH_COLOUR, lw=1, ls=":", label="true lift")
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=100))

    fig = _small_multiples(r, draw, "cumulative lift")
    fig.suptitle(f"Cumulative lift with {layout.level(r)} CI band by day")
    return fig


def plot_pvalues(r: ExperimentResults) -> Figure:
    alpha = layout.alpha(r)
    names, metrics = _daily_grid(r)
    found = [r.daily[n].get(m) for n in names for m in metrics]
    ps = [_series(values, len(s.day)) for s in filter(None, found)
          for values in (s.p_naive, s.p_always_valid)]  # fmt: skip
    ps = np.concatenate([*ps, [alpha]])
    low = max(P_FLOOR, float(np.nanmin(ps[ps > 0], initial=alpha))) / 3

    def draw(ax: Any, name: str, metric: str, day: np.ndarray, s: DailySeries) -> None:
        n = len(day)
        naive, valid = _series(s.p_naive, n), _series(s.p_always_valid, n)
        if not np.isfinite(naive).any():
            _empty(ax)
        # p = 0 has no place on a log axis; the floor also keeps the decades readable.
        naive, valid = np.clip(naive, P_FLOOR, 1), np.clip(valid, P_FLOOR, 1)
        ax.set_yscale("log")
        ax.yaxis.set_minor_locator(NullLocator())
        ax.plot(day, naive, "-o", ms=3, color="tab:grey", label="naive")
        ax.plot(day, valid, "-o", ms=3, color="tab:purple", label="always valid")
        ax.axhline(alpha, color="tab:red", lw=1, ls="--", label=f"α = {alpha:g}")
        ax.set_ylim(low, 1.5)
        if ax.get_subplotspec().is_first_col() and ax.get_subplotspec().is_first_row():
            ax.legend(fontsize=7, loc="lower left")

    fig = _small_multiples(r, draw, "p-value", sharey=True)
    fig.suptitle("p-value paths by day: naive (peeking) vs always-valid (mSPRT)")
    return fig


def plot_watch_time(r: ExperimentResults) -> Figure:
    names = layout.panel_names(r, r.distributions)
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = _figure(3.4 * ncols, 2.6 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, name in zip(axes, names, strict=False):
        d = r.distributions[name]
        edges = _series(d.edges, len(d.edges))
        ax.set_title(_label(r, name), color=_colour(r, name))
        ax.set_xlabel("watch time per user (s)")
        ax.set_ylabel("share of users")
        drawn = False
        arms = (
            (d.control, f"control ({r.control})", "tab:grey"),
            (d.treatment, f"treatment ({r.treatment})", "tab:green"),
        )
        for values, label, colour in arms:
            counts = _series(values, max(0, len(edges) - 1))
            total = np.nansum(counts)
            if len(edges) < 2 or not np.isfinite(edges).all() or total <= 0:
                continue
            ax.stairs(np.nan_to_num(counts) / total, edges, color=colour, lw=1.5, label=label)
            drawn = True
        if drawn:
            ax.legend(fontsize=7)
        else:
            _empty(ax)
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    fig.suptitle("Per-user watch-time distribution per arm")
    return fig


def plot_mde(r: ExperimentResults) -> Figure:
    rows, metrics = layout.rows(r), layout.metric_names(r)
    ncols = min(2, len(metrics)) or 1
    nrows = max(1, math.ceil(len(metrics) / ncols))
    fig = _figure(5.2 * ncols, 3.2 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    x = np.arange(len(rows))
    for ax, metric in zip(axes, metrics, strict=False):
        for i, (name, population) in enumerate(rows):
            m = population.metric(metric)
            colour = _colour(r, name)
            mde, lift = as_float(m.mde), as_float(m.lift)
            if mde is not None:
                ax.bar(i, mde * 100, color=colour, alpha=0.35, width=0.7)
            if lift is not None:
                sig = m.significant is True
                ax.plot(i, abs(lift) * 100, "D", color=colour, mfc=colour if sig else "white")
        ax.set_xticks(x, [_label(r, n) for n, _ in rows], rotation=30, ha="right")
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=100))
        ax.set_title(metric)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle("MDE per scenario (bars) vs |observed lift| (◆, filled = significant)")
    return fig
