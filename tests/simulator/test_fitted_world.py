"""The fitted world: the engine's invariants on it, responses that match its probabilities,
the synthetic world inside its family, and the verified artefact (round trip, refusals)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil

import numpy as np
import polars as pl
import pytest

from core.config import config_from_dict
from core.digest import file_sha256
from core.errors import UserError
from simulator.engine import Engine
from simulator.fitted_params import FittedParams
from simulator.fitted_world import FittedWorld, fitted_config, load_world, save_world
from simulator.logs import LogWriter, start_datetime
from simulator.policies import LoggingPolicy, UniformPolicy
from simulator.synthetic import SyntheticWorld
from tests.conftest import tiny_tree
from tests.helpers import make_params, simulate, synthetic_params


@pytest.fixture(scope="module")
def template():
    return config_from_dict(tiny_tree(), "tiny")


@pytest.fixture(scope="module")
def params():
    return make_params(U=300, I=400, S=2, seed=3)


@pytest.fixture(scope="module")
def world(params, template):
    return FittedWorld(params, template)


@pytest.fixture(scope="module")
def logs(world):
    return simulate(world.config, LoggingPolicy, world=world)


def _affinity_by_formula(p: FittedParams, s, users, items):
    x = np.einsum("ij,bj->bi", p.scenario_transform[s], p.user_factors[users])
    return np.einsum("bd,bkd->bk", x, p.item_factors[items]) + p.item_bias[items]


def _slates(world, s, b, seed):
    """B random slates of scenario s (distinct items from its pool) and their users."""
    rng = np.random.default_rng(seed)
    sc = world.scenarios[s]
    keys = rng.random((b, sc.pool.size))
    items = sc.pool[np.argsort(keys, axis=1)[:, : sc.slate_size]]
    return rng.integers(0, world.users.n, b), items


# ------------------------------------------------------------------ the world and its config


def test_config_and_scenarios_follow_the_params(params, world, template):
    cfg = world.config
    assert (cfg.world.n_users, cfg.world.n_items) == (params.n_users, params.n_items)
    assert cfg.scenario_names == params.scenario_names
    assert tuple(s.kind for s in cfg.scenarios) == params.scenario_kinds
    assert [s.slate_size for s in cfg.scenarios] == params.slate_sizes.tolist()
    np.testing.assert_allclose([s.traffic_share for s in cfg.scenarios], params.traffic_share)
    assert cfg.leave.max_pages == params.max_pages
    assert cfg.traffic.sessions_per_user_day == params.sessions_per_user_day
    assert cfg.seed == template.seed and cfg.periods == template.periods
    assert set(cfg.world.content_types) <= set(params.content_type_names)
    assert tuple(cfg.world.profile_features) == params.profile_names
    for s, sc in enumerate(world.scenarios):
        assert (sc.index, sc.name, sc.kind) == (
            s,
            params.scenario_names[s],
            params.scenario_kinds[s],
        )
        np.testing.assert_array_equal(sc.pool, params.pools[s])
        assert sc.base_logit == params.scenario_base[s]
        np.testing.assert_array_equal(sc.position_bias, params.position_bias[s, : sc.slate_size])
    assert world.users.preference.shape == (params.n_scenarios, params.n_users, params.dim)
    assert world.items.views.shape == (params.n_scenarios, params.n_items, params.dim)
    np.testing.assert_array_equal(world.items.quality, params.item_bias)


def test_config_keeps_reserved_scenario_names_and_shrinks_tiers(template):
    p = make_params(U=50, I=60, S=2, seed=1)
    p = dataclasses.replace(p, scenario_names=("all", "overall"))
    cfg = fitted_config(p, template)
    assert cfg.scenario_names == ("all", "overall")
    # pools of 36 items: 6 x 4 = 24 fits, so the tier stays; 60 items of slate 6 x tier 8 do not
    assert cfg.logging_policy.tier_size == 4
    big = config_from_dict(
        tiny_tree() | {"logging_policy": {**tiny_tree()["logging_policy"], "tier_size": 8}}, "t"
    )
    assert fitted_config(p, big).logging_policy.tier_size == 6  # 36 // 6


def test_affinity_is_the_family_and_scores_are_batch_independent(params, world):
    s = 1
    users, items = _slates(world, s, 64, seed=0)
    aff = world.affinity(s, users, items)
    np.testing.assert_allclose(aff, _affinity_by_formula(params, s, users, items), atol=1e-4)
    pool = world.scenarios[s].pool
    full = world.affinity_matrix(s, users, pool)
    col = {int(i): j for j, i in enumerate(pool)}
    picked = np.take_along_axis(full, np.vectorize(col.get)(items), axis=1)
    np.testing.assert_array_equal(picked, aff)  # exact: scores on the grid
    for part in (slice(0, 1), slice(5, 37), slice(40, 64)):
        np.testing.assert_array_equal(world.affinity_matrix(s, users[part], pool), full[part])
        np.testing.assert_array_equal(world.affinity(s, users[part], items[part]), aff[part])
    p = world.click_probability(s, aff)
    expit = 1 / (1 + np.exp(-(aff + params.scenario_base[s])))
    np.testing.assert_allclose(p, expit * params.position_bias[s, : items.shape[1]])


def _bad(**change):
    return lambda p: dataclasses.replace(p, **{k: v(p) for k, v in change.items()})


BAD_PARAMS = [
    ("factor dims", _bad(item_factors=lambda p: p.item_factors[:, :-1]), "item_factors: shape"),
    ("share sum", _bad(traffic_share=lambda p: p.traffic_share * 2), "traffic_share: .*sum to 1"),
    (
        "nan bias",
        _bad(item_bias=lambda p: np.where(np.arange(p.n_items) == 3, np.nan, p.item_bias)),
        "item_bias: has NaN",
    ),
    (
        "pool range",
        _bad(pools=lambda p: (p.pools[0] + p.n_items, *p.pools[1:])),
        "pools\\[0\\]: item ids",
    ),
    ("kind", _bad(scenario_kinds=lambda p: ("feed", "carousel")), "unknown kind 'carousel'"),
    ("theta[0]", _bad(position_bias=lambda p: p.position_bias * 0.5), "must start with 1"),
    ("max pages", _bad(max_pages=lambda p: 0), "max_pages: must be >= 1"),
    (
        "content code",
        _bad(content_type=lambda p: p.content_type + 3),
        "content_type: codes outside",
    ),
    ("float ids", _bad(category=lambda p: p.category.astype(float)), "category: dtype float64"),
]


@pytest.mark.parametrize(("change", "match"), [r[1:] for r in BAD_PARAMS],
                         ids=[r[0] for r in BAD_PARAMS])  # fmt: skip
def test_check_refuses_inconsistent_params(params, change, match):
    assert params.check() is params
    with pytest.raises(ValueError, match=match):
        change(params).check()


# ------------------------------------------------------------------ the engine's invariants


def test_same_seed_gives_identical_logs(world, logs):
    assert logs.height > 2000
    assert simulate(world.config, LoggingPolicy, world=world).equals(logs)


def test_batch_window_does_not_change_events(world, logs):
    assert world.config.engine.batch_window > 0  # the default window the logs were made with
    for window in (0.0, 0.01):
        assert simulate(world.config, LoggingPolicy, world=world, window=window).equals(logs)


def test_different_seed_gives_different_logs(world, logs):
    cfg = world.config.with_seed(world.config.seed + 1)
    assert not simulate(cfg, LoggingPolicy, world=world).equals(logs)


def test_a_shard_of_users_sees_exactly_its_rows_of_the_whole_run(world, logs):
    cfg = world.config
    users = np.arange(0, world.users.n, 3)
    policy = LoggingPolicy(world, cfg.seed)
    with LogWriter(world, [policy.name]) as writer:
        Engine(world, [policy], [writer], seed=cfg.seed, users=users).run(
            0, cfg.periods.total_days, progress=False
        )
        shard = writer.lazy().sort("timestamp", "request_id", "position").collect()
    assert shard.height > 0
    assert shard.equals(logs.filter(pl.col("user_id").is_in(users.tolist())))


def test_sessions_are_well_formed(world, logs):
    pages = logs.group_by("request_id").agg(
        pl.col("session_id").first(), pl.col("scenario").first(), k=pl.len(),
        page=pl.col("request_id").first() % 1024, t=pl.col("timestamp").first(),
    )  # fmt: skip
    per = pages.group_by("session_id").agg(
        n=pl.len(), top=pl.col("page").max(),
        gap=pl.col("t").sort_by("page").diff().dt.total_seconds().min(),
    )  # fmt: skip
    assert (per["n"] == per["top"] + 1).all()
    assert per["n"].max() <= world.config.leave.max_pages
    assert per["n"].max() > 1
    assert per["gap"].drop_nulls().min() >= 2  # think times >= 2 s: browse floor
    slate = {s.name: s.slate_size for s in world.scenarios}
    assert all(k == slate[s] for s, k in pages.select("scenario", "k").iter_rows())


# ------------------------------------------------------------------ responses match the model


@pytest.mark.parametrize("s", [0, 1], ids=["feed", "immersive"])
def test_clicks_and_watch_time_match_their_probabilities(world, s):
    b = 20_000
    users, items = _slates(world, s, b, seed=s)
    rid = np.arange(b, dtype=np.int64) * 1024 + 7
    resp = world.respond(s, users, items, rid, np.zeros(b, dtype=np.int64), seed=11)
    aff = world.affinity(s, users, items)
    p = world.click_probability(s, aff)
    # per position: clicks ~ sum of Bernoulli(p): within 4 sd
    sd = np.sqrt((p * (1 - p)).sum(axis=0))
    assert np.all(np.abs(resp.click.sum(axis=0) - p.sum(axis=0)) < 4 * sd + 1)
    # expected watch time (clicks and skips included) vs the sampled mean
    want = world.expected_watch_time(s, items, aff)
    watch = resp.watch_time
    err = abs(watch.mean() - want.mean())
    assert err < 4 * watch.std() / np.sqrt(watch.size)
    assert np.all(watch >= 0) and np.all(watch <= world.items.duration[items] + 1e-9)
    if world.scenarios[s].kind == "feed":
        assert np.all((watch > 0) == (resp.click == 1))
    else:
        assert np.all(watch > 0)  # every immersive exposure autoplays


def test_responses_are_keyed_by_request_not_batch(world):
    s = 0
    users, items = _slates(world, s, 300, seed=5)
    rid = np.arange(300, dtype=np.int64) * 1024
    page = np.arange(300) % 3
    whole = world.respond(s, users, items, rid, page, seed=2)
    order = np.random.default_rng(0).permutation(300)
    halves = [order[:100], order[100:]]
    for idx in halves:
        part = world.respond(s, users[idx], items[idx], rid[idx], page[idx], seed=2)
        for f in dataclasses.fields(whole):
            np.testing.assert_array_equal(getattr(part, f.name), getattr(whole, f.name)[idx])


def test_leave_and_think_time(world, params):
    s = 1
    b = 20_000
    users, items = _slates(world, s, b, seed=9)
    rid = np.arange(b, dtype=np.int64) * 1024
    last = np.full(b, params.max_pages - 1)
    assert not world.respond(s, users, items, rid, last, seed=4).cont.any()  # the page cap
    resp = world.respond(s, users, items, rid, np.zeros(b, dtype=np.int64), seed=4)
    browse = resp.think_time - resp.watch_time.sum(axis=1)
    assert browse.min() >= 2.0 - 1e-9
    assert abs(browse.mean() - 2.0 - params.think_seconds[s]) < 4 * browse.std() / np.sqrt(b)
    frac = resp.watch_time / world.items.duration[items]
    p = world.continue_probability(s, resp.click, frac)
    assert abs(resp.cont.mean() - p.mean()) < 4 * np.sqrt(p.mean() * (1 - p.mean()) / b)


# ------------------------------------------------------------------ the synthetic world is inside


@pytest.fixture(scope="module")
def synthetic(template):
    truth = SyntheticWorld(template)
    return truth, FittedWorld(synthetic_params(truth), template)


def test_family_contains_the_synthetic_world(synthetic):
    truth, fitted = synthetic
    for s, sc in enumerate(truth.scenarios):
        users, items = _slates(truth, s, 50, seed=s)
        aff = truth.affinity(s, users, items)
        np.testing.assert_array_equal(fitted.affinity(s, users, items), aff)
        np.testing.assert_array_equal(
            fitted.affinity_matrix(s, users, sc.pool), truth.affinity_matrix(s, users, sc.pool)
        )
        np.testing.assert_array_equal(
            fitted.click_probability(s, aff), truth.click_probability(s, aff)
        )
        np.testing.assert_array_equal(
            fitted.expected_watch_time(s, items, aff), truth.expected_watch_time(s, items, aff)
        )
        rid = np.arange(50, dtype=np.int64) * 1024
        a = fitted.respond(s, users, items, rid, rid % 5, seed=1)
        b = truth.respond(s, users, items, rid, rid % 5, seed=1)
        for f in dataclasses.fields(a):
            np.testing.assert_array_equal(getattr(a, f.name), getattr(b, f.name))


def test_synthetic_params_replay_the_synthetic_logs(synthetic, template):
    truth, fitted = synthetic
    assert fitted.config.logging_policy == template.logging_policy
    want = simulate(template, LoggingPolicy, world=truth, days=1)
    assert simulate(fitted.config, LoggingPolicy, world=fitted, days=1).equals(want)


# ------------------------------------------------------------------ A/A on the fitted world


def test_aa_on_the_fitted_world_rejects_at_about_alpha(world, logs):
    from abtest.online.experiment import run_experiment
    from abtest.online.validity import aa_study, binomial_band

    cfg = world.config
    pre_end = start_datetime(world) + dt.timedelta(days=cfg.periods.pre_days)
    pre = logs.filter(pl.col("timestamp") < pre_end)
    days = cfg.periods.experiment_days
    policies = (UniformPolicy(world, 5), UniformPolicy(world, 5))
    data = run_experiment(cfg, world, policies, pre, names=("a", "b"), days=days,
                          seed=cfg.seed, progress=False)  # fmt: skip
    np.testing.assert_array_equal(data.truth[0], data.truth[1])  # A/A: the same outcomes
    runs = 100
    traffic = {s.name: s.traffic_share for s in world.scenarios}
    res = aa_study(data, traffic, dict(cfg.experiment.allocation), runs)
    lo, hi = binomial_band(0.05, runs)
    rates = [r for per in res.rate.values() for r in per.values() if r == r]
    assert rates and lo <= float(np.mean(rates)) <= hi


# ------------------------------------------------------------------ the artefact


META = {"logs_sha256": "a" * 64, "settings": {"dim": 4}, "diagnostics": {"logloss": 0.31}}


@pytest.fixture(scope="module")
def saved(params, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fitted") / "world"
    save_world(folder, params, META)
    return folder


def test_artefact_round_trip_is_bit_identical(params, saved):
    got, meta = load_world(saved, expect={"logs_sha256": META["logs_sha256"]})
    assert meta == META
    for f in dataclasses.fields(FittedParams):
        a, b = getattr(params, f.name), getattr(got, f.name)
        if f.name == "pools":
            assert len(a) == len(b)
            for x, y in zip(a, b, strict=True):
                np.testing.assert_array_equal(x, y, strict=True)
        elif isinstance(a, np.ndarray):
            np.testing.assert_array_equal(a, b, strict=True)  # NaN where NaN, same dtype
        else:
            assert a == b and type(a) is type(b), f.name
    assert sorted(p.name for p in saved.iterdir()) == ["params.npz", "world.json"]


def test_saving_again_replaces_the_artefact_and_a_failed_save_leaves_it(params, tmp_path):
    folder = tmp_path / "w"
    save_world(folder, params, META)
    other = dataclasses.replace(params, skip_seconds=3.5)
    save_world(folder, other, {**META, "settings": {"dim": 5}})
    got, meta = load_world(folder)
    assert got.skip_seconds == 3.5 and meta["settings"] == {"dim": 5}
    with pytest.raises(UserError, match="meta is not JSON"):
        save_world(folder, params, {"bad": object()})
    got, _ = load_world(folder)  # the previous artefact, intact
    assert got.skip_seconds == 3.5
    assert sorted(p.name for p in folder.iterdir()) == ["params.npz", "world.json"]


def _reseal(folder, edit_body=None):
    """Make world.json consistent again after a deliberate edit (the sha256s recomputed)."""
    from simulator.fitted_world import _self_digest

    path = folder / "world.json"
    body = json.loads(path.read_text())
    if edit_body:
        edit_body(body)
    body["files"]["params.npz"] = file_sha256(folder / "params.npz")
    body["world_sha256"] = _self_digest(body)
    path.write_text(json.dumps(body))


def _rewrite_npz(folder, change):
    with np.load(folder / "params.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    np.savez(folder / "params.npz", **arrays)


def _flip_byte(folder):
    path = folder / "params.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _edit_meta(folder):
    path = folder / "world.json"
    path.write_text(path.read_text().replace("0.31", "0.29"))


def _wrong_shape(folder):
    _rewrite_npz(folder, lambda a: a.update(item_bias=a["item_bias"][:-1]))
    _reseal(folder)


def _inconsistent_shape(folder):
    _rewrite_npz(folder, lambda a: a.update(item_bias=a["item_bias"][:-1]))
    _reseal(folder, lambda b: b["shapes"].update(item_bias=[b["shapes"]["item_bias"][0] - 1]))


def _missing_array(folder):
    _rewrite_npz(folder, lambda a: a.pop("leave"))
    _reseal(folder)


def _extra_array(folder):
    _rewrite_npz(folder, lambda a: a.update(secret=np.zeros(3)))
    _reseal(folder)


def _pickled_array(folder):
    obj = np.array([{"x": 1}], dtype=object)
    with np.load(folder / "params.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["item_bias"] = obj
    np.savez(folder / "params.npz", allow_pickle=True, **arrays)
    _reseal(folder, lambda b: b["shapes"].update(item_bias=[1]))


def _bad_range(folder):
    _rewrite_npz(folder, lambda a: a.update(duration=-a["duration"]))
    _reseal(folder)


def _garbage_npz(folder):
    (folder / "params.npz").write_bytes(b"not a zip file")
    _reseal(folder)


REFUSALS = [
    ("tampered npz", _flip_byte, None, "params.npz changed since it was written"),
    ("edited json", _edit_meta, None, "world.json changed since it was written"),
    ("missing npz", lambda f: (f / "params.npz").unlink(), None, "params.npz is missing"),
    ("missing json", lambda f: (f / "world.json").unlink(), None, "no world.json"),
    ("missing folder", lambda f: shutil.rmtree(f), None, "no such folder"),
    (
        "garbage json",
        lambda f: (f / "world.json").write_text("{"),
        None,
        "world.json is unreadable",
    ),
    ("json list", lambda f: (f / "world.json").write_text("[]"), None, "a JSON object expected"),
    ("garbage npz", _garbage_npz, None, r"params.npz is unreadable \(not an npz archive"),
    ("wrong shape", _wrong_shape, None, r"array item_bias has shape \[399\], world.json records"),
    ("inconsistent", _inconsistent_shape, None, r"inconsistent parameters: .*item_bias"),
    ("missing array", _missing_array, None, "missing array leave"),
    ("extra array", _extra_array, None, "unexpected array secret"),
    ("pickle", _pickled_array, None, "params.npz is unreadable .*allow_pickle"),
    ("bad range", _bad_range, None, "inconsistent parameters: .*duration"),
    ("other logs", lambda f: None, {"logs_sha256": "b" * 64}, "fitted from other logs"),
    ("other settings", lambda f: None, {"settings": {"dim": 8}}, "fitted with other settings"),
]


@pytest.mark.parametrize(
    ("damage", "expect", "match"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS]
)
def test_a_damaged_or_mismatched_artefact_is_refused(saved, tmp_path, damage, expect, match):
    folder = tmp_path / "world"
    shutil.copytree(saved, folder)
    damage(folder)
    with pytest.raises(UserError, match=match) as err:
        load_world(folder, expect=expect)
    assert "\n" not in str(err.value) and str(folder) in str(err.value)
