"""What ``fidelity`` writes: ``fidelity.json``, ``fidelity.md`` and ``fidelity.png`` (fitted
vs real true lifts, one point per model x seed x scenario x metric)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from abtest.online.analysis import HEADLINE_METRICS
from abtest.online.fidelity import Fidelity
from abtest.report.format import strict_json_text
from abtest.report.plots import _figure, save_png
from core import fileio

FILES = ("fidelity.json", "fidelity.md", "fidelity.png")


def _pct(x, signed: bool = True) -> str:
    return "—" if x is None else (f"{x:+.1%}" if signed else f"{x:.1%}")


def _num(x, fmt: str = ".2f") -> str:
    return "—" if x is None else format(x, fmt)


def markdown(f: Fidelity) -> str:
    s = f.summary
    lines = [
        "# Fidelity of a world fitted from logs",
        "",
        f"World fitted from the pre-period logs only: `{f.world}`. Each model against "
        f"`{f.control}`, {f.days} experiment days, seeds {list(f.seeds)}. *Real* = the "
        "synthetic world's true lift (its twin); *fitted* = the fitted world's own twin "
        "(model-based); *CI covers* = the 95% CI of the A/B simulated on the fitted world holds "
        "the real true lift.",
        "",
        "## Summary",
        "",
        "| | pairs | mean abs error | sign agreement | Kendall τ | CI covers real |",
        "|---|---|---|---|---|---|",
    ]
    rows = [("overall", s["overall"])] + [(m, s["by_metric"][m]) for m in HEADLINE_METRICS]
    for name, b in rows:
        lines.append(
            f"| {name} | {b.get('pairs', 0)} | {_pct(b.get('mean_abs_error'), signed=False)} | "
            f"{_num(b.get('sign_agreement'))} | {_num(b.get('kendall_tau'))} | "
            f"{_num(b.get('ci_covers_real'))} |"
        )
    head = "| scenario | metric | mean abs error | sign agreement | Kendall τ | CI covers real |"
    lines += ["", "## Per scenario", "", head, "|---|---|---|---|---|---|"]
    for scenario, per in s["by_scenario"].items():
        for metric, b in per.items():
            lines.append(
                f"| {scenario} | {metric} | {_pct(b.get('mean_abs_error'), signed=False)} | "
                f"{_num(b.get('sign_agreement'))} | {_num(b.get('kendall_tau'))} | "
                f"{_num(b.get('ci_covers_real'))} |"
            )
    ll = f.click_log_loss
    lines += [
        "",
        "## Click model on the held-out exposures",
        "",
        f"Log-loss over {ll['exposures']:,} exposures after the pre-period: true click "
        f"probabilities {ll['true']:.4f} (the floor), fitted {ll['fitted']:.4f}, constant CTR "
        f"{ll['constant']:.4f}.",
        "",
        "## Every pair",
        "",
        "| model | seed | scenario | metric | real | fitted | fitted 95% CI |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in f.lifts:
        lo, hi = r.fitted_ci
        lines.append(
            f"| {r.model} | {r.seed} | {r.scenario} | {r.metric} | {_pct(r.real)} | "
            f"{_pct(r.fitted)} | [{_pct(lo)}, {_pct(hi)}] |"
        )
    return "\n".join(lines) + "\n"


def _plot(f: Fidelity):
    fig = _figure(5.0 * len(HEADLINE_METRICS), 4.5)
    for ax, metric in zip(fig.subplots(1, len(HEADLINE_METRICS)), HEADLINE_METRICS, strict=True):
        rows = [r for r in f.lifts if r.metric == metric and r.known]
        for model in f.models:
            pts = [r for r in rows if r.model == model]
            ax.scatter([100 * r.real for r in pts], [100 * r.fitted for r in pts], s=14,
                       label=model)  # fmt: skip
        if rows:
            lo = min(min(r.real, r.fitted) for r in rows) * 100
            hi = max(max(r.real, r.fitted) for r in rows) * 100
            ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        tau = f.summary["by_metric"][metric].get("kendall_tau")
        ax.set(title=f"{metric}: Kendall τ {_num(tau)}", xlabel="real true lift (%)",
               ylabel="fitted world's lift (%)")  # fmt: skip
        ax.legend(fontsize=7)
    return fig


def write_fidelity(folder: str | Path, f: Fidelity) -> list[Path]:
    folder = Path(folder)
    body = dataclasses.asdict(f)
    body["kendall_tau"] = f.summary["overall"].get("kendall_tau")
    body["sign_agreement"] = f.summary["overall"].get("sign_agreement")
    fig = _plot(f)
    return [
        fileio.write_text(folder / "fidelity.json", strict_json_text(body)),
        fileio.write_text(folder / "fidelity.md", markdown(f)),
        fileio.atomic_write(folder / "fidelity.png", lambda p: save_png(fig, p)),
    ]
