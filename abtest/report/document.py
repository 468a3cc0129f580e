"""Render a run folder from a results dict: results.json, lift.csv, report.md/html and plots.

The results dict is the one contract between an experiment run and its report (other tools
read ``results.json`` too). Any number in it may be ``None`` (unknown or NaN); it renders as
"—". Only ``treatment``, ``control``, ``seed``, ``days``, ``srm``, ``scenarios`` and
``overall`` are required; every other section is drawn when it is there.

Every file of a report is written to a temporary name first and all of them are renamed
into place only after the last one rendered, so a failing re-render leaves the previous
report whole.

- :func:`write_report`: write every file of a run folder; returns name → path.
- :func:`render_run`: re-render a run folder from its ``results.json``.
- :func:`format_table`: the console summary printed at the end of a run.
- :func:`markdown`: the text of ``report.md``.
"""

from __future__ import annotations

import contextlib
import csv
import html
import json
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import NullLocator, PercentFormatter

from core.errors import UserError
from core.fileio import atomic_path

REQUIRED_KEYS = ("treatment", "control", "seed", "days", "srm", "scenarios", "overall")
HEADLINE_METRICS = ("ctr", "watch_time_per_user")
METRIC_ORDER = ("ctr", "watch_time_per_user", "clicks_per_user", "sessions_per_user")
CSV_FIELDS = (
    "scenario", "traffic", "metric", "control", "treatment", "lift", "ci_low", "ci_high",
    "p_value", "p_adjusted", "significant", "true_lift", "true_in_ci", "mde", "cuped",
)  # fmt: skip
PLOT_FILES = ("forest.png", "cumulative.png", "pvalues.png", "watch_time.png", "mde.png")
SRM_WARNING = "sample ratio mismatch: do not trust these results"
DASH = "—"
DPI = 110
HIGH_COLOUR, LOW_COLOUR, OVERALL_COLOUR = "tab:blue", "tab:orange", "black"
TRUTH_COLOUR = "crimson"
P_FLOOR = 1e-8  # p-values below this are drawn at it
RC = {"svg.hashsalt": "abtest-report", "font.size": 9, "axes.titlesize": 9}


# --------------------------------------------------------------------------- input


def _validate(results: Any, source: str = "results") -> dict:
    if not isinstance(results, Mapping):
        raise UserError(f"{source}: must be a JSON object, got {type(results).__name__}")
    for key in REQUIRED_KEYS:
        if key not in results:
            raise UserError(f"{source} is missing required key '{key}'")
    for key in ("srm", "overall"):
        if not isinstance(results[key], Mapping):
            raise UserError(f"{source}: '{key}' must be an object")
    scenarios = results["scenarios"]
    if not isinstance(scenarios, Mapping) or not scenarios:
        raise UserError(f"{source}: 'scenarios' must be a non-empty object")
    for name, scenario in [*scenarios.items(), ("overall", results["overall"])]:
        where = "overall" if name == "overall" else f"scenarios.{name}"
        if not isinstance(scenario, Mapping) or not isinstance(scenario.get("metrics"), Mapping):
            raise UserError(f"{source}: '{where}' is missing required key 'metrics'")
        for metric, values in scenario["metrics"].items():
            if not isinstance(values, Mapping):
                raise UserError(f"{source}: '{where}.metrics.{metric}' must be an object")
    return dict(results)


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN/inf → None, numpy scalars and arrays → Python values."""
    if isinstance(obj, Mapping):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return _clean(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    return obj


def _num(x: Any) -> float | None:
    """A finite number, or None for null, NaN, inf, booleans and anything non-numeric."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _series(values: Any, n: int) -> np.ndarray:
    """The first `n` entries of a list as floats, None and missing entries as NaN."""
    values = list(values) if isinstance(values, (list, tuple)) else []
    out = [_num(v) for v in values[:n]] + [None] * max(0, n - len(values))
    return np.array([np.nan if v is None else v for v in out], dtype=float)


def _is_low(scenario: Mapping) -> bool:
    return scenario.get("traffic") == "low"


def _scenario_names(results: Mapping) -> list[str]:
    """High-traffic scenarios first, then low, each group in the order given."""
    scenarios = results["scenarios"]
    return sorted(scenarios, key=lambda name: _is_low(scenarios[name]))


