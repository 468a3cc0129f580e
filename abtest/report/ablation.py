"""What the SASS ablations show (:mod:`abtest.zoo_studies.ablation`): ``ablation.json``
(every variant's scores and paired difference to the full model, strict JSON) and
``ablation.md`` (a paper-style table per metric: variants × scenarios, and which removals
clearly cost SASS its gain).

:func:`write_ablation` replaces both files together (:mod:`abtest.report.outdir`); the other
files of the folder stay.
"""

from __future__ import annotations

from pathlib import Path

from abtest.report.format import (
    ABOVE,
    BELOW,
    CLEAR_RULE,
    DASH,
    difference,
    mean_se,
    strict_json_text,
)
from abtest.report.outdir import replacing
from abtest.zoo_studies.ablation import FULL, Ablation, AblationRow
from abtest.zoo_studies.scoring import STUDY_METRICS

ABLATION_FILES = ("ablation.json", "ablation.md")


def is_full(row: AblationRow) -> bool:
    return row.variant.label == FULL


def is_reference(row: AblationRow) -> bool:
    """A row shown for reference (another model, e.g. mixed), not a removal from SASS: the
    variants say so in their description ("reference: ...")."""
    return row.variant.about.startswith("reference")


def scenario_label(a: Ablation, scenario: str) -> str:
    """The column label of a scenario, as the offline table's: "name (5%, low)"."""
    share = a.traffic[scenario]
    return f"{scenario} ({share:.0%}{', low' if share <= 0.05 else ''})"


def ablation_json(a: Ablation) -> dict:
    """The ablation as a JSON document (NaN is written as null by :func:`write_ablation`)."""

    def per_scenario(table: dict) -> dict:
        return {s: {m: table[s][m].to_dict() for m in STUDY_METRICS} for s in a.scenarios}

    return {
        "study": "sass_ablation",
        "full": FULL,
        "metrics": list(STUDY_METRICS),
        "scenarios": list(a.scenarios),
        "traffic": dict(a.traffic),
        "seeds": list(a.seeds),
        "requests": dict(a.requests),
        "config_fingerprint": a.config_fingerprint,
        "data_hash": a.data_hash,
        "variants": [
            {
                "label": row.variant.label,
                "model": row.variant.model,
                "overrides": dict(row.variant.overrides),
                "about": row.variant.about,
                "train_seconds": row.train_seconds,
                "scores": per_scenario(row.scores),
                "vs_full": None if is_full(row) else per_scenario(row.vs_full),
            }
            for row in a.rows
        ],
    }


def _table(a: Ablation, metric: str) -> list[str]:
    lines = [
        f"## {metric}",
        "",
        "| variant | what changes | "
        + " | ".join(scenario_label(a, s) for s in a.scenarios)
        + " |",
        "|---" * (len(a.scenarios) + 2) + "|",
    ]
    for row in a.rows:
        cells = []
        for s in a.scenarios:
            text = mean_se(row.scores[s][metric])
            if not is_full(row) and text != DASH:
                text += f" ({difference(row.vs_full[s][metric])})"
            cells.append(text)
        name = f"**{row.variant.label}**" if is_full(row) else row.variant.label
        lines.append(f"| {name} | {row.variant.about} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _clearly(a: Ablation, scenario: str, below: bool) -> list[str]:
    """The removals whose difference to the full model is clearly below (or above) zero."""
    found = []
    for metric in STUDY_METRICS:
        names = []
        for row in a.rows:
            if is_full(row) or is_reference(row):
                continue
            d = row.vs_full[scenario][metric]
            if d.clearly_below_zero() if below else d.clearly_above_zero():
                names.append(f"{row.variant.label} {difference(d)}")
        if names:
            found.append(f"{metric}: " + ", ".join(names))
    return found


def _gain_summary(a: Ablation) -> list[str]:
    lines = [
        "## What carries SASS's gain",
        "",
        "Per scenario, the removals that clearly hurt: the 95% t-interval of the variant's "
        "paired difference to the full model over the seeds lies below zero. Reference rows "
        "(another model) are not removals.",
        "",
    ]
    for s in a.scenarios:
        hurt = _clearly(a, s, below=True)
        helped = _clearly(a, s, below=False)
        text = "; ".join(hurt) if hurt else "no removal hurts clearly"
        if helped:
            text += " — clearly better without: " + "; ".join(helped)
        lines.append(f"- {scenario_label(a, s)}: {text}")
    return [*lines, ""]


def ablation_markdown(a: Ablation) -> str:
    """The tables per metric, the summary of what carries the gain, the training time."""
    lines = [
        f"# SASS ablations (seeds: {list(a.seeds)})",
        "",
        "Offline Recall@50 / NDCG@50 per scenario (share of traffic) on the validation split; "
        "mean ± s.e. over training seeds on one world. In brackets, each variant's paired "
        f"difference to the full model **{FULL}** (variant − {FULL}, seed by seed); "
        f"{ABOVE} / {BELOW}: {CLEAR_RULE} (with one seed there is no interval and nothing "
        "is marked).",
        "",
    ]
    for metric in STUDY_METRICS:
        lines += _table(a, metric)
    lines += _gain_summary(a)
    lines += ["## Training time (seconds per seed, mean over seeds; 0 where loaded)", ""]
    lines += [f"- {row.variant.label}: {row.train_seconds:.1f}" for row in a.rows]
    lines += ["", "## Validation requests with a click", ""]
    lines += [f"- {s}: {a.requests.get(s, 0):,}" for s in a.scenarios]
    lines += ["", f"Data {a.data_hash}, config fingerprint {a.config_fingerprint}."]
    return "\n".join(lines) + "\n"


def write_ablation(a: Ablation, out: Path) -> Path:
    """Write ablation.json and ablation.md into `out`, replacing both; returns `out`."""
    with replacing(out, ABLATION_FILES) as stage:
        (stage / "ablation.json").write_text(strict_json_text(ablation_json(a)), encoding="utf-8")
        (stage / "ablation.md").write_text(ablation_markdown(a), encoding="utf-8")
    return Path(out)
