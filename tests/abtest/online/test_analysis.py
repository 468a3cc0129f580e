"""The analysis of a made-up experiment: the same results.json as before the typed results
(frozen references), p-value families, and what each option leaves out."""

from __future__ import annotations

import json
import math

import pytest

from abtest.online.analysis import HEADLINE_METRICS, METRICS, SEGMENTS, AnalysisOptions, analyse
from abtest.online.results import ExperimentResults
from abtest.online.results_json import to_json
from tests.abtest.online.fake_experiment import EXPECTED, SCENARIOS, TRAFFIC, fake_experiment
from tests.conftest import FIXTURES

REFERENCES = FIXTURES / "analysis"
# reference file -> (analysis options, analyse keywords, with the truth twin)
CASES = {
    "default": ({}, {}, True),
    "holm_no_cuped": ({"cuped": False, "correction": "holm", "alpha": 0.1}, {}, True),
    "headline_only": ({}, {"daily": False, "extras": False}, True),
    "no_truth": ({}, {}, False),
}


def _run(case: str) -> ExperimentResults:
    opts, kw, truth = CASES[case]
    return analyse(fake_experiment(truth=truth), TRAFFIC, EXPECTED, AnalysisOptions(**opts), **kw)


def _same(got, want, where: str = "results") -> None:
    """Equal JSON values: the same keys in the same order, numbers to 1e-9 relative."""
    if isinstance(want, dict):
        assert isinstance(got, dict) and list(got) == list(want), where
        for key in want:
            _same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            _same(g, w, f"{where}[{i}]")
    elif isinstance(want, float):
        assert isinstance(got, float) and math.isclose(got, want, rel_tol=1e-9), where
    else:
        assert type(got) is type(want) and got == want, where


def _lifts(doc: dict):
    """(where, metric dict) of every test in a results.json object."""
    for name, population in [*doc["scenarios"].items(), ("overall", doc["overall"])]:
        for metric, m in population["metrics"].items():
            yield f"{name}.{metric}", m
    for seg, segment in (doc.get("segments") or {}).items():
        for name, population in segment["scenarios"].items():
            for metric, m in population["metrics"].items():
                yield f"{seg}.{name}.{metric}", m


def _without_notes(doc: dict) -> dict:
    """`doc` less the notes, which are newer than the references."""
    for _, m in _lifts(doc):
        m.pop("note", None)
    return doc


@pytest.mark.parametrize("case", list(CASES))
def test_results_json_is_the_reference(case):
    """The references were written by the dict-building analysis this one replaced (before
    degenerate tests had a note saying why their statistics are unknown)."""
    want = json.loads((REFERENCES / f"{case}.json").read_text())
    got = to_json(_run(case))
    unknown = {w for w, m in _lifts(want) if None in (m["lift"], m["ci_low"], m["p_value"])}
    noted = {w for w, m in _lifts(got) if "note" in m}
    assert noted == unknown and unknown  # a note exactly where a statistic is unknown
    _same(_without_notes(got), want)


def test_notes_say_why_a_statistic_is_unknown():
    res = _run("default")
    assert res.scenarios["ghost"].metrics["ctr"].note == "no impressions in the treatment arm"
    light = res.segments["light"].scenarios["ghost"].metrics["watch_time_per_user"]
    assert light.note == "one user in the treatment arm: no variance"
    assert light.lift == -1.0 and light.ci_low is None  # what is known is still there
    assert res.scenarios["home_feed"].metrics["ctr"].note is None
    assert res.srm.note is None


def test_families_and_sections():
    res = _run("default")
    assert list(res.scenarios) == list(SCENARIOS)
    assert [s.traffic for s in res.scenarios.values()] == ["high", "high", "low", "low"]
    assert res.srm.users == res.overall.users
    for population in [*res.scenarios.values(), res.overall]:
        assert list(population.metrics) == list(METRICS)
        for m in population.metrics.values():
            if m.p_value is not None:
                assert m.p_value <= m.p_adjusted <= 1
                assert m.significant == (m.p_adjusted < 0.05)
    assert list(res.segments) == list(SEGMENTS)
    for segment in res.segments.values():
        assert list(segment.scenarios) == list(SCENARIOS)
        assert all(list(p.metrics) == list(HEADLINE_METRICS) for p in segment.scenarios.values())
    assert list(res.daily) == [*SCENARIOS, "overall"] == list(res.distributions)
    assert res.daily["overall"]["ctr"].day == (1, 2, 3)
    assert res.serving.latency["treatment"].p50_ms is None  # an arm without latency samples
    assert res.run is None  # the runner adds it


def test_no_cuped_for_users_without_pre_period_traffic():
    res = _run("default")
    assert all(m.cuped is False for m in res.scenarios["new_user_landing"].metrics.values())
    assert all(m.cuped is True for m in res.scenarios["home_feed"].metrics.values())


def test_headline_only_and_no_truth():
    headline = _run("headline_only")
    assert (headline.segments, headline.daily, headline.distributions, headline.serving) == (
        None,
        None,
        None,
        None,
    )
    blind = _run("no_truth")
    assert blind.synthetic is False
    assert all(
        m.true_lift is None and m.true_in_ci is None and m.power is None
        for p in [*blind.scenarios.values(), blind.overall]
        for m in p.metrics.values()
    )


def test_bootstrap_ci_for_every_scenario_and_overall():
    """`run --bootstrap N` crashed on the overall row (a negative rng key)."""
    opts = AnalysisOptions(bootstrap=200, seed=5)
    res = analyse(fake_experiment(truth=True), TRAFFIC, EXPECTED, opts, daily=False)
    again = analyse(fake_experiment(truth=True), TRAFFIC, EXPECTED, opts, daily=False)
    for population in [*res.scenarios.values(), res.overall]:
        for m in METRICS:
            lift = population.metrics[m]
            if lift.bootstrap_ci is None:  # fewer than 2 users in an arm
                continue
            lo, hi = lift.bootstrap_ci
            assert (lo is None) == (hi is None) and (lo is None or lo <= hi)
    assert res.overall.metrics["ctr"].bootstrap_ci is not None
    assert to_json(res) == to_json(again)
