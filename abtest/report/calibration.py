"""What ``calibrate`` writes beside a fitted world: its held-out diagnostics.

``diagnostics.json`` (strict JSON: the click model's held-out log-loss against a constant
CTR, on the later logs and on their uniform slice, with 10-bin calibration curves; watch-time
and session-length quantiles fitted vs logged; fit settings, rows and seconds) and
``diagnostics.png`` (the calibration curves and the quantile-quantile plots).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from abtest.report.format import strict_json_text
from abtest.report.plots import _figure, save_png
from core import fileio


def write_diagnostics(folder: str | Path, diagnostics: dict[str, Any]) -> list[Path]:
    """Write ``diagnostics.json`` and ``diagnostics.png`` into `folder` (atomically)."""
    folder = Path(folder)
    paths = [fileio.write_text(folder / "diagnostics.json", strict_json_text(diagnostics))]
    fig = _plot(diagnostics)
    paths.append(fileio.atomic_write(folder / "diagnostics.png", lambda p: save_png(fig, p)))
    return paths


def _plot(diag: dict[str, Any]):
    fig = _figure(12, 3.8)
    ax_cal, ax_watch, ax_sess = fig.subplots(1, 3)
    click = diag.get("click") or {}
    for key, label, style in (
        ("held_out", "later logs", "o-"),
        ("uniform", "uniform slice", "s--"),
    ):
        block = click.get(key)
        if not block or not block.get("calibration"):
            continue
        pts = block["calibration"]
        ax_cal.plot([p["predicted"] for p in pts], [p["observed"] for p in pts], style,
                    label=f"{label} (log-loss {block['log_loss']:.4f} vs "
                    f"{block['log_loss_constant']:.4f} constant)")  # fmt: skip
    lim = ax_cal.get_xlim()[1] if ax_cal.lines else 1.0
    ax_cal.plot([0, lim], [0, lim], color="grey", lw=0.8)
    ax_cal.set(title="click model: calibration (held out)", xlabel="predicted P(click)",
               ylabel="observed click rate")  # fmt: skip
    if ax_cal.lines[:-1]:
        ax_cal.legend(fontsize=7)
    _qq(ax_watch, diag.get("watch_time") or {}, ("feed_clicked", "immersive"), "watch time (s)")
    _qq(ax_sess, diag.get("session_length") or {}, ("pages",), "session length (pages)")
    return fig


def _qq(ax, block: dict[str, Any], keys: tuple[str, ...], what: str) -> None:
    drawn = False
    for key in keys:
        part = block.get(key) if key != "pages" else block
        if not isinstance(part, dict) or not part.get("logged") or not part.get("fitted"):
            continue
        ax.plot(part["logged"], part["fitted"], "o-", ms=3, label=key)
        drawn = True
    if drawn:
        lo, hi = ax.get_xlim()
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8)
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, block.get("note", "no data"), ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    ax.set(title=f"{what}: fitted vs logged quantiles", xlabel="logged", ylabel="fitted")