def _metric_names(results: Mapping) -> list[str]:
    seen: list[str] = []
    for scenario in [*results["scenarios"].values(), results["overall"]]:
        seen += [m for m in scenario["metrics"] if m not in seen]
    return [m for m in METRIC_ORDER if m in seen] + [m for m in seen if m not in METRIC_ORDER]


def _rows(results: Mapping) -> list[tuple[str, Mapping]]:
    """(name, scenario) for every scenario in display order, then "overall"."""
    scenarios = results["scenarios"]
    return [(n, scenarios[n]) for n in _scenario_names(results)] + [("overall", results["overall"])]


def _metric(scenario: Mapping, metric: str) -> Mapping:
    metrics = scenario.get("metrics")
    values = metrics.get(metric) if isinstance(metrics, Mapping) else None
    return values if isinstance(values, Mapping) else {}


def _has_truth(results: Mapping) -> bool:
    return any(
        _num(_metric(s, m).get("true_lift")) is not None
        for _, s in _rows(results)
        for m in _metric_names(results)
    )


def _level(results: Mapping) -> str:
    alpha = _num(results.get("alpha"))
    alpha = alpha if alpha is not None and 0 < alpha < 1 else 0.05
    return f"{(1 - alpha) * 100:g}%"


def _alpha(results: Mapping) -> float:
    alpha = _num(results.get("alpha"))
    return alpha if alpha is not None and 0 < alpha < 1 else 0.05


# --------------------------------------------------------------------------- formatting


def _pct(x: Any, signed: bool = True) -> str:
    x = _num(x)
    if x is None:
        return DASH
    x *= 100
    digits = 2 if 0 < abs(x) < 0.1 else 1
    return f"{x:+.{digits}f}%" if signed else f"{x:.{digits}f}%"


def _ci(m: Mapping) -> str:
    lo, hi = _num(m.get("ci_low")), _num(m.get("ci_high"))
    return DASH if lo is None or hi is None else f"[{_pct(lo)}, {_pct(hi)}]"


def _lift_ci(m: Mapping, marker: bool = False) -> str:
    lift, ci = _pct(m.get("lift")), _ci(m)
    text = DASH if lift == ci == DASH else f"{lift} {ci}"
    return text + (" *" if marker and m.get("significant") is True else "")


def _p(x: Any) -> str:
    x = _num(x)
    if x is None:
        return DASH
    return f"{x:.1e}" if x < 1e-3 else f"{x:.3f}"


def _value(x: Any) -> str:
    x = _num(x)
    return DASH if x is None else f"{x:.4g}"


def _fixed(x: Any) -> str:
    x = _num(x)
    return DASH if x is None else f"{x:.1f}"


def _int(x: Any) -> str:
    x = _num(x)
    return DASH if x is None else f"{round(x):,}"


def _yes(x: Any) -> str:
    return {True: "yes", False: "no"}.get(x, DASH) if isinstance(x, bool) else DASH


def _users(scenario: Mapping) -> str:
    users = scenario.get("users")
    if not isinstance(users, Mapping):
        return DASH
    return f"{_int(users.get('control'))} / {_int(users.get('treatment'))}"


def _label(name: str, scenario: Mapping) -> str:
    return f"{name} (low traffic)" if _is_low(scenario) else name


def srm_line(results: Mapping) -> str:
    """One line on the sample-ratio check, with the warning when it is flagged."""
    srm = results["srm"]
    users = srm.get("users") if isinstance(srm.get("users"), Mapping) else {}
    expected = srm.get("expected") if isinstance(srm.get("expected"), Mapping) else {}
    stat = _num(srm.get("statistic"))
    text = (
        f"SRM: chi² = {DASH if stat is None else f'{stat:.2f}'}, p = {_p(srm.get('p_value'))}; "
        f"users control {_int(users.get('control'))} / treatment {_int(users.get('treatment'))}"
    )
    if expected:
        text += (
            f" (expected {_pct(expected.get('control'), signed=False)} / "
            f"{_pct(expected.get('treatment'), signed=False)})"
        )
    if srm.get("flagged") is True:
        return f"{text} — FLAGGED: {SRM_WARNING}"
    return text + (" — OK" if srm.get("flagged") is False else " — not checked")


