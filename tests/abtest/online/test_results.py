"""The typed results and their one JSON form: exact round trips, errors that name what is
wrong, and tolerant reading of values of the wrong type."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from abtest.online.analysis import AnalysisOptions, analyse
from abtest.online.results import (
    NO_LIFT,
    Checkpoint,
    ExperimentResults,
    RunInfo,
    ScenarioPopulation,
)
from abtest.online.results_json import from_json, to_json
from core.errors import UserError
from tests.abtest.online.fake_experiment import EXPECTED, TRAFFIC, fake_experiment
from tests.conftest import FIXTURES

EXAMPLE = FIXTURES / "results_example.json"


def example() -> dict:
    return json.loads(EXAMPLE.read_text())


@pytest.fixture(scope="module")
def analysed() -> ExperimentResults:
    return analyse(fake_experiment(), TRAFFIC, EXPECTED, AnalysisOptions())


def test_analysis_round_trips_exactly(analysed):
    doc = to_json(analysed)
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc  # plain JSON values
    assert from_json(doc) == analysed
    assert to_json(from_json(doc)) == doc


def test_a_run_round_trips_with_key_order(analysed):
    run = RunInfo(
        command="python -m abtest run --treatment sass --control mixed",
        created="2026-01-02T03:04:05+00:00",
        config_fingerprint="abc123",
        config={"seed": 1, "world": {"n_users": 10}},
        checkpoints={"mixed": Checkpoint("m.pt", "f00"), "popular": Checkpoint(None, None)},
        traffic_source="world",
        total_seconds=12.5,
    )
    results = dataclasses.replace(analysed, run=run)
    doc = to_json(results)
    assert list(doc)[-7:] == ["command", "created", "config_fingerprint", "config",
                              "checkpoints", "traffic_source", "total_seconds"]  # fmt: skip
    assert doc["checkpoints"]["popular"] == {"path": None, "sha256": None}
    assert from_json(json.loads(json.dumps(doc))) == results


def test_the_example_file_round_trips():
    doc = example()
    results = from_json(doc)
    assert json.dumps(to_json(results)) == json.dumps(doc)  # keys, values and order
    assert from_json(to_json(results)) == results
    assert isinstance(results.scenarios["new_user_landing"], ScenarioPopulation)
    assert results.overall.metric("no such metric") is NO_LIFT


def test_nan_is_written_as_null(analysed):
    scenario = analysed.scenarios["home_feed"]
    metrics = dict(scenario.metrics)
    metrics["ctr"] = dataclasses.replace(metrics["ctr"], power=float("nan"))
    scenarios = dict(analysed.scenarios)
    scenarios["home_feed"] = dataclasses.replace(scenario, metrics=metrics)
    doc = to_json(dataclasses.replace(analysed, scenarios=scenarios))
    assert doc["scenarios"]["home_feed"]["metrics"]["ctr"]["power"] is None
    json.dumps(doc, allow_nan=False)


def test_missing_sections_stay_missing():
    doc = example()
    for key in ("segments", "daily", "distributions", "serving", "alpha", "created", "config"):
        del doc[key]
    results = from_json(doc)
    assert results.segments is None and results.serving is None and results.alpha is None
    assert to_json(results) == doc


def test_values_of_the_wrong_type_read_as_unknown():
    doc = example()
    ctr = doc["scenarios"]["home_feed"]["metrics"]["ctr"]
    ctr.update(lift="big", significant="yes", p_value=float("nan"), ci_low=True)
    doc["srm"] = {"flagged": None}
    doc["distributions"]["overall"] = {"edges": 3, "control": "x"}
    doc["segments"]["cold"]["scenarios"]["home_feed"]["metrics"] = []
    results = from_json(doc)
    m = results.scenarios["home_feed"].metrics["ctr"]
    assert (m.lift, m.significant, m.p_value, m.ci_low) == (None, None, None, None)
    assert m.control == ctr["control"]
    assert results.srm.users is None and results.srm.flagged is None
    assert results.distributions["overall"].edges == ()
    assert results.segments["cold"].scenarios["home_feed"].metrics == {}


def _put(path: tuple, value):
    def change(doc: dict) -> None:
        for key in path[:-1]:
            doc = doc[key]
        doc[path[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda d: d.pop("seed"), "results is missing required key 'seed'"),
        (_put(("srm",), []), "results: 'srm' must be an object"),
        (_put(("scenarios",), {}), "results: 'scenarios' must be a non-empty object"),
        (lambda d: d["overall"].pop("metrics"), "'overall' is missing required key 'metrics'"),
        (_put(("scenarios", "image_text", "metrics", "ctr"), 3),
         "'scenarios.image_text.metrics.ctr' must be an object"),
    ],
)  # fmt: skip
def test_malformed_results_are_a_user_error(change, match):
    doc = copy.deepcopy(example())
    change(doc)
    with pytest.raises(UserError, match=match):
        from_json(doc)


def test_not_an_object_names_the_source():
    with pytest.raises(UserError, match=r"run/results.json: must be a JSON object, got list"):
        from_json([1, 2], "run/results.json")
