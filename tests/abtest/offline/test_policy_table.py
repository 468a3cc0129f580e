"""A policy given as a table of action probabilities (abtest/offline/policy_table.py): the
table of a model's own policy gives that model's estimates; on synthetic logs the estimates'
CIs cover the table policy's exact value; the checks of a table; the support report; a table
built from logged behaviour (the Open Bandit Dataset's bts evaluated on its random logs)."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from abtest.offline.estimators import estimators_named
from abtest.offline.logged import load_logged, scenario_slots
from abtest.offline.policy_table import (
    TablePolicy,
    policy_table_from_logs,
    validate_policy_table,
)
from abtest.offline.render import format_markdown
from abtest.offline.results import from_json, to_json
from abtest.offline.run import RunSetup, evaluate_scenario, run_offline
from abtest.offline.scorers import build_scorer
from abtest.offline.targets import TARGET_EPSILON
from core.config import config_from_dict
from core.errors import UserError
from simulator.converters import obd_to_logs
from simulator.generation import generate
from simulator.logs import UNIFORM
from simulator.synthetic import SyntheticWorld
from tests.abtest.offline.conftest import HIGH_TRAFFIC, within, write_logs
from tests.conftest import tiny_tree

COLUMNS = ["scenario", "item_id", "position", "probability"]


def fixed_table(world, scenarios=HIGH_TRAFFIC, n: int = 8, seed: int = 0) -> pl.DataFrame:
    """Per scenario and position a fixed distribution over `n` random pool items, unlike the
    logging policy's; at odd positions the probabilities sum to 0.7 (renormalised)."""
    rng = np.random.default_rng(seed)
    rows = []
    for sc in world.scenarios:
        if sc.name not in scenarios:
            continue
        for k in range(sc.slate_size):
            items = rng.choice(sc.pool, n, replace=False)
            p = rng.dirichlet(np.ones(n)) * (0.7 if k % 2 else 1.0)
            rows += [(sc.name, int(a), k, float(q)) for a, q in zip(items, p, strict=True)]
    return pl.DataFrame(rows, schema=COLUMNS, orient="row")


# ---------------------------------------------------------------------------- a model's table


def model_table(cfg, folder, model: str, scenario: str) -> pl.DataFrame:
    """`model`'s eps-uniform target policy on `scenario`'s evaluated requests, as a table."""
    logged = load_logged(folder)
    scorer = build_scorer(model, logged, cfg.seed)
    s = logged.scenarios.index(scenario)
    slots = scenario_slots(logged, s, scorer.pools[s])
    top = scorer.top(s, slots.requests, slots.k)
    pool, eps = slots.pool, TARGET_EPSILON
    n_req, k = top.shape
    rid = slots.requests["request_id"].to_numpy()
    item = np.tile(pool, n_req * k)
    shown = np.repeat(top.reshape(-1), pool.size)
    return pl.DataFrame(
        {
            "scenario": scenario,
            "request_id": np.repeat(rid, k * pool.size),
            "item_id": item,
            "position": np.tile(np.repeat(np.arange(k), pool.size), n_req),
            "probability": (1 - eps) * (item == shown) + eps / pool.size,
        }
    )


def test_the_table_of_a_models_policy_gives_the_models_estimates(replayed, world_logs, tmp_path):
    """A per-request table equal to popular's eps-uniform policy: the same IPS, SNIPS and DR
    estimates, truth and lift over random as ``--policy popular`` (replay draws its own
    matches: the same estimand, other draws)."""
    model_run, _ = replayed
    cfg, root = world_logs
    path = tmp_path / "popular.parquet"
    model_table(cfg, root / "logs", "popular", "home_feed").write_parquet(path)
    run = run_offline(cfg, None, "random", root / "logs", policy_table=path)
    assert run.policy == "table:popular" and list(run.scenarios) == ["home_feed"]
    assert "table:popular" in run.settings.target_policy
    got, want = run.scenarios["home_feed"], model_run.scenarios["home_feed"]
    assert got.exposures == want.exposures and got.support.uncovered == 0
    for metric in ("ctr", "watch_time"):
        g, w = getattr(got, metric), getattr(want, metric)
        assert g.truth == pytest.approx(w.truth, rel=1e-9)
        assert g.lift.truth == pytest.approx(w.lift.truth, rel=1e-9)
        for e in ("ips", "snips", "dr"):
            for field in ("estimate", "se", "ess"):
                assert getattr(g.estimates[e], field) == pytest.approx(
                    getattr(w.estimates[e], field), rel=1e-9
                ), (metric, e, field)
            assert g.lift.estimators[e].lift == pytest.approx(w.lift.estimators[e].lift, rel=1e-9)
        assert g.logging == w.logging
        rep, rep_model = g.estimates["replay"], w.estimates["replay"]
        assert abs(rep.n - rep_model.n) < 4 * math.sqrt(rep_model.n)  # ~ uniform / N matches
    assert within(got.ctr.estimates["replay"], got.ctr.truth, 3)


