"""What the validity studies show: the console text, the JSON document (``aa.json``,
``coverage.json``, ``power.json``) and the A/A p-value plot of each study of
:mod:`abtest.online.validity`.

Each ``write_*`` replaces its study's files in the output folder together (a staging folder
swapped in, :mod:`abtest.report.outdir`); the other files there, e.g. another study's, stay.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from abtest.online.analysis import HEADLINE_METRICS, METRICS
from abtest.online.validity import PowerTable, StudyResult, binomial_band
from abtest.report.outdir import replacing

AA_FILES = ("aa.json", "aa_qq.png")
COVERAGE_FILES = ("coverage.json",)
POWER_FILES = ("power.json",)


def _json_text(obj: dict) -> str:
    # NaN is written as NaN (not null), as these files always were
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


def rate_table(rate: dict[str, dict[str, float]], title: str, band: tuple[float, float]) -> str:
    """Rates per scenario × metric, "!" where one is outside `band`."""
    lines = [title, f"{'scenario':<18}" + "".join(f"{m:>22}" for m in METRICS)]
    for name, per in rate.items():
        cells = []
        for m in METRICS:
            v = per.get(m, float("nan"))
            mark = "" if v != v or band[0] <= v <= band[1] else " !"
            cells.append(f"{v:>20.3f}{mark:2}")
        lines.append(f"{name:<18}" + "".join(cells))
    lines.append(f"('!' = outside the 3-sd binomial band [{band[0]:.3f}, {band[1]:.3f}])")
    return "\n".join(lines)


# --------------------------------------------------------------------------- A/A


def _aa_band(res: StudyResult) -> tuple[float, float]:
    return binomial_band(res.alpha, res.runs)


def aa_text(res: StudyResult, model: str) -> str:
    """The false-positive rates and the uniformity test of the p-values."""
    title = (
        f"A/A false-positive rate over {res.runs} re-randomisations "
        f"(alpha {res.alpha}, model {model})"
    )
    return (
        rate_table(res.rate, title, _aa_band(res))
        + f"\np-values uniform? Kolmogorov-Smirnov p = {res.ks_pvalue:.3g}"
    )


def aa_json(res: StudyResult, model: str) -> dict:
    return {
        "runs": res.runs,
        "alpha": res.alpha,
        "model": model,
        "false_positive_rate": res.rate,
        "ks_pvalue": res.ks_pvalue,
        "band": list(_aa_band(res)),
        "p_values": res.p_values,
    }


def qq_plot(p_values: dict[str, dict[str, list[float]]], path: Path) -> None:
    """The pooled A/A p-values against the uniform distribution's quantiles."""
    pooled = np.sort([p for per in p_values.values() for ps in per.values() for p in ps
                      if p == p])  # fmt: skip
    fig = Figure(figsize=(4.5, 4.5), dpi=110)
    ax = fig.add_subplot()
    expected = (np.arange(1, pooled.size + 1) - 0.5) / max(pooled.size, 1)
    ax.plot(expected, pooled, ".", ms=2)
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.set_xlabel("uniform quantile")
    ax.set_ylabel("A/A p-value quantile")
    ax.set_title("A/A p-values against uniform")
    fig.savefig(path, format="png", metadata={"Software": None})


def write_aa(res: StudyResult, model: str, out: Path) -> str:
    """Write aa.json and aa_qq.png into `out`; returns the line that says so."""
    with replacing(out, AA_FILES) as stage:
        (stage / "aa.json").write_text(_json_text(aa_json(res, model)), encoding="utf-8")
        qq_plot(res.p_values, stage / "aa_qq.png")
    return f"wrote {out}/aa.json and aa_qq.png"


# --------------------------------------------------------------------------- coverage


def _coverage_band(res: StudyResult) -> tuple[float, float]:
    return binomial_band(1 - res.alpha, res.runs)


def coverage_text(res: StudyResult, treatment: str, control: str) -> str:
    title = (
        f"Coverage of the true lift by the {1 - res.alpha:.0%} CI over "
        f"{res.runs} re-randomisations ({treatment} vs {control})"
    )
    return rate_table(res.rate, title, _coverage_band(res))


def coverage_json(res: StudyResult, treatment: str, control: str) -> dict:
    return {
        "runs": res.runs,
        "alpha": res.alpha,
        "treatment": treatment,
        "control": control,
        "coverage": res.rate,
        "true_lift": res.true_lift,
        "band": list(_coverage_band(res)),
    }


def write_coverage(res: StudyResult, treatment: str, control: str, out: Path) -> str:
    """Write coverage.json into `out`; returns the line that says so."""
    with replacing(out, COVERAGE_FILES) as stage:
        text = _json_text(coverage_json(res, treatment, control))
        (stage / "coverage.json").write_text(text, encoding="utf-8")
    return f"wrote {out}/coverage.json"


# --------------------------------------------------------------------------- power


def power_text(table: PowerTable, alpha: float, allocation: dict[str, float]) -> str:
    """The headline metrics' MDE by day per scenario, and the days needed for the lift."""
    lines = [
        f"MDE (80% power, alpha {alpha}) by day, allocation {allocation}; days needed for a "
        f"{table.lift:+.1%} lift"
    ]
    for name, per in table.scenarios.items():
        for m in HEADLINE_METRICS:
            path = per[m]
            mdes = " ".join("   —  " if v is None else f"{v:6.1%}" for v in path.mde_by_day)
            how = " (extrapolated)" if path.extrapolated else ""
            lines.append(
                f"  {name:<18} {m:<20} {mdes}   days needed: {path.days_needed or '—'}{how}"
            )
    return "\n".join(lines)


def power_json(table: PowerTable) -> dict:
    return {
        "lift": table.lift,
        "days_simulated": table.days_simulated,
        "scenarios": {
            name: {
                m: {
                    "mde_by_day": list(path.mde_by_day),
                    "days_needed": path.days_needed,
                    "decay": path.decay,
                    "extrapolated": path.extrapolated,
                }
                for m, path in per.items()
            }
            for name, per in table.scenarios.items()
        },
    }


def write_power(table: PowerTable, out: Path) -> str:
    """Write power.json into `out`; returns the line that says so."""
    with replacing(out, POWER_FILES) as stage:
        (stage / "power.json").write_text(_json_text(power_json(table)), encoding="utf-8")
    return f"wrote {out}/power.json"
