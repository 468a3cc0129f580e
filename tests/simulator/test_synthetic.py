"""The ground-truth world and its response model."""

import hashlib
import math

import numpy as np
import pytest
from scipy import stats

from core import keyed
from core.config import ConfigError, config_from_dict
from simulator.synthetic import SyntheticWorld, quantise
from tests.conftest import tiny_tree


@pytest.fixture(scope="module")
def world() -> SyntheticWorld:
    return SyntheticWorld(config_from_dict(tiny_tree(), "tiny"))


def test_world_is_deterministic_and_seeded():
    a = SyntheticWorld(config_from_dict(tiny_tree(), "tiny"))
    b = SyntheticWorld(config_from_dict(tiny_tree(), "tiny"))
    tree = tiny_tree()
    tree["seed"] = 1
    c = SyntheticWorld(config_from_dict(tree, "tiny"))
    assert np.array_equal(a.users.preference, b.users.preference)
    assert np.array_equal(a.items.duration, b.items.duration)
    assert not np.array_equal(a.users.preference, c.users.preference)


def test_world_structure(world):
    cfg = world.config
    s, u, d = len(cfg.scenarios), cfg.world.n_users, cfg.world.latent_dim
    assert world.users.preference.shape == (s, u, d)
    assert np.allclose(np.linalg.norm(world.users.preference, axis=-1), 1, atol=1e-2)
    assert np.array_equal(world.users.preference, quantise(world.users.preference))
    assert world.users.activity.mean() == pytest.approx(1.0, rel=0.15)
    # pools follow content types and overlap
    for sc in world.scenarios:
        allowed = [
            world.items.content_type_names.index(c) for c in cfg.scenarios[sc.index].content_types
        ]
        assert np.isin(world.items.content_type[sc.pool], allowed).all()
    assert np.intersect1d(world.scenarios[0].pool, world.scenarios[1].pool).size > 0
    # durations follow their content type's mean
    for t, name in enumerate(world.items.content_type_names):
        mean = cfg.world.content_types[name].mean_duration
        assert world.items.duration[world.items.content_type == t].mean() == pytest.approx(
            mean, rel=0.3
        )


def test_scenario_preferences_mix_shared_interest(world):
    # The higher a scenario's shared_interest, the closer its preferences to the shared vector.
    sims = [
        np.mean(np.sum(world.users.preference[sc.index] * world.users.shared, axis=1))
        for sc in world.scenarios
    ]
    weights = [sc.shared_interest for sc in world.scenarios]
    assert stats.spearmanr(sims, weights).statistic > 0.9


def test_profile_features_carry_interest_signal(world):
    # A profile level's users share interests more than random users do.
    g = world.users.shared
    labels = world.users.profile[:, 0]
    centroid_norms = [np.linalg.norm(g[labels == lv].mean(axis=0)) for lv in np.unique(labels)]
    rng = np.random.default_rng(0)
    random_norms = [np.linalg.norm(g[rng.choice(len(g), (labels == lv).sum())].mean(axis=0))
                    for lv in np.unique(labels)]  # fmt: skip
    assert np.mean(centroid_norms) > 2 * np.mean(random_norms)


def test_click_probability_rises_with_affinity_and_falls_with_position(world):
    aff = np.linspace(-6, 6, 50)[:, None] * np.ones((1, world.scenarios[0].slate_size))
    for sc in world.scenarios:
        p = world.click_probability(sc.index, aff[:, : sc.slate_size])
        assert np.all(np.diff(p, axis=0) > 0)  # rising in affinity
        assert np.all(np.diff(p, axis=1) <= 0)  # position bias: never rising down the page
        assert np.all(np.diff(sc.position_bias) <= 0) and sc.position_bias[0] == 1