# ---------------------------------------------------------------------------- coverage


def coverage_world(tmp_path_factory, n_users: int):
    """The overlap world with `n_users` users, one pre-period and one experiment day."""
    tree = tiny_tree(n_items=100, n_users=n_users)
    tree["periods"].update({"pre_days": 1, "experiment_days": 1})
    tree["logging_policy"]["epsilon"] = 0.9
    cfg = config_from_dict(tree, "tiny")
    folder = tmp_path_factory.mktemp("coverage") / "logs"
    generate(cfg, folder, progress=False)
    return cfg, folder


def by_user_groups(cfg, folder, table: pl.DataFrame, groups: int) -> list:
    """The table's CTR blocks on the high-traffic scenarios of each of `groups` disjoint user
    groups: independent log draws (users do not interact) from one generated world, each
    with its own exact truth."""
    logged = load_logged(folder)
    world = SyntheticWorld(cfg)
    policy = TablePolicy.of(table, logged, world.items.n)
    estimators = estimators_named(["ips", "snips", "dr"])
    blocks = []
    for g in range(groups):
        part = replace(logged, logs=logged.logs.filter(pl.col("user_id") % groups == g))
        setup = RunSetup(part, world, policy, None, estimators, TARGET_EPSILON, "user", cfg.seed)
        for name in HIGH_TRAFFIC:
            s = logged.scenarios.index(name)
            result, _ = evaluate_scenario(setup, scenario_slots(part, s, policy.pools[s]))
            blocks.append(result.ctr)
    return blocks


def check_coverage(blocks: list) -> None:
    """Each estimator's 95% CI covers the truth at 0.95 +- 3 binomial SDs, and its mean error
    is within 4 of its standard errors of zero."""
    n = len(blocks)
    band = 3 * math.sqrt(0.95 * 0.05 / n)
    for e in ("ips", "snips", "dr"):
        res = [(b.estimates[e], b.truth) for b in blocks]
        assert not any(r.ci_withheld for r, _ in res), e
        cover = np.mean([r.ci_low <= t <= r.ci_high for r, t in res])
        assert abs(cover - 0.95) <= band, (e, cover)
        err = np.array([r.estimate - t for r, t in res])
        assert abs(err.mean()) < 4 * err.std(ddof=1) / math.sqrt(n), (e, err.mean())


@pytest.mark.slow
def test_ci_coverage_of_a_table_policy_over_many_log_draws(tmp_path_factory):
    """100 independent draws (50 user groups x 2 scenarios): IPS, SNIPS and DR cover the exact
    CTR of a fixed table policy (renormalised at odd positions) at the nominal rate."""
    cfg, folder = coverage_world(tmp_path_factory, 30_000)
    table = fixed_table(SyntheticWorld(cfg))
    check_coverage(by_user_groups(cfg, folder, table, 50))


def test_a_table_policy_is_estimated_near_its_truth(world_logs):
    """The fast version: 4 user groups of the package's logs, every estimate within 4 SEs."""
    cfg, root = world_logs
    table = fixed_table(SyntheticWorld(cfg))
    blocks = by_user_groups(cfg, root / "logs", table, 4)
    for b in blocks:
        for e in ("ips", "snips", "dr"):
            assert within(b.estimates[e], b.truth, 4), (e, b.estimates[e], b.truth)


# ---------------------------------------------------------------------------- the table


