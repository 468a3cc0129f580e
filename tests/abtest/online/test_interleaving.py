"""abtest.online.interleaving: the team-draft merge, the interleaved policy, the credit sink
and the interleaving run."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from abtest.online.experiment import simulate_period
from abtest.online.interleaving import (
    VECTORISE_FROM,
    CreditStats,
    InterleavedPolicy,
    _draft_columns,
    _draft_rows,
    lookup,
    round_coins,
    run_interleaving,
    team_draft,
)
from abtest.online.user_stats import PAGES
from abtest.serving import RecallPolicy, RecallScoreRanker, build_policy
from models.data import ItemTable
from models.floors import RandomRecaller
from models.recaller import Recaller
from simulator.policies import RequestBatch, Slates, UniformPolicy
from simulator.world import Responses, World
from tests.conftest import AB_DAYS, FAST

DAYS = AB_DAYS


# ---------------------------------------------------------------------------- fixtures


class TruthRecaller(Recaller):
    """Recalls by the world's true affinity: user [scale * preference, 1] . item [view,
    quality] is the affinity, up to a positive factor per user."""

    name = "truth"

    def __init__(self, world: World):
        super().__init__(ItemTable.from_world(world))
        self.world = world
        views, quality = world.items.views, world.items.quality
        self._item_norm = float(np.sqrt((views**2).sum(axis=2) + quality[None, :] ** 2).max())

    def user_vectors(self, f: dict[str, np.ndarray]) -> np.ndarray:
        pref = self.world.users.preference[f["scenario"], f["user_id"]]
        v = np.concatenate(
            [self.world.config.world.affinity_scale * pref, np.ones((len(pref), 1))], 1
        )
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def pool_vectors(self, scenario: int, pool: np.ndarray) -> np.ndarray:
        v = np.concatenate(
            [self.world.items.views[scenario, pool], self.world.items.quality[pool, None]], 1
        )
        return v / self._item_norm


@pytest.fixture(scope="module")
def tiny(tiny_ab):
    cfg, world, logs = tiny_ab
    items = ItemTable.from_world(world)
    recallers = {
        "random": RandomRecaller(items, seed=1),
        "other": RandomRecaller(items, seed=2),
        "truth": TruthRecaller(world),
    }
    return cfg, world, logs, recallers


def _arms(tiny, control: str, treatment: str, **serving) -> tuple[RecallPolicy, RecallPolicy]:
    cfg, world, _, rec = tiny
    s = dataclasses.replace(cfg.serving, **serving)
    return tuple(build_policy(n, world, rec[n], s, cfg.seed) for n in (control, treatment))


def _batch(world: World, scenario: int, users: np.ndarray, request_id: np.ndarray) -> RequestBatch:
    n = users.size
    h = world.config.world.history_length
    return RequestBatch(
        scenario,
        request_id.astype(np.int64),
        np.arange(n, dtype=np.int64),
        users.astype(np.int64),
        np.zeros(n, dtype=np.int64),
        np.full(n, 3 * 86_400.0),
        np.full((n, h), -1, dtype=np.int64),
        np.full((n, h), -1, dtype=np.int64),
    )


def _run(tiny, control: str, treatment: str, *, window=21_600.0, ranker="noisy_truth", **kw):
    """An interleaving run; a long batch window by default: the events do not depend on it
    (test_credit_does_not_depend_on_the_batch_window), fewer larger batches run faster."""
    cfg, world, logs, _ = tiny
    cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, batch_window=window))
    c, t = _arms(tiny, control, treatment, ranker=ranker)
    return run_interleaving(
        cfg, world, c, t, logs, names=(control, treatment), days=DAYS, seed=cfg.seed,
        progress=False, **kw,
    )  # fmt: skip


# ---------------------------------------------------------------------------- team_draft

# B pairs of ranked lists of ids from a small universe (so they share items), -1-padded at
# the end; some have -1 slots inside and repeated ids too (a team skips both)
_ids = st.one_of(
    st.lists(st.integers(0, 15), max_size=10, unique=True),
    st.lists(st.integers(-1, 15), max_size=10),
)
_lists = st.integers(1, 6).flatmap(
    lambda rows: st.tuples(
        st.lists(
            st.tuples(_ids, _ids),
            min_size=rows,
            max_size=rows,
        ),
        st.lists(st.lists(st.booleans(), min_size=12, max_size=12), min_size=rows, max_size=rows),
        st.integers(1, 22),
    )
)


def _real(ids: list[int]) -> set[int]:
    return {i for i in ids if i >= 0}


def _padded(lists: list[list[int]], width: int = 10) -> np.ndarray:
    return np.array([row + [-1] * (width - len(row)) for row in lists], dtype=np.int64)


def _draft(case):
    pairs, coins, length = case
    a, b = _padded([p[0] for p in pairs]), _padded([p[1] for p in pairs])
    items, team = team_draft(a, b, np.array(coins), length)
    return pairs, coins, length, items, team


@FAST
@given(_lists)
def test_team_draft_fills_every_slot_while_items_remain_without_duplicates(case):
    pairs, _, length, items, team = _draft(case)
    assert items.shape == team.shape == (len(pairs), length)
    for (a, b), row, tr in zip(pairs, items, team, strict=True):
        union = _real(a) | _real(b)
        n = min(length, len(union))
        assert (row[:n] >= 0).all() and (row[n:] == -1).all()
        assert (tr[:n] >= 0).all() and (tr[n:] == -1).all()
        assert len(set(row[:n].tolist())) == n and set(row[:n].tolist()) <= union


@FAST
@given(_lists)
def test_team_draft_alternates_while_both_teams_have_items(case):
    pairs, _, _, items, team = _draft(case)
    for (a, b), row, tr in zip(pairs, items, team, strict=True):
        for p in range(1, row.size + 1):
            taken = set(row[: p - 1].tolist())
            if not (_real(a) - taken and _real(b) - taken):
                break  # a team ran out before pick p: the other picks alone from here
            diff = int((tr[:p] == 1).sum()) - int((tr[:p] == 0).sum())
            assert abs(diff) <= 1
            if p % 2 == 0:
                assert diff == 0  # every full round is one pick each


@FAST
@given(_lists)
def test_each_team_picks_its_best_item_not_yet_taken(case):
    pairs, coins, _, items, team = _draft(case)
    for (a, b), row, tr, coin in zip(pairs, items, team, coins, strict=True):
        for p in np.flatnonzero(tr >= 0).tolist():
            own = b if tr[p] == 1 else a
            taken = set(row[:p].tolist())
            assert row[p] == next(i for i in own if i >= 0 and i not in taken)
            if p % 2 == 0 and _real(a) - taken and _real(b) - taken:
                assert tr[p] == coin[p // 2]  # a round's coin says who opens it


@FAST
@given(_lists)
def test_the_row_loop_and_the_vectorised_merge_agree(case):
    pairs, coins, length = case
    a, b = _padded([p[0] for p in pairs]), _padded([p[1] for p in pairs])
    rows = _draft_rows(a, b, np.array(coins), length)
    cols = _draft_columns(a, b, np.array(coins), length)
    for x, y in zip(rows, cols, strict=True):
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("n_rows", [10, VECTORISE_FROM + 10])
def test_identical_lists_give_the_list_with_teams_from_the_coins(n_rows):
    rng = np.random.default_rng(3)
    lists = np.stack([rng.permutation(50) for _ in range(n_rows)])
    coins = round_coins(7, np.arange(n_rows) * 1024, 25)
    items, team = team_draft(lists, lists.copy(), coins, 50)
    np.testing.assert_array_equal(items, lists)
    np.testing.assert_array_equal(team[:, 0::2], coins.astype(np.int8))
    np.testing.assert_array_equal(team[:, 1::2], 1 - coins.astype(np.int8))


def test_first_pick_goes_to_the_treatment_in_half_the_requests():
    n = 2000
    a = np.tile(np.arange(10), (n, 1))
    _, team = team_draft(a, a + 100, round_coins(0, np.arange(n) * 1024, 5), 10)
    first = int((team[:, 0] == 1).sum())
    assert abs(first - n / 2) < 4 * np.sqrt(n / 4)
    # and the picks balance: every row has 5 of each
    assert ((team == 1).sum(axis=1) == 5).all()


def test_one_team_running_out_leaves_the_rest_to_the_other():
    a = np.array([[1, -1, -1, -1]])
    b = np.array([[1, 2, 3, 4]])
    items, team = team_draft(a, b, np.array([[False, False, False]]), 6)
    np.testing.assert_array_equal(items, [[1, 2, 3, 4, -1, -1]])
    np.testing.assert_array_equal(team, [[0, 1, 1, 1, -1, -1]])


def test_team_draft_refuses_too_few_coins():
    a = np.zeros((2, 4), dtype=np.int64)
    with pytest.raises(ValueError, match="one coin per round"):
        team_draft(a, a, np.zeros((2, 1), dtype=bool), 4)


def test_lookup_finds_each_item_in_its_row():
    ids = np.array([[5, 3, -1], [7, 5, 3]])
    vals = np.array([[0.5, 0.3, 9.0], [0.7, 0.55, 0.33]])
    got = lookup(ids, vals, np.array([[3, 5, 7, -1], [3, 5, 7, -1]]))
    np.testing.assert_array_equal(got, [[0.3, 0.5, np.nan, np.nan], [0.33, 0.55, 0.7, np.nan]])


# ---------------------------------------------------------------------------- the policy


@pytest.mark.parametrize("variant", ["recall", "slate"])
def test_interleaved_slates_are_valid_and_batch_invariant(tiny, variant):
    cfg, world, _, _ = tiny
    c, t = _arms(tiny, "random", "truth")
    policy = InterleavedPolicy(c, t, seed=cfg.seed, variant=variant)
    n = VECTORISE_FROM + 20  # whole: the vectorised merge; halves: the row loop
    users, rid = np.arange(n) * 2, np.arange(n, dtype=np.int64) * 1024 + 3
    for s, sc in enumerate(world.scenarios):
        b = _batch(world, s, users, rid)
        whole = policy.serve(b)
        items, team = whole.items, whole.team
        assert items.shape == team.shape == (n, sc.slate_size)
        assert np.isin(items, sc.pool).all() and np.isin(team, (0, 1)).all()
        assert all(np.unique(row).size == row.size for row in items)
        assert np.isnan(whole.propensity).all() and (whole.component == 0).all()
        for team_id, arm in ((0, c), (1, t)):  # every item comes from its team's arm
            src = arm.recall(b)[0] if variant == "recall" else arm.serve(b).items
            for r in range(n):
                assert np.isin(items[r][team[r] == team_id], src[r]).all()
        half = n // 2
        parts = [policy.serve(_batch(world, s, users[i : i + half], rid[i : i + half]))
                 for i in (0, half)]  # fmt: skip
        rev = policy.serve(_batch(world, s, users[::-1], rid[::-1]))
        for got in (np.concatenate([p.items for p in parts]), rev.items[::-1]):
            np.testing.assert_array_equal(got, items)
        for got in (np.concatenate([p.team for p in parts]), rev.team[::-1]):
            np.testing.assert_array_equal(got, team)


def test_few_candidates_are_filled_from_the_pool_for_no_team(tiny):
    cfg, world, _, _ = tiny
    c, t = _arms(tiny, "random", "other", candidates=2)
    policy = InterleavedPolicy(c, t, seed=cfg.seed)
    s = max(range(len(world.scenarios)), key=lambda i: world.scenarios[i].slate_size)
    users = np.arange(20)
    slates = policy.serve(_batch(world, s, users, users * 1024))
    k = world.scenarios[s].slate_size
    assert slates.items.shape == (20, k) and np.isin(slates.items, world.scenarios[s].pool).all()
    assert all(np.unique(row).size == k for row in slates.items)
    credited = (slates.team >= 0).sum(axis=1)
    assert (credited == 2).all()  # the merged list is as long as one arm's candidates


def test_recall_score_ranker_ranks_by_each_items_own_team_score(tiny):
    cfg, world, _, _ = tiny
    c, t = _arms(tiny, "random", "truth", ranker="recall_score")
    assert isinstance(c.ranker, RecallScoreRanker)
    policy = InterleavedPolicy(c, t, seed=cfg.seed)
    b = _batch(world, 0, np.arange(10), np.arange(10) * 1024)
    slates = policy.serve(b)
    (ca, sa), (cb, sb) = c.recall(b), t.recall(b)
    score = np.where(slates.team == 1, lookup(cb, sb, slates.items), lookup(ca, sa, slates.items))
    assert np.isfinite(score).all()
    assert (np.diff(score, axis=1) <= 0).all()  # shown best first by that score


def test_unknown_variant_is_refused(tiny):
    c, t = _arms(tiny, "random", "truth")
    with pytest.raises(ValueError, match="variant"):
        InterleavedPolicy(c, t, seed=0, variant="bogus")


# ---------------------------------------------------------------------------- credit + run


def _responses(click, watch) -> Responses:
    n = len(click)
    return Responses(np.array(click, dtype=np.int8), np.array(watch, dtype=np.float64),
                     np.zeros(n, dtype=bool), np.zeros(n))  # fmt: skip


def test_credit_goes_to_the_team_of_the_item_and_merges():
    users = np.array([1, 2])
    batch = RequestBatch(1, np.array([10, 11]), np.array([0, 1]), users, np.zeros(2, int),
                              np.array([86_400.0 * 5, 86_400.0 * 9]), np.zeros((2, 0), int),
                              np.zeros((2, 0), int))  # fmt: skip
    slates = Slates(np.array([[4, 5, 6], [7, 8, 9]]), np.ones((2, 3)), np.zeros(2, np.int8),
                    np.array([[0, 1, -1], [1, 1, 0]], dtype=np.int8))  # fmt: skip
    resp = _responses([[1, 1, 1], [0, 1, 1]], [[3.0, 4.0, 5.0], [0.0, 6.0, 7.0]])
    stats = CreditStats.empty(2, 3, 5, 2)
    stats.add(0, batch, slates, resp)
    v = stats.values
    np.testing.assert_array_equal(v[1, 1, 0], [[1, 1, 3.0], [1, 1, 4.0]])
    np.testing.assert_array_equal(v[1, 2, 1], [[1, 1, 7.0], [2, 1, 6.0]])  # day 9 -> last
    assert v.sum() == v[1, 1, 0].sum() + v[1, 2, 1].sum()
    np.testing.assert_array_equal(stats.uncredited, [0, 1])
    twice = stats.merge(stats)
    np.testing.assert_array_equal(twice.values, 2 * v)
    np.testing.assert_array_equal(twice.uncredited, [0, 2])
    with pytest.raises(ValueError, match="same shape"):
        stats.merge(CreditStats.empty(2, 3, 4, 2))


def test_slates_without_teams_still_work_and_credit_nobody(tiny):
    cfg, world, logs, _ = tiny
    plain = Slates(np.zeros((1, 2), dtype=np.int64), np.ones((1, 2)), np.zeros(1, np.int8))
    assert plain.team is None
    credit = CreditStats.empty(len(world.scenarios), world.users.n, cfg.periods.pre_days, 1)
    route = np.zeros(world.users.n, dtype=np.int64)
    stats, engine = simulate_period(
        cfg, world, [UniformPolicy(world, 5)], logs, route, days=1, seed=cfg.seed, sinks=[credit]
    )
    assert credit.values.sum() == 0
    assert credit.uncredited.sum() == engine.stats.exposures == stats.totals()["impressions"] > 0


def test_credit_does_not_depend_on_the_batch_window(tiny):
    _, world, _, _ = tiny
    runs = []
    for window in (300.0, 21_600.0):
        runs.append(
            _run(tiny, "random", "truth", window=window, users=np.arange(0, world.users.n, 3))
        )
    a, b = runs[0].credit, runs[1].credit
    np.testing.assert_array_equal(a[..., :2], b[..., :2])  # impressions and clicks
    # watch time: the same events, summed in another order
    np.testing.assert_allclose(a[..., 2], b[..., 2], rtol=1e-12, atol=0)
    assert runs[0].requests == runs[1].requests > 0
    assert a[..., 1].sum() > 0


@pytest.mark.parametrize("variant", ["recall", "slate"])
def test_interleaving_credits_the_truth_over_random_in_every_scenario(tiny, variant):
    _, world, _, _ = tiny
    # the slate variant shows each arm's own top of its candidates: a ranker that is nearly
    # the truth would make the random arm's slates almost as good (its 100 random candidates
    # hold good items too), so there each arm is shown in its own recall order
    ranker = "noisy_truth" if variant == "recall" else "recall_score"
    data = _run(tiny, "random", "truth", variant=variant, ranker=ranker)
    assert data.variant == variant and data.arms == ("random", "truth")
    assert data.credit.shape == (len(world.scenarios), world.users.n, DAYS, 2, 3)
    tot = data.credit.sum(axis=(1, 2))  # S x team x sums
    for s, sc in enumerate(world.scenarios):
        imp, clicks = tot[s, :, 0], tot[s, :, 1]
        # 4 sigma of a sign test: were the teams alike, each credited click a fair coin
        assert clicks[1] - clicks[0] > 4 * np.sqrt(clicks.sum()), (sc.name, clicks)
        if variant == "slate":  # each slate is half one team's, half the other's (+-1)
            requests = data.observed.values[0, s, ..., PAGES].sum()
            assert abs(imp[1] - imp[0]) <= requests, sc.name
        else:  # the shared ranker shows mostly the truth's candidates
            assert imp[1] > 4 * imp[0], sc.name
    # every impression is credited (no filled slots) and matches the run's own sums
    assert data.uncredited.sum() == 0
    assert tot[..., 0].sum() == data.exposures == data.observed.totals()["impressions"]
    assert tot[..., 1].sum() == data.observed.totals()["clicks"]


# ---------------------------------------------------------------------------- validity


@pytest.mark.slow  # 100 interleaving runs of the tiny world (about 2 minutes); CI runs it
def test_interleaving_aa_false_positive_rate_is_within_the_binomial_band(tiny):
    """The same model on both sides: the lists are identical, so the slates do not depend on
    the coins and each credited click is a fair coin between the teams. The share test at
    alpha = 0.05 must reject in about 5% of independent runs, per scenario and overall."""
    from abtest.stats import preference_share

    cfg, world, logs, _ = tiny
    c, t = _arms(tiny, "random", "random")
    cfg = dataclasses.replace(cfg, engine=dataclasses.replace(cfg.engine, batch_window=21_600.0))
    runs, alpha = 100, 0.05
    n_scen = len(world.scenarios)
    rejected = np.zeros(n_scen + 1, dtype=int)
    for seed in range(runs):
        data = run_interleaving(
            cfg, world, c, t, logs, names=("random", "random"), days=DAYS, seed=seed,
            progress=False,
        )  # fmt: skip
        for s in [*range(n_scen), None]:
            treat, ctrl, _ = data.credited(s, "clicks")
            res = preference_share(treat, ctrl, alpha=alpha)
            rejected[n_scen if s is None else s] += bool(res.p_value < alpha)
    sd = np.sqrt(runs * alpha * (1 - alpha))
    for k, r in enumerate(rejected):  # each within 4 binomial sigma of runs * alpha
        assert abs(r - runs * alpha) <= 4 * sd, (k, rejected)
    # all scenarios together: their tests share users, so the bound allows any correlation
    pooled = rejected[:n_scen].sum()
    assert abs(pooled - n_scen * runs * alpha) <= 4 * n_scen * sd, rejected
