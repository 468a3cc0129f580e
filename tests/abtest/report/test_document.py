"""Report rendering: every file written, deterministic, robust to nulls, atomic on failure."""

from __future__ import annotations

import copy
import csv
import json
import math
from pathlib import Path

import pytest

from abtest.online.results_json import from_json
from abtest.report import document, folder, plots, tables
from core.errors import UserError
from tests.conftest import FIXTURES

FIXTURE = FIXTURES / "results_example.json"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALL_FILES = {
    "results.json", "lift.csv", "report.md", "report.html",
    "forest.png", "cumulative.png", "pvalues.png", "watch_time.png", "mde.png",
}  # fmt: skip
SCENARIOS = ["home_feed", "immersive_video", "image_text", "related_detail", "new_user_landing"]


def example() -> dict:
    return json.loads(FIXTURE.read_text())


def non_synthetic(results: dict) -> dict:
    results = copy.deepcopy(results)
    results["synthetic"] = False
    groups = [*results["scenarios"].values(), results["overall"]]
    groups += [s for seg in results["segments"].values() for s in seg["scenarios"].values()]
    for group in groups:
        for m in group["metrics"].values():
            m["true_lift"] = m["true_in_ci"] = None
    return results


def small(results: dict) -> dict:
    """Daily paths and distributions for "overall" only: fewer panels, faster plots."""
    results["daily"] = {"overall": results["daily"]["overall"]}
    results["distributions"] = {"overall": results["distributions"]["overall"]}
    return results


@pytest.fixture
def fast_plots(monkeypatch):
    """Skip PNG encoding (the slow part) where the test is about files, not pictures."""
    monkeypatch.setattr(plots, "save_png", lambda fig, path: Path(path).write_bytes(PNG_MAGIC))


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[dict, dict[str, Path]]:
    results = example()
    results["scenarios"]["home_feed"]["metrics"]["ctr"]["power"] = float("nan")
    out = tmp_path_factory.mktemp("run") / "a" / "b"
    return results, folder.write_report(from_json(results), out)


def test_fixture_is_realistic():
    results = example()
    assert list(results["scenarios"]) == SCENARIOS
    assert {s["traffic"] for s in results["scenarios"].values()} == {"high", "low"}
    for scenario in [*results["scenarios"].values(), results["overall"]]:
        assert len(scenario["metrics"]) == 4
    assert set(results["segments"]) == {"cold", "light", "heavy"}
    assert results["daily"]["overall"]["ctr"]["day"] == list(range(1, 8))


def test_write_report_writes_every_file(rendered):
    _, paths = rendered
    assert set(paths) == ALL_FILES
    for name, path in paths.items():
        assert path.name == name and path.is_file() and path.stat().st_size > 0
    for name in ALL_FILES - {"results.json", "lift.csv", "report.md", "report.html"}:
        data = paths[name].read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert not list(paths["report.md"].parent.glob(".*.tmp"))


def test_results_json_round_trips_with_nan_as_null(rendered):
    results, paths = rendered
    loaded = json.loads(paths["results.json"].read_text())
    expected = copy.deepcopy(results)
    assert math.isnan(expected["scenarios"]["home_feed"]["metrics"]["ctr"]["power"])
    expected["scenarios"]["home_feed"]["metrics"]["ctr"]["power"] = None
    assert loaded == expected
    assert list(loaded) == list(results)  # key order kept, not sorted
    assert "NaN" not in paths["results.json"].read_text()