def test_per_request_rows_override_the_scenarios_rows(world_logs):
    """pi of each exposure: its request's own rows at that position, else the scenario's; a
    slot whose rows are all 0 shows nothing (left out); probabilities renormalised per slot."""
    cfg, root = world_logs
    logged = load_logged(root / "logs")
    s = logged.scenarios.index("home_feed")
    slots = scenario_slots(logged, s, np.arange(100))
    ex = slots.exposures
    first = ex.row(0, named=True)
    rid, pos, item = first["request_id"], first["position"], first["item_id"]
    other = next(i for i in range(100) if i != item)
    rows = [
        ("home_feed", None, item, pos, 0.25),  # the scenario's: renormalised to 0.5
        ("home_feed", None, other, pos, 0.25),
        ("home_feed", rid, item, pos, 0.1),  # this request's: 0.1 / 0.2 = 0.5 too...
        ("home_feed", rid, other, pos, 0.1),
        ("home_feed", rid, item, (pos + 1) % 10, 0.0),  # ...and nothing at the next slot
    ]
    table = pl.DataFrame(
        rows, schema=["scenario", "request_id", "item_id", "position", "probability"], orient="row"
    )
    policy = TablePolicy.of(table, logged)
    uniform = (ex["policy"] == UNIFORM).to_numpy()
    t = policy.target_on(slots, cfg.seed, uniform, "home_feed")
    at = ex["position"].to_numpy() == pos
    same_item = at & (ex["item_id"].to_numpy() == item)
    assert np.allclose(t.pi[same_item], 0.5) and t.pi[0] == 0.5
    assert (t.pi[at & ~np.isin(ex["item_id"].to_numpy(), [item, other])] == 0).all()
    assert t.shown.sum() == at.sum()  # only position `pos` is shown...
    next_slot = (ex["request_id"].to_numpy() == rid) & (ex["position"].to_numpy() == (pos + 1) % 10)
    assert not t.shown[next_slot].any()  # ...and not the zero slot (no scenario rows there)
    assert t.support.mass == pytest.approx(0.5 * (at.sum() - 1) / at.sum() + 0.2 / at.sum())
    assert t.support.left_out == ex.height - at.sum()
    # DR's q_target over the table's items: half each of the two items' predictions
    from abtest.offline.reward import RewardModel

    qm = RewardModel.fit(logged.logs.filter(pl.col("scenario") == "home_feed"), "click", 10, 1)
    fold = np.zeros(ex.height, dtype=np.int64)
    q = t.q_target(qm, fold, ex["position"].to_numpy(), ex["item_id"].to_numpy(), None)
    want = qm.predict(np.zeros(2, dtype=np.int64), np.array([pos, pos]), np.array([item, other]))
    assert q[0] == pytest.approx(want.mean()) and (q[~t.shown] == 0).all()


GOOD = {"scenario": ["home_feed", "home_feed"], "item_id": [1, 2], "position": [0, 0],
        "probability": [0.5, 0.5]}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (
            {"probability": [0.5, 1.5]},
            "'probability' must be in \\[0, 1\\]; first offending rows: 1",
        ),
        ({"probability": [0.7, 0.7]}, "sum to 1.4; first offending rows: 0"),
        ({"probability": [0.5, float("nan")]}, "'probability' must be finite"),
        ({"probability": [0.5, None]}, "'probability' has null values; first offending rows: 1"),
        ({"position": [0, -1]}, "'position' must be >= 0; first offending rows: 1"),
        ({"scenario": ["home_feed", "moon"]}, "scenarios that are not in the logs"),
        ({"item_id": [1, 1]}, "an item appears twice in one slot"),
        ({"item_id": [1.0, 2.5]}, "'item_id' must hold integers; first offending rows: 1"),
        (
            {"item_id": ["1", "x"]},
            "'item_id' must hold integers; first offending rows: 1 \\('x'\\)",
        ),
        ({"scenario": [1, 2]}, "'scenario' must hold text"),
        ({"probability": None}, "missing column\\(s\\) 'probability'"),
        ({"item_id": [1, 100]}, "not in the world \\(0..99\\)"),
    ],
)
def test_bad_tables_are_refused(change, match):
    table = pl.DataFrame({k: v for k, v in (GOOD | change).items() if v is not None}, strict=False)
    if "probability" in change and change["probability"] is None:
        table = table.drop("probability", strict=False)
    with pytest.raises(UserError, match=match):
        validate_policy_table(table, "t.csv", {"home_feed", "image_text"}, n_items=100)