def _align(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def format_table(results: dict) -> str:
    """The console summary: one line per scenario (high traffic first) and the SRM line."""
    results = _validate(results)
    truth = _has_truth(results)
    level = _level(results)
    header = ["scenario"]
    for metric in HEADLINE_METRICS:
        header += [f"{metric} lift [{level} CI]", "p_adj"] + (["true"] if truth else [])
    table = [header]
    for name, scenario in _rows(results):
        row = [name + (" (low)" if _is_low(scenario) else "")]
        for metric in HEADLINE_METRICS:
            m = _metric(scenario, metric)
            row += [_lift_ci(m, marker=True), _p(m.get("p_adjusted"))]
            row += [_pct(m.get("true_lift"))] if truth else []
        table.append(row)
    correction = results.get("correction") or "no"
    title = (
        f"{results['treatment']} (treatment) vs {results['control']} (control), "
        f"seed {results['seed']}, {results['days']} days; p_adj: {correction} correction; "
        f"* significant at alpha = {_alpha(results):g}"
    )
    lines = _align(table)
    rule = "-" * max(len(line) for line in lines)
    return "\n".join([title, lines[0], rule, *lines[1:], rule, srm_line(results)]) + "\n"


# --------------------------------------------------------------------------- document

# A document is a list of blocks rendered both to Markdown and to HTML, so the two never drift:
# ("h1"|"h2"|"p"|"warn"|"code", text), ("table", header, rows), ("img", file, caption).
Block = tuple


def _plan(results: Mapping) -> dict[str, Callable[[Mapping], Figure]]:
    """The plots this results dict has data for: file name → plotting function."""
    plots: dict[str, Callable[[Mapping], Figure]] = {"forest.png": _plot_forest}
    if isinstance(results.get("daily"), Mapping) and results["daily"]:
        plots["cumulative.png"] = _plot_cumulative
        plots["pvalues.png"] = _plot_pvalues
    if isinstance(results.get("distributions"), Mapping) and results["distributions"]:
        plots["watch_time.png"] = _plot_watch_time
    plots["mde.png"] = _plot_mde
    return plots


PLOT_CAPTIONS = {
    "forest.png": "Relative lift with confidence interval per scenario",
    "cumulative.png": "Cumulative lift with confidence band by day",
    "pvalues.png": "p-value paths by day: naive vs always-valid",
    "watch_time.png": "Per-user watch-time distribution per arm",
    "mde.png": "Minimum detectable effect vs |observed lift|",
}


def _blocks(results: Mapping, plots: Iterable[str]) -> list[Block]:
    level, truth = _level(results), _has_truth(results)
    treatment, control = results["treatment"], results["control"]
    out: list[Block] = [("h1", f"A/B test: {treatment} vs {control}")]
    facts = [
        f"treatment {treatment}",
        f"control {control}",
        f"seed {results['seed']}",
        f"{results['days']} days",
        f"alpha {_alpha(results):g}",
        f"p-value correction {results.get('correction') or 'none'}",
        f"CUPED {_yes(results.get('cuped'))}",
        f"synthetic world {_yes(results.get('synthetic'))}",
    ]
    if results.get("created"):
        facts.append(f"created {results['created']}")
    out.append(("p", "; ".join(facts) + "."))

    out.append(("h2", "Sample ratio"))
    out.append(("p", srm_line(results)))
    if results["srm"].get("flagged") is True:
        out.append(("warn", f"Warning: {SRM_WARNING}."))

    out.append(("h2", "Headline"))
    header = ["scenario", "traffic", "users (C / T)"]
    for metric in HEADLINE_METRICS:
        header += [f"{metric} lift [{level} CI]", "p_adj"]
    rows = []
    for name, scenario in _rows(results):
        row = [_label(name, scenario), str(scenario.get("traffic") or DASH), _users(scenario)]
        for metric in HEADLINE_METRICS:
            m = _metric(scenario, metric)
            row += [_lift_ci(m, marker=True), _p(m.get("p_adjusted"))]
        rows.append(row)
    out.append(("table", header, rows))
    out.append(
        (
            "p",
            f"Lifts marked with an asterisk are significant at alpha {_alpha(results):g} "
            f"after {results.get('correction') or 'no'} correction.",
        )
    )

    out.append(("h2", "All metrics"))
    header = ["scenario", "metric", "control", "treatment", f"lift [{level} CI]", "p", "p_adj"]
    boot = any(
        "bootstrap_ci" in s["metrics"].get(m, {})
        for _, s in _rows(results)
        for m in _metric_names(results)
        if isinstance(s.get("metrics"), Mapping)
    )
    header += ["significant"] + (["true lift"] if truth else []) + ["MDE", "CUPED"]
    header += ["bootstrap CI (no CUPED)"] if boot else []
    rows = []
    for name, scenario in _rows(results):
        for metric in _metric_names(results):
            if metric not in scenario["metrics"]:
                continue
            m = _metric(scenario, metric)
            row = [_label(name, scenario), metric, _value(m.get("control"))]
            row += [_value(m.get("treatment")), _lift_ci(m), _p(m.get("p_value"))]
            row += [_p(m.get("p_adjusted")), _yes(m.get("significant"))]
            row += [_pct(m.get("true_lift"))] if truth else []
            row += [_pct(m.get("mde"), signed=False), _yes(m.get("cuped"))]
            if boot:
                b = m.get("bootstrap_ci") or [None, None]
                row += [f"[{_pct(b[0])}, {_pct(b[1])}]"]
            rows.append(row)
    out.append(("table", header, rows))
    if results.get("synthetic") is True:
        flags = [
            _metric(s, m).get("true_in_ci")
            for _, s in _rows(results)[:-1]
            for m in _metric_names(results)
        ]
        known = [f for f in flags if isinstance(f, bool)]
        if known:
            out.append(
                (
                    "p",
                    f"True lift inside the {level} CI for {sum(known)} of {len(known)} "
                    f"scenario × metric pairs (about {level} expected).",
                )
            )
        else:
            out.append(("p", "Synthetic world, but no true lift was recorded."))

    segments = results.get("segments")
    if isinstance(segments, Mapping) and segments:
        out.append(("h2", "Segments"))
        header = ["segment", "scenario", "users (C / T)"]
        for metric in HEADLINE_METRICS:
            header += [f"{metric} lift [{level} CI]", "p_adj"]
        rows = []
        for seg_name, segment in segments.items():
            if not isinstance(segment, Mapping):
                continue
            per = segment.get("scenarios") if isinstance(segment.get("scenarios"), Mapping) else {}
            names = [n for n in _scenario_names(results) if n in per]
            names += [n for n in per if n not in names]
            entries = [(n, per[n]) for n in names]
            if isinstance(segment.get("overall"), Mapping):
                entries.append(("overall", segment["overall"]))
            for name, scenario in entries:
                if not isinstance(scenario, Mapping):
                    continue
                sc = results["scenarios"].get(name, {})
                row = [str(seg_name), _label(name, sc if isinstance(sc, Mapping) else {})]
                row.append(_users(scenario))
                for metric in HEADLINE_METRICS:
                    m = _metric(scenario, metric)
                    row += [_lift_ci(m, marker=True), _p(m.get("p_adjusted"))]
                rows.append(row)
        out.append(("table", header, rows))

    serving = results.get("serving")
    if isinstance(serving, Mapping) and serving:
        out.append(("h2", "Serving"))
        rps = _num(serving.get("requests_per_second"))
        wall = _num(serving.get("wall_seconds"))
        out.append(
            (
                "p",
                f"{_int(serving.get('requests'))} requests in "
                f"{DASH if wall is None else f'{wall:.1f}'} s "
                f"({DASH if rps is None else f'{rps:,.0f}'} requests/s).",
            )
        )
        latency = serving.get("latency")
        if isinstance(latency, Mapping) and latency:
            arms = [a for a in latency if isinstance(latency[a], Mapping)]
            keys: list[str] = []
            for arm in arms:
                keys += [k for k in latency[arm] if k not in keys]
            header = ["arm", *(k.removesuffix("_ms") + (" (ms)" if k.endswith("_ms") else "")
                               for k in keys)]  # fmt: skip
            rows = [[arm, *(_fixed(latency[arm].get(k)) for k in keys)] for arm in arms]
            out.append(("table", header, rows))

    plots = list(plots)
    if plots:
        out.append(("h2", "Plots"))
        out += [("img", name, PLOT_CAPTIONS.get(name, name)) for name in plots]

    out.append(("h2", "Reproduction"))
    if results.get("command"):
        command = results["command"]
        if isinstance(command, (list, tuple)):
            command = " ".join(str(c) for c in command)
        out.append(("code", str(command)))
    facts = [f"seed {results['seed']}"]
    if results.get("config_fingerprint"):
        facts.append(f"config fingerprint {results['config_fingerprint']}")
    facts.append("the full config is in results.json")
    out.append(("p", "; ".join(facts) + "."))
    checkpoints = results.get("checkpoints")
    if isinstance(checkpoints, Mapping) and checkpoints:
        rows = [
            [str(name), str(c.get("path") or DASH), str(c.get("sha256") or DASH)]
            for name, c in checkpoints.items()
            if isinstance(c, Mapping)
        ]
        out.append(("table", ["model", "checkpoint", "sha256"], rows))
    return out


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _to_markdown(blocks: list[Block]) -> str:
    parts = []
    for block in blocks:
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


def _to_html(blocks: list[Block], title: str) -> str:
    esc = html.escape
    body = []
    for block in blocks:
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


def markdown(results: dict) -> str:
    """The text of report.md (plots embedded as relative links)."""
    results = _validate(results)
    return _to_markdown(_blocks(results, _plan(results)))


def _csv_value(x: Any) -> str:
    if isinstance(x, bool):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = _num(x)
    return "" if x is None else repr(x)


def _write_csv(results: Mapping, path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(CSV_FIELDS)
        for name, scenario in _rows(results):
            traffic = "all" if name == "overall" else str(scenario.get("traffic") or "")
            for metric in _metric_names(results):
                if metric not in scenario["metrics"]:
                    continue
                m = _metric(scenario, metric)
                values = [_csv_value(m.get(field)) for field in CSV_FIELDS[3:]]
                writer.writerow([name, traffic, metric, *values])


# --------------------------------------------------------------------------- plots


def _figure(width: float, height: float) -> Figure:
    # A bare Figure (no pyplot) renders with Agg, keeps no global state and needs no closing,
    # so plotting never touches the caller's backend and is safe in worker threads.
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _colour(name: str, scenario: Mapping) -> str:
    if name == "overall":
        return OVERALL_COLOUR
    return LOW_COLOUR if _is_low(scenario) else HIGH_COLOUR


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


def _plot_forest(results: Mapping) -> Figure:
    rows = _rows(results)
    level = _level(results)
    fig = _figure(10, 1.2 + 0.45 * len(rows))
    axes = fig.subplots(1, len(HEADLINE_METRICS), sharey=True, squeeze=False)[0]
    ys = np.arange(len(rows))[::-1]
    truth = False
    for ax, metric in zip(axes, HEADLINE_METRICS, strict=True):
        for y, (name, scenario) in zip(ys, rows, strict=True):
            m = _metric(scenario, metric)
            colour, sig = _colour(name, scenario), m.get("significant") is True
            lift, lo, hi = (_num(m.get(k)) for k in ("lift", "ci_low", "ci_high"))
            if lo is not None and hi is not None:
                ax.hlines(y, lo * 100, hi * 100, color=colour, lw=2.6 if sig else 1.2)
            if lift is not None:
                ax.plot(lift * 100, y, "o", color=colour, ms=7, mfc=colour if sig else "white")
            true = _num(m.get("true_lift"))
            if true is not None:
                truth = True
                ax.plot(true * 100, y, "x", color=TRUTH_COLOUR, ms=8, mew=2)
        ax.axvline(0, color="grey", lw=0.8, ls="--")
        ax.xaxis.set_major_formatter(PercentFormatter(xmax=100))
        ax.set_title(metric)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(ys, [_label(n, s) for n, s in rows])
    for tick, (name, scenario) in zip(axes[0].get_yticklabels(), rows, strict=True):
        tick.set_color(_colour(name, scenario))
    axes[-1].legend(handles=_traffic_legend(truth), loc="best", fontsize=7)
    fig.suptitle(f"Relative lift with {level} CI per scenario (filled, thick = significant)")
    return fig


def _daily_grid(results: Mapping) -> tuple[list[str], list[str]]:
    daily = results["daily"]
    names = [n for n in _scenario_names(results) if n in daily]
    names += [n for n in daily if n not in names and n != "overall"]
    names += ["overall"] if "overall" in daily else []
    present = {m for n in names if isinstance(daily[n], Mapping) for m in daily[n]}
    metrics = [m for m in ("watch_time_per_user", "ctr") if m in present]
    return names, metrics


def _daily(results: Mapping, name: str, metric: str) -> tuple[np.ndarray, Mapping] | None:
    series = results["daily"].get(name)
    series = series.get(metric) if isinstance(series, Mapping) else None
    if not isinstance(series, Mapping) or not isinstance(series.get("day"), list):
        return None
    day = _series(series["day"], len(series["day"]))
    return day, series


def _truth_of(results: Mapping, name: str, metric: str) -> float | None:
    scenario = results["overall"] if name == "overall" else results["scenarios"].get(name, {})
    return _num(_metric(scenario, metric).get("true_lift")) if scenario else None


def _empty(ax: Any, text: str = "no data") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")


def _small_multiples(
    results: Mapping, draw: Callable[..., None], ylabel: str, sharey: bool | str = False
) -> Figure:
    names, metrics = _daily_grid(results)
    metrics = metrics or list(HEADLINE_METRICS)
    nrows, ncols = len(metrics), max(1, len(names))
    fig = _figure(2.4 * ncols + 0.6, 2.3 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=sharey)
    for r, metric in enumerate(metrics):
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(names):
                _empty(ax)
                continue
            name = names[c]
            found = _daily(results, name, metric)
            if found is None:
                _empty(ax)
            else:
                draw(ax, name, metric, *found)
            if r == 0:
                sc = results["scenarios"].get(name, {})
                label = _label(name, sc) if isinstance(sc, Mapping) else name
                ax.set_title(label, color=_colour(name, sc if isinstance(sc, Mapping) else {}))
            if c == 0:
                ax.set_ylabel(f"{metric}\n{ylabel}")
            if r == nrows - 1:
                ax.set_xlabel("day")
    return fig


def _plot_cumulative(results: Mapping) -> Figure:
    def draw(ax: Any, name: str, metric: str, day: np.ndarray, s: Mapping) -> None:
        n = len(day)
        lift = _series(s.get("lift"), n) * 100
        lo, hi = _series(s.get("ci_low"), n) * 100, _series(s.get("ci_high"), n) * 100
        sc = results["scenarios"].get(name, {})
        colour = _colour(name, sc if isinstance(sc, Mapping) else {})
        ax.fill_between(day, lo, hi, color=colour, alpha=0.2, lw=0)
        ax.plot(day, lift, "-o", color=colour, ms=3)
        ax.axhline(0, color="grey", lw=0.8, ls="--")
        true = _truth_of(results, name, metric)
        if true is not None:
            ax.axhline(true * 100, color=TRUTH_COLOUR, lw=1, ls=":", label="true lift")
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=100))

    fig = _small_multiples(results, draw, "cumulative lift")
    fig.suptitle(f"Cumulative lift with {_level(results)} CI band by day")
    return fig


