"""The outputs of an offline evaluation: ``replay.md`` (:func:`format_markdown`), the running
estimates day by day as ``replay_days.png`` (:func:`plot_daily`), and ``replay.json``
(:func:`write_outputs` writes all three)."""

from __future__ import annotations

from pathlib import Path

from abtest.offline.results import MetricResult, ReplayRun, Support, to_json
from core import fileio


def _fmt(x: float | None, pct: bool) -> str:
    if x is None:
        return "—"
    return f"{x:.3%}" if pct else f"{x:.3f}"


def _metric_lines(run: ReplayRun, block: MetricResult, pct: bool) -> list[str]:
    lines = [
        "| estimator | estimate [95% CI] | n | ESS | truth | lift vs baseline [95% CI] |",
        "|---|---|---:|---:|---:|---|",
    ]
    for e in run.settings.estimators:
        d = block.estimates.get(e)
        if d is None:
            lines.append(f"| {e} | not computed | | | | |")
            continue
        lift = block.lift.estimators.get(e) if block.lift is not None else None
        lift_s = (
            f"{_fmt(lift.lift, True)} [{_fmt(lift.ci_low, True)}, {_fmt(lift.ci_high, True)}]"
            if lift
            else ""
        )
        ess_s = "—" if d.ess is None else f"{d.ess:,.0f}"
        lines.append(
            f"| {e} | {_fmt(d.estimate, pct)} [{_fmt(d.ci_low, pct)}, "
            f"{_fmt(d.ci_high, pct)}] | {d.n:,} | {ess_s} | "
            f"{_fmt(block.truth, pct)} | {lift_s} |"
        )
    true_lift = block.lift.truth if block.lift is not None else None
    log = block.logging
    lines.append("")
    lines.append(
        f"Logging policy: observed {_fmt(log.observed if log else None, pct)}, exact "
        f"{_fmt(log.truth if log else None, pct)}"
        + (f"; true lift {_fmt(true_lift, True)}" if true_lift is not None else "")
        + "."
    )
    if block.warnings:
        lines.append("Warnings: " + "; ".join(block.warnings) + ".")
    return lines


def support_line(sup: Support) -> str:
    """A table policy's support in one scenario, and what it means for the estimates."""
    if sup.uncovered >= 1 - 1e-12:
        line = (
            "Support: none of the table's mass is on items the logs showed at those positions: "
            "IPS reads 0, SNIPS and replay have nothing to estimate from, DR is its reward "
            "model's guess alone."
        )
    elif sup.uncovered > 0:
        worst = sorted(sup.positions, key=lambda p: -p.uncovered)[:5]
        at = ", ".join(f"{p.position}: {p.uncovered:.1%}" for p in worst if p.uncovered > 0)
        line = (
            f"Support: {sup.uncovered:.2%} of the table's mass is on items the logs never "
            f"showed at that position (by position: {at}); IPS counts it as reward 0 (biased "
            "low), SNIPS and replay estimate the covered part only, DR fills it in from its "
            "reward model."
        )
    else:
        line = "Support: every item the table can show was logged at its position."
    if sup.mass < 1 - 1e-9:
        line += (
            f" Its probabilities sum to {sup.mass:.3f} per slot on average: renormalised per "
            "slot (the estimate is per exposure the table shows)."
        )
    if sup.left_out:
        line += (
            f" {sup.left_out:,} logged exposures at slots where the table shows nothing are "
            "left out."
        )
    return line


def format_markdown(run: ReplayRun) -> str:
    """``replay.md``: per scenario and metric, every estimator's estimate, truth and lift."""
    st = run.settings
    lines = [
        f"# Offline replay: {run.policy}" + (f" vs {run.baseline}" if run.baseline else ""),
        "",
        f"Logs: `{st.logs}` ({st.kind}), evaluated from {st.evaluated_from.isoformat()}. "
        f"Estimand: {st.estimand}; target policy: {st.target_policy}; 95% CIs clustered by "
        f"{st.clusters}.",
    ]
    for name, sc in run.scenarios.items():
        blocks = (("CTR", sc.ctr, True), ("watch time per exposure (s)", sc.watch_time, False))
        for metric, block, pct in blocks:
            if block is None:
                continue
            lines += ["", f"## {name} — {metric}", ""]
            lines += _metric_lines(run, block, pct)
            if sc.support is not None and block is sc.ctr:
                lines.append(support_line(sc.support))
    return "\n".join(lines) + "\n"


def plot_daily(run: ReplayRun, path: Path) -> None:
    """The policy's running CTR estimates (with CIs) and the truth, one panel per scenario."""
    from matplotlib.figure import Figure

    names = list(run.daily)
    fig = Figure(figsize=(6.0 * max(len(names), 1), 4.0))
    axes = fig.subplots(1, max(len(names), 1), squeeze=False)[0]
    for ax, name in zip(axes, names, strict=False):
        rows = run.daily[name]
        days = [r.day + 1 for r in rows]
        for e in run.settings.estimators:
            vals = [r.estimates.get(e) for r in rows]
            pts = [(d, v) for d, v in zip(days, vals, strict=True) if v and v.estimate is not None]
            if not pts:
                continue
            x = [d for d, _ in pts]
            est = [v.estimate for _, v in pts]
            lo = [v.ci_low if v.ci_low is not None else v.estimate for _, v in pts]
            hi = [v.ci_high if v.ci_high is not None else v.estimate for _, v in pts]
            (line,) = ax.plot(x, est, marker="o", label=e)
            ax.fill_between(x, lo, hi, alpha=0.15, color=line.get_color())
        truth = [r.truth for r in rows]
        if any(t is not None for t in truth):
            ax.plot(days, truth, "k--", label="truth")
        ax.set_title(f"{name}: CTR of {run.policy}")
        ax.set_xlabel("logged days")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    with fileio.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)


OUTPUT_FILES = ("replay.json", "replay.md", "replay_days.png")


def write_outputs(out: Path, run: ReplayRun) -> dict[str, Path]:
    """Write ``replay.json``, ``replay.md`` and ``replay_days.png`` into `out`."""
    fileio.check_writable_dir(out)
    paths = {
        "replay.json": fileio.write_json(out / "replay.json", to_json(run)),
        "replay.md": fileio.write_text(out / "replay.md", format_markdown(run)),
    }
    plot_daily(run, out / "replay_days.png")
    paths["replay_days.png"] = out / "replay_days.png"
    return paths