def test_a_good_table_and_its_request_column():
    out = validate_policy_table(pl.DataFrame(GOOD), "t", {"home_feed"})
    assert out.columns == ["scenario", "request_id", "position", "item_id", "probability"]
    assert out["request_id"].is_null().all()
    # the same item in the same position of two requests is no duplicate; pandas-style float
    # request ids (NaN: the scenario's rows) are read as integers
    per = pl.DataFrame(GOOD | {"item_id": [1, 1], "request_id": [3.0, float("nan")]})
    per = per.with_columns(pl.col("request_id").fill_nan(None))
    assert validate_policy_table(per, "t", {"home_feed"})["request_id"].to_list() == [3, None]
    with pytest.raises(UserError, match=r"request_id 3, position 0 sum to 1\.2"):
        validate_policy_table(
            per.with_columns(item_id=pl.Series([1, 2]), request_id=pl.Series([3, 3]),
                             probability=pl.Series([0.6, 0.6])), "t", {"home_feed"}
        )  # fmt: skip


# ---------------------------------------------------------------------------- support


def test_the_support_report_and_the_refusal_of_a_table_the_logs_never_show(world_logs, tmp_path):
    """Mass on items never logged at their position is reported (replay.json's support block,
    a line of replay.md); a table without any covered mass is refused."""
    cfg, root = world_logs
    world = SyntheticWorld(cfg)
    pool = world.scenarios[0].pool
    outside = np.setdiff1d(np.arange(world.items.n), pool)  # never shown in home_feed
    rows = [("home_feed", int(pool[0]), 0, 0.5), ("home_feed", int(outside[0]), 0, 0.5)]
    rows += [("home_feed", int(pool[k]), k, 1.0) for k in range(1, 10)]
    table = pl.DataFrame(rows, schema=COLUMNS, orient="row")
    run = run_offline(cfg, None, None, root / "logs", ["ips", "snips", "dr"], tmp_path / "out",
                      policy_table=table)  # fmt: skip
    sup = run.scenarios["home_feed"].support
    assert sup.left_out == 0 and sup.mass == pytest.approx(1.0)
    at0 = sup.positions[0]
    assert at0.position == 0 and at0.uncovered == pytest.approx(0.5)
    assert all(p.uncovered == 0 for p in sup.positions[1:])
    assert sup.uncovered == pytest.approx(0.5 * at0.exposures / sup.exposures)
    saved = json.loads((tmp_path / "out" / "replay.json").read_text())
    block = saved["scenarios"]["home_feed"]["support"]
    assert block["positions"][0] == {"position": 0, "exposures": at0.exposures, "mass": 1.0,
                                     "uncovered": 0.5}  # fmt: skip
    assert list(saved["scenarios"]["home_feed"])[-1] == "support"
    assert from_json(saved) == run and to_json(from_json(saved)) == saved
    md = format_markdown(run)
    assert "Support: " in md and "(by position: 0: 50.0%)" in md and "IPS counts it" in md
    assert run.scenarios["home_feed"].ctr.truth is not None  # the world values every item
    # a scenario without covered mass is reported beside the others; a table without any
    # covered mass is refused
    video = world.scenarios[1]
    elsewhere = np.setdiff1d(np.arange(world.items.n), video.pool)
    nowhere = pl.DataFrame([("immersive_video", int(elsewhere[0]), k, 1.0) for k in range(6)],
                           schema=COLUMNS, orient="row")  # fmt: skip
    both = run_offline(cfg, None, None, root / "logs", ["ips", "snips"],
                       policy_table=pl.concat([table, nowhere]))  # fmt: skip
    assert both.scenarios["immersive_video"].support.uncovered == 1
    assert both.scenarios["immersive_video"].ctr.estimates["ips"].estimate == 0
    assert both.scenarios["immersive_video"].ctr.estimates["snips"].estimate is None
    assert "Support: none of the table's mass is on items the logs showed" in format_markdown(both)
    with pytest.raises(UserError, match="none of the table's mass is on items the logs showed"):
        run_offline(cfg, None, None, root / "logs", ["ips"], policy_table=nowhere)
    beyond = pl.DataFrame([("home_feed", int(pool[0]), 50, 1.0)], schema=COLUMNS, orient="row")
    with pytest.raises(UserError, match="shows no item at any logged slot"):
        run_offline(cfg, None, None, root / "logs", ["ips"], policy_table=beyond)