def test_expected_watch_time_rises_with_affinity(world):
    aff = np.linspace(-6, 6, 50)[:, None]
    for sc in world.scenarios:
        w = world.expected_watch_time(sc.index, np.tile(sc.pool[:1], (50, 1)), aff)
        assert np.all(np.diff(w[:, 0]) > 0), sc.name


def test_continue_probability_rises_with_satisfaction(world):
    clicks = np.array([[0, 0, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]], dtype=float)
    p = world.continue_probability(clicks, np.zeros_like(clicks))
    assert np.all(np.diff(p) > 0)
    frac = np.array([[0.0], [0.3], [0.9]])
    p = world.continue_probability(np.zeros_like(frac), frac)
    assert np.all(np.diff(p) > 0)


def _scalar_reference(world, scenario, user, items, rid, page, seed):
    """One exposure at a time, with math and scipy: the spec the vectorised code must match."""
    cfg = world.config
    sc = world.scenarios[scenario]
    clicks, watches = [], []
    for k, item in enumerate(items):
        pref = world.users.preference[scenario, user]
        view = world.items.views[scenario, item]
        cos = sum(float(a) * float(b) for a, b in zip(pref, view, strict=True))
        aff = cfg.world.affinity_scale * cos
        aff += world.items.quality[item]
        p = (
            1
            / (1 + math.exp(-(aff + sc.base_logit)))
            / (1 + k) ** cfg.scenarios[scenario].position_decay
        )
        click = float(keyed.uniform(seed, "click", rid, k)) < p
        dur = world.items.duration[item]
        completion = 0.0
        if click:
            c = cfg.world.completion
            mean = 1 / (1 + math.exp(-(c.intercept + c.slope * aff)))
            u = float(keyed.uniform(seed, "completion", rid, k))
            completion = stats.beta.ppf(u, mean * c.concentration, (1 - mean) * c.concentration)
        watch = dur * completion
        if sc.kind == "immersive":
            e = -math.log(float(keyed.uniform(seed, "skip", rid, k)))
            skip = min(dur, cfg.world.skip_seconds * e)
            watch = skip + (dur - skip) * completion
        clicks.append(int(click))
        watches.append(watch)
    lv = cfg.leave
    frac = np.mean([w / world.items.duration[i] for w, i in zip(watches, items, strict=True)])
    z = lv.intercept + lv.click_weight * np.mean(clicks) + lv.watch_weight * frac
    cont = (
        float(keyed.uniform(seed, "leave", rid)) < 1 / (1 + math.exp(-z))
        and page + 1 < lv.max_pages
    )
    return clicks, watches, cont


@pytest.mark.parametrize("scenario", [0, 1])  # a feed and an immersive scenario
def test_vectorised_response_equals_scalar_reference(world, scenario):
    rng = np.random.default_rng(scenario)
    sc = world.scenarios[scenario]
    b = 40
    users = rng.integers(0, world.users.n, b)
    items = np.stack([rng.choice(sc.pool, sc.slate_size, replace=False) for _ in range(b)])
    rids = rng.integers(0, 2**40, b)
    page = rng.integers(0, 3, b)
    resp = world.respond(scenario, users, items, rids, page, seed=99)
    for r in range(b):
        clicks, watches, cont = _scalar_reference(
            world, scenario, users[r], items[r], rids[r], page[r], 99
        )
        assert resp.click[r].tolist() == clicks
        np.testing.assert_allclose(resp.watch_time[r], watches, rtol=1e-9, atol=1e-9)
        assert bool(resp.cont[r]) == cont
    assert resp.click.sum() > 0