def _plot_pvalues(results: Mapping) -> Figure:
    alpha = _alpha(results)
    names, metrics = _daily_grid(results)
    found = [_daily(results, n, m) for n in names for m in metrics]
    ps = [_series(s.get(k), len(day)) for day, s in filter(None, found)
          for k in ("p_naive", "p_always_valid")]  # fmt: skip
    ps = np.concatenate([*ps, [alpha]])
    low = max(P_FLOOR, float(np.nanmin(ps[ps > 0], initial=alpha))) / 3

    def draw(ax: Any, name: str, metric: str, day: np.ndarray, s: Mapping) -> None:
        n = len(day)
        naive, valid = _series(s.get("p_naive"), n), _series(s.get("p_always_valid"), n)
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

    fig = _small_multiples(results, draw, "p-value", sharey=True)
    fig.suptitle("p-value paths by day: naive (peeking) vs always-valid (mSPRT)")
    return fig


def _plot_watch_time(results: Mapping) -> Figure:
    dists = results["distributions"]
    names = [n for n in _scenario_names(results) if n in dists]
    names += [n for n in dists if n not in names and n != "overall"]
    names += ["overall"] if "overall" in dists else []
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig = _figure(3.4 * ncols, 2.6 * nrows + 0.4)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    arms = (
        ("control", f"control ({results['control']})", "tab:grey"),
        ("treatment", f"treatment ({results['treatment']})", "tab:green"),
    )
    for ax, name in zip(axes, names, strict=False):
        d = dists[name] if isinstance(dists[name], Mapping) else {}
        raw = d.get("edges")
        edges = _series(raw, len(raw) if isinstance(raw, list) else 0)
        sc = results["scenarios"].get(name, {})
        sc = sc if isinstance(sc, Mapping) else {}
        ax.set_title(_label(name, sc), color=_colour(name, sc))
        ax.set_xlabel("watch time per user (s)")
        ax.set_ylabel("share of users")
        drawn = False
        for key, label, colour in arms:
            counts = _series(d.get(key), max(0, len(edges) - 1))
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