def test_the_policy_argument_is_one_model_or_one_table(world_logs):
    cfg, root = world_logs
    table = pl.DataFrame([("home_feed", 1, 0, 1.0)], schema=COLUMNS, orient="row")
    for policy, tab in (("popular", table), (None, None)):
        with pytest.raises(UserError, match="a model or a policy table"):
            run_offline(cfg, policy, None, root / "logs", ["ips"], policy_table=tab)


# ---------------------------------------------------------------------------- from logs


def test_a_table_from_logged_behaviour(world_logs):
    _, root = world_logs
    logs = load_logged(root / "logs").logs
    table = policy_table_from_logs(logs, "logging")
    assert table.columns == COLUMNS
    sums = table.group_by("scenario", "position").agg(pl.col("probability").sum())
    assert np.allclose(sums["probability"].to_numpy(), 1.0)
    one = logs.filter((pl.col("policy") == "logging") & (pl.col("scenario") == "home_feed"))
    one = one.filter(pl.col("position") == 0)
    top = one["item_id"].mode().min()
    got = table.filter(
        (pl.col("scenario") == "home_feed") & (pl.col("position") == 0) & (pl.col("item_id") == top)
    )["probability"].item()
    assert got == pytest.approx((one["item_id"] == top).sum() / one.height)
    assert policy_table_from_logs(logs, "random")["probability"].sum() > 0  # = the uniform slice
    with pytest.raises(UserError, match="no logged rows of policy 'bts'; the logs' policies"):
        policy_table_from_logs(logs, "bts")


@pytest.mark.realdata
def test_bts_on_the_random_logs_of_an_imported_open_bandit_dataset(obd_sample, tmp_path):
    """End to end: the sample imported as one log folder (``python -m abtest import obd``:
    dense item codes per campaign), bts's behaviour there as a table, evaluated on the
    folder's uniform rows; bts's own CTR over the same time within 3 SEs of every estimate."""
    from simulator.log_import import import_obd

    folder = tmp_path / "obd"
    import_obd(obd_sample, folder)
    logs = load_logged(folder).logs
    table = policy_table_from_logs(logs, "bts")
    uniform = write_logs(tmp_path / "uniform", logs.filter(pl.col("policy") == UNIFORM))
    run = run_offline(None, None, None, uniform, ["ips", "snips", "dr"], policy_table=table)
    assert set(run.scenarios) == {"all", "men", "women"}
    for name, sc in run.scenarios.items():
        assert sc.support.uncovered == 0 and sc.support.left_out == 0
        bts = logs.filter((pl.col("policy") == "bts") & (pl.col("scenario") == name))
        on_policy = bts.filter(pl.col("timestamp") >= run.settings.evaluated_from)["click"].mean()
        for e in ("ips", "snips", "dr"):
            assert within(sc.ctr.estimates[e], on_policy, 3), (name, e, on_policy)


@pytest.mark.realdata
def test_bts_evaluated_on_the_random_logs_of_the_open_bandit_dataset(obd_sample, tmp_path):
    """The Open Bandit Dataset sample: bts's behaviour as a table (its per-position item
    frequencies), evaluated off-policy on the random policy's logs of each campaign; bts's
    own CTR over the same time (its on-policy value) lies within 3 SEs of every estimate."""
    for campaign in ("all", "men", "women"):
        bts, _, _ = obd_to_logs(obd_sample / "bts" / campaign / f"{campaign}.csv")
        rnd, _, _ = obd_to_logs(obd_sample / "random" / campaign / f"{campaign}.csv")
        path = tmp_path / f"bts_{campaign}.csv"
        policy_table_from_logs(bts, "bts").write_csv(path)
        folder = write_logs(tmp_path / campaign, rnd)
        run = run_offline(None, None, "random", folder, policy_table=path)
        assert run.policy == f"table:bts_{campaign}"
        sc = run.scenarios[campaign]
        assert sc.support.uncovered == 0 and sc.support.left_out == 0
        on_policy = bts.filter(pl.col("timestamp") >= run.settings.evaluated_from)["click"].mean()
        for e in ("ips", "snips", "dr"):
            est = sc.ctr.estimates[e]
            assert est.n == sc.exposures and not est.ci_withheld
            assert within(est, on_policy, 3), (campaign, e, est, on_policy)