def test_sampled_responses_match_expectations(world):
    # Monte Carlo over many request ids: mean clicks and watch time match the closed forms.
    for sc in world.scenarios[:2]:
        n = 20_000
        users = np.full(n, 5)
        items = np.tile(sc.pool[: sc.slate_size], (n, 1))
        resp = world.respond(sc.index, users, items, np.arange(n), np.zeros(n, dtype=int), seed=3)
        aff = world.affinity(sc.index, users[:1], items[:1])
        p = world.click_probability(sc.index, aff)[0]
        se = np.sqrt(p * (1 - p) / n)
        assert np.all(np.abs(resp.click.mean(axis=0) - p) < 4.5 * se + 1e-12), sc.name
        ew = world.expected_watch_time(sc.index, items[:1], aff)[0]
        sw = resp.watch_time.std(axis=0) / np.sqrt(n)
        assert np.all(np.abs(resp.watch_time.mean(axis=0) - ew) < 4.5 * sw + 1e-9), sc.name


# ---------------------------------------------------------------- systematic scenario shift

# sha256 of the world arrays of tiny_tree() with these seeds, computed by the code before
# `systematic_shift` existed (commit 96e944e): a shift of 0 must reproduce them bit for bit
TODAYS_WORLD = {
    1: "9811a6cfe40da75a5e9b0ac7378a7d89431184f37172adf0ef5e58353fd52c06",
    20221017: "137fbe82467840313963a2b121f5d9fd4ba5fafd3e546f0a9eb4ae7e26fa5706",
}


def _world(seed: int = 1, n_users: int = 300, **scenario) -> SyntheticWorld:
    tree = tiny_tree(n_users=n_users)
    tree["seed"] = seed
    for sc in tree["scenarios"]:
        sc.update(scenario)
    return SyntheticWorld(config_from_dict(tree, "t"))


@pytest.mark.parametrize("seed", list(TODAYS_WORLD))
def test_zero_systematic_shift_is_todays_world_bit_for_bit(seed):
    w = _world(seed, systematic_shift=0.0)  # the default world now sets a shift
    assert all(sc.systematic_shift == 0 for sc in w.config.scenarios)
    h = hashlib.sha256()
    for a in (w.users.shared, w.users.preference, w.users.activity, w.users.profile,
              w.items.latent, w.items.views, w.items.category, w.items.duration,
              w.items.quality):  # fmt: skip
        h.update(np.ascontiguousarray(a).tobytes())
    assert h.hexdigest() == TODAYS_WORLD[seed]


def test_full_shift_without_shared_interest_is_the_scenario_transform():
    w = _world(shared_interest=0.0, systematic_shift=1.0)
    for s, shift in enumerate(w.shifts):
        np.testing.assert_array_equal(w.users.preference[s], quantise(shift.apply(w.users.shared)))
    # the transform is the scenario's, not the user's: scenarios differ
    assert not np.allclose(w.users.preference[0], w.users.preference[1])


def _probe_r2(w: SyntheticWorld, s: int) -> float:
    """R^2 on held-out users of a linear probe predicting preference_s from shared interest."""
    g, y = w.users.shared, w.users.preference[s]
    x = np.hstack([g, np.ones((g.shape[0], 1))])
    cut = int(0.8 * g.shape[0])
    coef, *_ = np.linalg.lstsq(x[:cut], y[:cut], rcond=None)
    resid = y[cut:] - x[cut:] @ coef
    total = y[cut:] - y[cut:].mean(axis=0)
    return 1.0 - float((resid**2).sum() / (total**2).sum())


@pytest.mark.parametrize(("shift", "low", "high"), [(1.0, 0.9, 1.0), (0.0, -0.1, 0.05)])
def test_the_shift_is_learnable_from_pooled_users_and_the_idiosyncratic_part_is_not(
    shift, low, high
):
    w = _world(n_users=3000, shared_interest=0.0, systematic_shift=shift)
    for s in range(len(w.scenarios)):
        assert low < _probe_r2(w, s) <= high, (s, _probe_r2(w, s))


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_systematic_shift_out_of_range_is_refused(bad):
    tree = tiny_tree()
    tree["scenarios"][2]["systematic_shift"] = bad
    with pytest.raises(ConfigError, match=r"scenarios\[2\]\.systematic_shift"):
        config_from_dict(tree, "t")