def _plot_mde(results: Mapping) -> Figure:
    rows, metrics = _rows(results), _metric_names(results)
    ncols = min(2, len(metrics)) or 1
    nrows = max(1, math.ceil(len(metrics) / ncols))
    fig = _figure(5.2 * ncols, 3.2 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    x = np.arange(len(rows))
    for ax, metric in zip(axes, metrics, strict=False):
        for i, (name, scenario) in enumerate(rows):
            m = _metric(scenario, metric)
            colour = _colour(name, scenario)
            mde, lift = _num(m.get("mde")), _num(m.get("lift"))
            if mde is not None:
                ax.bar(i, mde * 100, color=colour, alpha=0.35, width=0.7)
            if lift is not None:
                sig = m.get("significant") is True
                ax.plot(i, abs(lift) * 100, "D", color=colour, mfc=colour if sig else "white")
        ax.set_xticks(x, [_label(n, s) for n, s in rows], rotation=30, ha="right")
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=100))
        ax.set_title(metric)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes[len(metrics) :]:
        ax.set_visible(False)
    fig.suptitle("MDE per scenario (bars) vs |observed lift| (◆, filled = significant)")
    return fig


def _save_png(fig: Figure, path: Path) -> None:
    with matplotlib.rc_context(RC):
        # No "Software" entry: the bytes then depend only on the results, not the version.
        fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})


