"""The validity studies' text, JSON documents and plot."""

from __future__ import annotations

import json
import math

from abtest.online.analysis import METRICS
from abtest.online.validity import MdePath, PowerTable, StudyResult
from abtest.report import studies

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _study(ks: float = 0.4) -> StudyResult:
    rate = {"home_feed": dict.fromkeys(METRICS, 0.05), "overall": dict.fromkeys(METRICS, 0.3)}
    p_values = {"home_feed": {m: [0.2, 0.7, math.nan] for m in METRICS}}
    true_lift = {"home_feed": dict.fromkeys(METRICS, 0.01), "overall": dict.fromkeys(METRICS)}
    return StudyResult(100, 0.05, rate, p_values, ks, true_lift)


def test_aa_text_marks_rates_outside_the_band():
    text = studies.aa_text(_study(), "mixed")
    lines = text.splitlines()
    assert lines[0] == (
        "A/A false-positive rate over 100 re-randomisations (alpha 0.05, model mixed)"
    )
    assert lines[1].split() == ["scenario", *METRICS]
    assert "!" not in lines[2] and lines[3].count(" !") == len(METRICS)
    assert lines[-2].startswith("('!' = outside the 3-sd binomial band [0.000, 0.115])")
    assert lines[-1] == "p-values uniform? Kolmogorov-Smirnov p = 0.4"


def test_aa_files(tmp_path):
    res = _study()
    assert studies.write_aa(res, "mixed", tmp_path) == f"wrote {tmp_path}/aa.json and aa_qq.png"
    doc = json.loads((tmp_path / "aa.json").read_text())
    assert list(doc) == ["runs", "alpha", "model", "false_positive_rate", "ks_pvalue", "band",
                         "p_values"]  # fmt: skip
    assert doc["model"] == "mixed" and doc["false_positive_rate"] == res.rate
    assert math.isnan(doc["p_values"]["home_feed"]["ctr"][2])  # written as NaN, as before
    assert (tmp_path / "aa_qq.png").read_bytes().startswith(PNG_MAGIC)


def test_coverage_text_and_file(tmp_path):
    res = _study(ks=math.nan)
    text = studies.coverage_text(res, "sass", "mixed")
    assert text.startswith("Coverage of the true lift by the 95% CI over 100 re-randomisations "
                           "(sass vs mixed)")  # fmt: skip
    assert studies.write_coverage(res, "sass", "mixed", tmp_path) == (
        f"wrote {tmp_path}/coverage.json"
    )
    doc = json.loads((tmp_path / "coverage.json").read_text())
    assert list(doc) == ["runs", "alpha", "treatment", "control", "coverage", "true_lift", "band"]
    assert doc["coverage"] == res.rate and doc["true_lift"] == res.true_lift


def _power() -> PowerTable:
    grow = MdePath((0.3, 0.2, None), 9, 0.5, True)
    met = MdePath((0.01, 0.005, 0.004), 1, None, False)
    never = MdePath((None, None, None), None, None, False)
    per = {"ctr": grow, "watch_time_per_user": met, "clicks_per_user": never,
           "pages_per_user": never}  # fmt: skip
    return PowerTable(0.02, 3, {"home_feed": per, "overall": per})


def test_power_text_and_file(tmp_path):
    table = _power()
    lines = studies.power_text(table, 0.05, {"control": 0.5, "treatment": 0.5}).splitlines()
    assert lines[0] == (
        "MDE (80% power, alpha 0.05) by day, allocation {'control': 0.5, 'treatment': 0.5}; "
        "days needed for a +2.0% lift"
    )
    assert len(lines) == 1 + 2 * 2  # the headline metrics of each scenario
    assert lines[1] == (
        "  home_feed          ctr                   30.0%  20.0%    —     days needed: 9 "
        "(extrapolated)"
    )
    assert lines[2].endswith("days needed: 1")
    studies.write_power(table, tmp_path)
    doc = json.loads((tmp_path / "power.json").read_text())
    assert list(doc) == ["lift", "days_simulated", "scenarios"]
    assert doc["scenarios"]["overall"]["ctr"] == {
        "mde_by_day": [0.3, 0.2, None], "days_needed": 9, "decay": 0.5, "extrapolated": True,
    }  # fmt: skip