def test_lift_csv(rendered):
    results, paths = rendered
    with paths["lift.csv"].open(newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == tables.CSV_FIELDS
    body = rows[1:]
    assert len(body) == 5 * 4 + 4
    assert [r[0] for r in body[::4]] == [*SCENARIOS, "overall"]  # high traffic first, then low
    first = dict(zip(rows[0], body[0], strict=True))
    ctr = results["scenarios"]["home_feed"]["metrics"]["ctr"]
    assert first["metric"] == "ctr" and first["traffic"] == "high"
    assert float(first["lift"]) == ctr["lift"] and first["significant"] == "true"
    degenerate = next(r for r in body if r[0] == "new_user_landing" and r[2] == "pages_per_user")
    assert dict(zip(rows[0], degenerate, strict=True))["p_value"] == ""


def test_markdown_content(rendered):
    _, paths = rendered
    md = paths["report.md"].read_text()
    for name in SCENARIOS:
        assert name in md
    assert "new_user_landing (low traffic)" in md
    assert "— OK" in md and tables.SRM_WARNING not in md
    assert "True lift inside the 95% CI for" in md
    for section in ("## Segments", "| cold |", "| heavy |", "## Serving", "p99 (ms)"):
        assert section in md
    assert "![forest](forest.png)" in md and "![mde](mde.png)" in md
    assert "ab12f0c93e7d" in md and "python -m abtest run" in md  # reproduction info
    assert "nan" not in md.lower().replace("nanos", "")


def test_html_references_every_plot(rendered):
    _, paths = rendered
    page = paths["report.html"].read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for name in ALL_FILES:
        if name.endswith(".png"):
            assert f'<img src="{name}"' in page
    assert "3f2a9c1d8e7b" in page  # checkpoint hash
    assert "<table>" in page and "home_feed" in page


def test_render_run_is_deterministic(tmp_path):
    paths = folder.write_report(from_json(small(example())), tmp_path)
    before = {name: path.read_bytes() for name, path in paths.items()}
    again = folder.render_run(tmp_path)
    assert set(again) == ALL_FILES
    for name, data in before.items():
        assert again[name].read_bytes() == data, name


def test_format_table():
    table = tables.format_table(from_json(example()))
    lines = table.splitlines()
    scenario_lines = [line for line in lines if line.split(" ")[0] in [*SCENARIOS, "overall"]]
    assert [line.split(" ")[0] for line in scenario_lines] == [*SCENARIOS, "overall"]
    assert "related_detail (low)" in table and "new_user_landing (low)" in table
    assert " * " in table or table.count("*") > 1  # significance marker
    assert "true" in lines[1]
    assert lines[-1].startswith("SRM:") and lines[-1].endswith("OK")


def test_flagged_srm_warns():
    results = example()
    results["srm"].update(flagged=True, p_value=1e-6, statistic=24.0)
    results = from_json(results)
    warning = "sample ratio mismatch: do not trust these results"
    assert warning in document.markdown(results)
    assert warning in tables.format_table(results)
    assert "> **Warning: " in document.markdown(results)


def test_non_synthetic_has_no_truth(tmp_path, monkeypatch):
    results = from_json(non_synthetic(example()))
    md = document.markdown(results)
    assert "True lift inside" not in md and "true lift" not in md
    assert "true" not in tables.format_table(results).splitlines()[1]
    colours: list[str] = []
    save = plots.save_png

    def spy(fig, path):
        colours.extend(line.get_color() for ax in fig.axes for line in ax.get_lines())
        save(fig, path)

    monkeypatch.setattr(plots, "save_png", spy)
    paths = folder.write_report(from_json(small(non_synthetic(example()))), tmp_path)
    assert colours and plots.TRUTH_COLOUR not in colours
    assert paths["forest.png"].read_bytes().startswith(PNG_MAGIC)


def test_optional_sections_missing(tmp_path, fast_plots):
    results = example()
    for key in ("segments", "daily", "distributions", "serving", "checkpoints", "config"):
        del results[key]
    for key in ("alpha", "correction", "cuped", "synthetic", "created", "config_fingerprint"):
        del results[key]
    paths = folder.write_report(from_json(results), tmp_path)
    assert set(paths) == {"results.json", "lift.csv", "report.md", "report.html"} | {
        "forest.png",
        "mde.png",
    }
    md = paths["report.md"].read_text()
    assert "## Segments" not in md and "## Serving" not in md and "cumulative.png" not in md
    assert "cumulative.png" not in paths["report.html"].read_text()


def test_nulls_everywhere_render(tmp_path):
    results = example()
    for group in [*results["scenarios"].values(), results["overall"]]:
        for m in group["metrics"].values():
            for key in m:
                m[key] = None
    for series in results["daily"]["home_feed"].values():
        for key in ("lift", "ci_low", "ci_high", "p_naive", "p_always_valid"):
            series[key] = [None] * 7
    results["srm"] = {"flagged": None}
    results["distributions"]["home_feed"]["control"] = [0] * 24
    results["daily"] = {"home_feed": results["daily"]["home_feed"]}
    results["distributions"] = {"home_feed": results["distributions"]["home_feed"]}
    results["distributions"]["overall"] = {"edges": 3, "control": "x"}
    results["segments"]["cold"]["scenarios"]["home_feed"]["metrics"] = []
    results = from_json(results)
    paths = folder.write_report(results, tmp_path)
    assert "—" in paths["report.md"].read_text()
    assert "not checked" in tables.format_table(results)


def test_stale_plots_are_removed(tmp_path, fast_plots):
    folder.write_report(from_json(small(example())), tmp_path)
    results = small(example())
    del results["daily"]
    folder.write_report(from_json(results), tmp_path)
    assert not (tmp_path / "cumulative.png").exists()
    assert (tmp_path / "watch_time.png").exists()


def _missing_key(tmp_path: Path) -> Path:
    results = example()
    del results["scenarios"]
    (tmp_path / "results.json").write_text(json.dumps(results))
    return tmp_path


def _no_metrics(tmp_path: Path) -> Path:
    results = example()
    del results["scenarios"]["image_text"]["metrics"]
    (tmp_path / "results.json").write_text(json.dumps(results))
    return tmp_path


def _invalid_json(tmp_path: Path) -> Path:
    (tmp_path / "results.json").write_text('{"treatment": "sass",')
    return tmp_path


def _not_an_object(tmp_path: Path) -> Path:
    (tmp_path / "results.json").write_text("[1, 2]")
    return tmp_path


def _a_file(tmp_path: Path) -> Path:
    path = tmp_path / "results.json"
    path.write_text("{}")
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda p: p / "nope", "does not exist"),
        (lambda p: p, "has no results.json"),
        (_a_file, "is not a folder"),
        (_invalid_json, "is not valid JSON"),
        (_not_an_object, "must be a JSON object"),
        (_missing_key, "missing required key 'scenarios'"),
        (_no_metrics, "'scenarios.image_text' is missing required key 'metrics'"),
    ],
)
def test_render_run_bad_input(tmp_path, make, match):
    with pytest.raises(UserError, match=match):
        folder.render_run(make(tmp_path))


