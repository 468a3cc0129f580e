"""Degenerate experiments never crash the analysis: an empty arm or scenario, one user, no
clicks, a constant metric. Each unknown statistic is None with a note that says why; the
typed results round-trip through results.json and the report renders.

A table of hand-made cases checks each note; a hypothesis property drives :func:`analyse`
with random tiny per-user tables (empty ones included)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from abtest.online.analysis import AnalysisOptions, analyse
from abtest.online.experiment import ArmLatency, ExperimentData
from abtest.online.results import ExperimentResults, MetricLift
from abtest.online.results_json import from_json, to_json
from abtest.online.user_stats import CLICKS, IMPRESSIONS, PAGES, SESSIONS, SUMS, WATCH, UserStats
from abtest.report import document, tables
from tests.conftest import FAST

EXPECTED = {"control": 0.5, "treatment": 0.5}


def experiment(both: np.ndarray, assignment, pre: np.ndarray | None = None) -> ExperimentData:
    """ExperimentData of per-user outcomes `both` (2 x S x U x D x 5: every user under the
    control and under the treatment) and an assignment (-1 holdout, 0 control, 1 treatment)."""
    both = np.asarray(both, dtype=float)
    assignment = np.asarray(assignment, dtype=np.int64)
    serve = np.where(assignment == 1, 1, 0)
    observed = np.zeros_like(both)
    for p in (0, 1):
        observed[p][:, serve == p] = both[p][:, serve == p]
    _, s, u, d, _ = both.shape
    return ExperimentData(
        arms=("mixed", "sass"),
        scenarios=tuple(f"s{i}" for i in range(s)),
        seed=1,
        start_day=1,
        days=d,
        assignment=assignment,
        observed=UserStats(observed, 1),
        pre=np.zeros((s, u, len(SUMS))) if pre is None else np.asarray(pre, dtype=float),
        truth=both,
        latency={"control": ArmLatency(1.0, 2.0, 3)},
    )


def traffic(data: ExperimentData) -> dict[str, float]:
    return {name: 1 / len(data.scenarios) for name in data.scenarios}


def users_table(rows: list[tuple[float, ...]], days: int = 1) -> np.ndarray:
    """2 x 1 x U x D x 5 outcomes: user u has the sums rows[u] (impressions, clicks, watch,
    sessions, pages) on every day, the same under both arms."""
    one = np.asarray(rows, dtype=float).reshape(1, len(rows), 1, len(SUMS))
    return np.stack([np.repeat(one, days, axis=2)] * 2)


def _typical(n: int, base: float = 10.0) -> list[tuple[float, ...]]:
    return [(base + 2 * i, 1 + i % 3, 5.0 * i, 1, 2 + i % 3) for i in range(n)]


def _no_clicks(n: int) -> list[tuple[float, ...]]:
    return [(10 + i, 0, 0, 1, 2) for i in range(n)]


# ---------------------------------------------------------------------------- the table

ALL = ("ctr", "watch_time_per_user", "clicks_per_user", "pages_per_user")
# id -> (per-user rows, assignment, metrics to check, expected note)
CASES = {
    "no-users-at-all": ([], [], ALL, "no users"),
    "everyone-in-holdout": (_typical(4), [-1] * 4, ALL, "no users"),
    "empty-treatment-arm": (_typical(5), [0] * 5, ALL, "no users in the treatment arm"),
    "empty-control-arm": (_typical(5), [1] * 5, ALL, "no users in the control arm"),
    "one-user-per-arm": (_typical(2), [0, 1], ("watch_time_per_user",),
                         "one user in the control arm: no variance"),
    "one-treatment-user": (_typical(4), [0, 0, 0, 1], ("pages_per_user",),
                           "one user in the treatment arm: no variance"),
    "zero-clicks": (_no_clicks(6), [0, 1] * 3, ("ctr",), "no clicks"),
    "zero-clicks-per-user": (_no_clicks(6), [0, 1] * 3, ("clicks_per_user",),
                             "constant metric: no variance"),
    "no-impressions": ([(0, 0, 0, 1, 1)] * 6, [0, 1] * 3, ("ctr",), "no impressions"),
    "no-treatment-impressions": ([(5, 1, 3, 1, 1), (0, 0, 0, 1, 1)] * 3, [0, 1] * 3, ("ctr",),
                                 "no impressions in the treatment arm"),
    "constant-within-each-arm": ([(10, 1, 2, 1, 2), (10, 1, 2, 1, 3)] * 3, [0, 1] * 3,
                                 ("pages_per_user",), "constant metric: no variance"),
    "constant-sessions-metric": ([(10, 1, 2, 1, 3)] * 6, [0, 1] * 3, ("pages_per_user",),
                                 "constant metric: no variance"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_each_unknown_statistic_has_a_note(case):
    rows, assignment, metrics, note = CASES[case]
    data = experiment(users_table(rows) if rows else np.zeros((2, 1, 0, 1, 5)), assignment)
    res = analyse(data, traffic(data), EXPECTED)
    check_results(res)
    for population in (res.scenarios["s0"], res.overall):
        for metric in metrics:
            assert population.metrics[metric].note == note, (metric, population)


def test_a_scenario_nobody_visits():
    both = np.concatenate([users_table(_typical(6)), np.zeros((2, 1, 6, 1, 5))], axis=1)
    res = analyse(experiment(both, [0, 1] * 3), {"s0": 0.9, "s1": 0.1}, EXPECTED)
    assert all(m.note == "no users" for m in res.scenarios["s1"].metrics.values())
    assert all(m.note is None for m in res.scenarios["s0"].metrics.values())
    assert res.scenarios["s1"].users.control == 0 and res.srm.note is None
    assert res.daily["s1"]["ctr"].lift == (None,)


def test_srm_without_users_is_not_checked_and_says_why():
    res = analyse(experiment(users_table(_typical(3)), [-1] * 3), {"s0": 1.0}, EXPECTED)
    assert res.srm.flagged is None and res.srm.note == "no users in the experiment"
    assert "not checked (no users in the experiment)" in tables.srm_line(res)
    one_arm = analyse(experiment(users_table(_typical(40)), [0] * 40), {"s0": 1.0}, EXPECTED)
    assert one_arm.srm.flagged is True and one_arm.srm.note == "no users in the treatment arm"


def test_the_report_shows_the_notes():
    data = experiment(users_table(_typical(5)), [0] * 5)
    res = analyse(data, traffic(data), EXPECTED)
    md = document.markdown(res)
    assert "| note |" in md and "no users in the treatment arm" in md
    assert "could not be computed" in md
    table = tables.format_table(res)
    assert "note: s0: no users in the treatment arm" in table
    assert table.splitlines()[-1].startswith("SRM:")


# ---------------------------------------------------------------------------- properties


def check_lift(m: MetricLift) -> None:
    for p in (m.p_value, m.p_adjusted):
        assert p is None or 0 <= p <= 1
    if m.ci_low is not None and m.ci_high is not None:
        assert m.ci_low <= m.ci_high
    unknown = None in (m.lift, m.ci_low, m.ci_high, m.p_value)
    assert (m.note is not None) == unknown, m
    assert m.note is None or (0 < len(m.note) < 80 and "\n" not in m.note)


def check_results(res: ExperimentResults) -> None:
    """The properties every analysis has, however degenerate its data."""
    populations = [*res.scenarios.values(), res.overall]
    populations += [p for seg in (res.segments or {}).values() for p in seg.scenarios.values()]
    for population in populations:
        for m in population.metrics.values():
            check_lift(m)
    for per in (res.daily or {}).values():
        for series in per.values():
            for p in (*series.p_naive, *series.p_always_valid):
                assert p is None or 0 <= p <= 1
    assert res.srm.p_value is None or 0 <= res.srm.p_value <= 1
    doc = to_json(res)
    text = json.dumps(doc, allow_nan=False)
    assert from_json(json.loads(text)) == res
    assert to_json(from_json(doc)) == doc


@st.composite
def tiny_experiments(draw) -> ExperimentData:
    """1-2 scenarios, 0-6 users, 1-2 days of small integer sums; any assignment."""
    s, u, d = draw(st.integers(1, 2)), draw(st.integers(0, 6)), draw(st.integers(1, 2))
    sums = hnp.arrays(np.int64, (2, s, u, d, len(SUMS)), elements=st.integers(0, 3))
    both = draw(sums).astype(float)
    both[..., CLICKS] = np.minimum(both[..., CLICKS], both[..., IMPRESSIONS])
    both[..., WATCH] *= 7.5
    if draw(st.booleans()):  # users who come at all have a session and a page
        both[..., SESSIONS] = np.maximum(both[..., SESSIONS], both[..., PAGES] > 0)
    assignment = draw(hnp.arrays(np.int64, (u,), elements=st.integers(-1, 1)))
    pre = draw(hnp.arrays(np.int64, (s, u, len(SUMS)), elements=st.integers(0, 2)))
    return experiment(both, assignment, pre)


OPTIONS = st.builds(
    AnalysisOptions,
    cuped=st.booleans(),
    correction=st.sampled_from(["bh", "holm"]),
    bootstrap=st.sampled_from([0, 0, 15]),
)


@FAST
@given(data=tiny_experiments(), opts=OPTIONS)
def test_analyse_never_raises_on_tiny_tables(data, opts):
    res = analyse(data, traffic(data), EXPECTED, opts)
    check_results(res)
    assert set(document.page(res, [])) == {"report.md", "report.html"}
    assert tables.format_table(res).splitlines()[-1].startswith("SRM:")


@settings(FAST, max_examples=4)
@given(data=tiny_experiments())
def test_the_report_of_a_tiny_table_is_written(data, tmp_path_factory):
    from abtest.report.folder import write_report

    res = analyse(data, traffic(data), EXPECTED)
    out = tmp_path_factory.mktemp("report") / "run"
    paths = write_report(res, out)
    assert all(p.stat().st_size > 0 for p in paths.values())
    assert {"forest.png", "mde.png", "results.json"} <= set(paths)


def test_studies_of_a_scenario_nobody_visits():
    """A/A rates are unknown (NaN), not 0, where no re-randomisation could test; coverage
    and the power table cope too."""
    from abtest.online.validity import aa_study, coverage_study, power_table

    both = np.concatenate([users_table(_typical(8), days=2), np.zeros((2, 1, 8, 2, 5))], axis=1)
    data = experiment(both, [0, 1] * 4)
    shares, alloc = {"s0": 0.9, "s1": 0.1}, {"control": 0.5, "treatment": 0.5}
    aa = aa_study(data, shares, alloc, runs=3)
    assert all(math.isnan(v) for v in aa.rate["s1"].values())
    assert all(0 <= v <= 1 for v in aa.rate["s0"].values())
    coverage = coverage_study(data, shares, alloc, runs=3)
    assert all(math.isnan(v) for v in coverage.rate["s1"].values())
    table = power_table(data, shares, alloc, lift=0.02)
    assert table.scenarios["s1"]["ctr"].mde_by_day == (None, None)
    assert table.scenarios["s1"]["ctr"].days_needed is None