# --------------------------------------------------------------------------- writing


def write_report(results: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write results.json, lift.csv, report.md, report.html and the plots into `out_dir`.

    Everything is rendered to temporary files first and renamed into place only when all of
    them succeeded, so an error leaves an existing report in `out_dir` as it was.
    """
    results = _clean(_validate(results))
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"report folder {out_dir} is a file, not a folder")
    plots = _plan(results)
    blocks = _blocks(results, plots)
    title = f"A/B test: {results['treatment']} vs {results['control']}"
    texts = {
        "results.json": json.dumps(results, indent=2, sort_keys=False, allow_nan=False) + "\n",
        "report.md": _to_markdown(blocks),
        "report.html": _to_html(blocks, title),
    }
    paths = {name: out_dir / name for name in [*texts, "lift.csv", *plots]}
    with contextlib.ExitStack() as stack:
        # Each atomic_path renames its temp file when the stack unwinds without an error.
        tmp = {name: stack.enter_context(atomic_path(path)) for name, path in paths.items()}
        for name, text in texts.items():
            tmp[name].write_text(text, encoding="utf-8")
        _write_csv(results, tmp["lift.csv"])
        for name, plot in plots.items():
            _save_png(plot(results), tmp[name])
    for stale in set(PLOT_FILES) - set(plots):
        # A plot a previous render drew from data this results dict no longer has.
        with contextlib.suppress(FileNotFoundError):
            (out_dir / stale).unlink()
    return paths


def _read_results(run_dir: Path) -> dict:
    if not run_dir.exists():
        raise UserError(f"run folder {run_dir} does not exist")
    if not run_dir.is_dir():
        raise UserError(f"run folder {run_dir} is not a folder")
    path = run_dir / "results.json"
    if not path.is_file():
        raise UserError(f"{run_dir} has no results.json: not a run folder")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    return _validate(results, source=str(path))


def render_run(run_dir: str | Path) -> dict[str, Path]:
    """Re-render every file of a run folder from its results.json."""
    run_dir = Path(run_dir)
    return write_report(_read_results(run_dir), run_dir)