@pytest.mark.parametrize("key", ["treatment", "seed", "srm", "overall"])
def test_write_report_missing_key(tmp_path, key):
    results = example()
    del results[key]
    with pytest.raises(UserError, match=f"missing required key '{key}'"):
        folder.write_report(from_json(results), tmp_path)
    assert not list(tmp_path.iterdir())


def test_failed_rerender_keeps_old_report(tmp_path, monkeypatch, fast_plots):
    results = non_synthetic(example())
    folder.write_report(from_json(results), tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def boom(_results):
        raise RuntimeError("plotting failed")

    changed = copy.deepcopy(results)
    changed["seed"] = 1
    monkeypatch.setattr(plots, "plot_mde", boom)  # the last plot: everything else rendered
    with pytest.raises(RuntimeError, match="plotting failed"):
        folder.write_report(from_json(changed), tmp_path)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == before  # no new files, no temp files left, old ones untouched


def test_report_points_to_plan_where_the_mde_exceeds_the_observed_lift():
    results = example()
    for name, scenario in results["scenarios"].items():
        for metric in ("ctr", "watch_time_per_user"):
            m = scenario["metrics"][metric]
            m["lift"], m["mde"] = (0.01, 0.05) if name == "related_detail" else (0.05, 0.01)
    page = document.markdown(from_json(results))
    line = next(x for x in page.splitlines() if "minimum detectable effect exceeds" in x)
    assert "related_detail (ctr, watch_time_per_user)" in line
    assert "home_feed" not in line
    assert f"python -m abtest plan --treatment {results['treatment']}" in line
    for scenario in results["scenarios"].values():  # every lift detectable: no pointer
        for metric in ("ctr", "watch_time_per_user"):
            scenario["metrics"][metric]["mde"] = 0.001
    assert "minimum detectable effect exceeds" not in document.markdown(from_json(results))
