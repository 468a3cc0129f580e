"""Team-draft interleaving of two recall models: a more sensitive comparison than the A/B test.

Instead of splitting users between the arms, every request is served one slate that mixes
both arms' items, and each click is credited to the arm ("team") that contributed the
clicked item (team-draft interleaving, Radlinski, Kurup & Joachims, CIKM 2008). Both arms
are judged on the same users, requests and positions, so the user-to-user variance that an
A/B test must average out is gone.

* :func:`team_draft`: the merge of two ranked lists, a pure function of the lists and the
  coins.
* :class:`InterleavedPolicy`: an engine policy built from two
  :class:`~abtest.serving.RecallPolicy` arms. ``variant="recall"`` interleaves the two
  *candidate lists* and lets the shared ranker pick the slate from the merged list (the
  recall stage is what is compared, as in the A/B test); ``variant="slate"`` interleaves the
  two arms' *final slates*.
* :class:`CreditStats`: an engine sink of per-(scenario, user, day, team) sums of the
  impressions, clicks and watch time credited to each team.
* :func:`run_interleaving`: one engine run over the experiment period with everyone on the
  interleaved policy; :class:`InterleavingData` is its result.

Coins are keyed by identity, ``keyed.uniform(seed, "interleave", request_id, round)``, so
the merge of a request does not depend on how requests were batched.

May import ``core``, ``simulator``, ``models``, :mod:`abtest.serving` and the other
``abtest.online`` modules; never ``abtest.report`` or ``abtest.cli``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from abtest.online.experiment import simulate_period
from abtest.online.user_stats import UserStats
from abtest.serving import RecallPolicy, _fill
from core import keyed
from core.budget import check_array
from core.config import Config
from simulator.policies import RequestBatch, Slates
from simulator.world import Responses, World

CONTROL, TREATMENT, NO_TEAM = 0, 1, -1
VARIANTS = ("recall", "slate")
# the last axis of the credit array
CREDIT_SUMS = ("impressions", "clicks", "watch_time")
# batches of at least this many rows are merged by the vectorised team draft (measured
# crossover with 100 candidates on 2 busy cores: 60 to 200 rows)
VECTORISE_FROM = 100


# ---------------------------------------------------------------------------- the merge


def team_draft(
    a: np.ndarray, b: np.ndarray, first: np.ndarray, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Team-draft merge of B pairs of ranked lists into B lists of `length` items.

    `a` (team 0, the control) and `b` (team 1, the treatment) are B x N and B x M item ids,
    best first, -1 = empty slot. Picks are made one at a time: the team with fewer picks so
    far picks next; on a tie (the start of a *round*: round = picks so far // 2) the coin
    ``first[r, round]`` decides (True = team 1 first). `first` is B x R bool with
    R >= (length + 1) // 2, one coin per request and round as in the original algorithm (a
    1-d B array is one coin per request, reused in every round). The picking team adds its
    best item not yet in the merged list; a team whose list is used up passes, and the other
    keeps picking. So an item in both lists goes to whichever team picks it first.

    Returns items (B x `length` int64, -1 once both lists are used up) and their teams
    (B x `length` int8: 0, 1, or -1 for an empty slot).

    Two implementations give the same merge: a plain loop per row for small batches and one
    vectorised over rows (`length` steps of numpy calls, whose fixed cost only pays off from
    about :data:`VECTORISE_FROM` rows).
    """
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] != b.shape[0]:
        raise ValueError(f"team_draft: a and b must be B x N and B x M, got {a.shape}, {b.shape}")
    coins = _coins_per_round(np.asarray(first, dtype=bool), a.shape[0], length)
    merge = _draft_rows if a.shape[0] < VECTORISE_FROM else _draft_columns
    return merge(a, b, coins, length)


def _draft_rows(a: np.ndarray, b: np.ndarray, coins: np.ndarray, length: int):
    """:func:`team_draft`, one row at a time in plain Python."""
    items = np.full((a.shape[0], length), -1, dtype=np.int64)
    team = np.full((a.shape[0], length), NO_TEAM, dtype=np.int8)
    rows = zip(a.tolist(), b.tolist(), coins.tolist(), strict=True)
    for r, (row_a, row_b, coin) in enumerate(rows):
        taken, picked, by = {-1}, [], []  # -1 (an empty slot) counts as taken
        ia = ib = picks_a = picks_b = 0
        na, nb = len(row_a), len(row_b)
        for k in range(length):  # k = picks so far
            while ia < na and row_a[ia] in taken:
                ia += 1
            while ib < nb and row_b[ib] in taken:
                ib += 1
            can_a, can_b = ia < na, ib < nb
            if can_a and can_b:
                by_b = coin[k // 2] if picks_a == picks_b else picks_b < picks_a
            elif can_a or can_b:
                by_b = can_b  # a used-up team passes
            else:
                break
            item = row_b[ib] if by_b else row_a[ia]
            picks_b += by_b
            picks_a += not by_b
            taken.add(item)
            picked.append(item)
            by.append(by_b)
        items[r, : len(picked)] = picked
        team[r, : len(by)] = by
    return items, team


def _draft_columns(a: np.ndarray, b: np.ndarray, coins: np.ndarray, length: int):
    """:func:`team_draft`, vectorised over rows: one step per pick."""
    n_rows = a.shape[0]
    rows = np.arange(n_rows)
    open_a, open_b = a >= 0, b >= 0  # not yet in the merged list
    picks = np.zeros((n_rows, 2), dtype=np.int64)
    items = np.full((n_rows, length), -1, dtype=np.int64)
    team = np.full((n_rows, length), NO_TEAM, dtype=np.int8)
    for k in range(length):
        can_a, can_b = open_a.any(axis=1), open_b.any(axis=1)
        live = can_a | can_b
        if not live.any():
            break
        tie = picks[:, 0] == picks[:, 1]
        # picks so far <= k < length, so the round is always < R
        by_b = np.where(tie, coins[rows, picks.sum(axis=1) // 2], picks[:, 1] < picks[:, 0])
        by_b = np.where(can_a & can_b, by_b, can_b)  # a used-up team passes
        best_a = a[rows, open_a.argmax(axis=1)]  # the first open slot: the best item left
        best_b = b[rows, open_b.argmax(axis=1)]
        item = np.where(live, np.where(by_b, best_b, best_a), -1)
        items[:, k] = item
        team[:, k] = np.where(live, by_b, NO_TEAM)
        picks[rows, by_b.astype(np.int64)] += live
        # the item leaves both lists (and any duplicate of it within one list)
        open_a &= a != item[:, None]
        open_b &= b != item[:, None]
    return items, team


def _coins_per_round(first: np.ndarray, n_rows: int, length: int) -> np.ndarray:
    rounds = max((length + 1) // 2, 1)
    if first.ndim == 1:
        first = np.repeat(first[:, None], rounds, axis=1)
    if first.ndim != 2 or first.shape[0] != n_rows or first.shape[1] < rounds:
        raise ValueError(
            f"team_draft: first must be B x R with B = {n_rows} and R >= {rounds} "
            f"(one coin per round), got {first.shape}"
        )
    return first


def round_coins(seed: int, request_id: np.ndarray, rounds: int) -> np.ndarray:
    """B x `rounds` bool coins keyed by (seed, "interleave", request id, round): True = the
    treatment (team 1) picks first in that round."""
    u = keyed.uniform(seed, "interleave", np.asarray(request_id)[:, None], np.arange(rounds))
    return u < 0.5


def lookup(ids: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """B x L values of the B x L `query` ids in the B x N rows (`ids`, `values`); NaN where
    a query id is not in its row (or is -1)."""
    eq = (query[:, :, None] == ids[:, None, :]) & (query[:, :, None] >= 0)
    got = np.take_along_axis(values.astype(np.float64), eq.argmax(axis=2), axis=1)
    return np.where(eq.any(axis=2), got, np.nan)


# ---------------------------------------------------------------------------- the policy


class InterleavedPolicy:
    """One engine policy serving a team-draft interleaving of two recall arms.

    ``variant="recall"``: both arms recall their top candidates; the two lists are merged
    into one list as long as the longer of them (the same candidate budget as one arm's),
    the shared `ranker` (default: the control's;
    :func:`abtest.serving.build_policy` gives both arms equivalent rankers keyed by identity)
    scores the merged candidates and the slate is its best ``slate_size`` (ties by item id,
    as :meth:`RecallPolicy.serve`). An item's recall score, which only the ``recall_score``
    ranker reads, is its score in its own team's list: the two models' scores are on their
    own scales, so with that ranker the comparison is only as fair as the scales are alike.
    ``variant="slate"``: each arm serves its own slate and the two slates are merged.

    Why not the union of both lists: it was tried. On the default world (popular vs mixed)
    it gave the same preference as the cut list (37.6% vs 38.2% of home_feed's credited
    clicks for popular) and it halves the ranker's throughput (0.41 x an A/B day's
    requests/s, against 0.64 for the cut list; ``benchmarks/bench_interleaving.py``).

    Each slate item keeps its team; slots no candidate could fill (the merged list is
    shorter than the slate) are filled from the pool by :func:`abtest.serving._fill`, with
    team -1 (credited to nobody). Propensities are NaN (the coins make the slate random;
    its probabilities are not computed).
    """

    def __init__(
        self,
        control: RecallPolicy,
        treatment: RecallPolicy,
        *,
        seed: int,
        variant: str = "recall",
        ranker: object | None = None,
        name: str | None = None,
    ):
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        self.control, self.treatment = control, treatment
        self.world: World = control.world
        self.seed, self.variant = seed, variant
        self.ranker = control.ranker if ranker is None else ranker
        self.name = name or f"interleaved({control.name},{treatment.name})"

    def serve(self, batch: RequestBatch) -> Slates:
        k = self.world.scenarios[batch.scenario].slate_size
        if self.variant == "recall":
            items, team = self._recall_then_rank(batch, k)
        else:
            items, team = self._merge(
                batch, self.control.serve(batch).items, self.treatment.serve(batch).items, k
            )
        if (items < 0).any():  # fewer items than slots: fill from the pool, credited to nobody
            items = _fill(self.world, batch, items)
        return Slates(
            items.astype(np.int64),
            np.full(items.shape, np.nan),
            np.zeros(len(batch), dtype=np.int8),
            team.astype(np.int8),
        )

    def _merge(self, batch: RequestBatch, a: np.ndarray, b: np.ndarray, length: int):
        coins = round_coins(self.seed, batch.request_id, (length + 1) // 2)
        return team_draft(a, b, coins, length)

    def _recall_then_rank(self, batch: RequestBatch, k: int) -> tuple[np.ndarray, np.ndarray]:
        cand_a, score_a = self.control.recall(batch)
        cand_b, score_b = self.treatment.recall(batch)
        cand, team = self._merge(batch, cand_a, cand_b, max(cand_a.shape[1], cand_b.shape[1]))
        recall = np.where(
            team == TREATMENT, lookup(cand_b, score_b, cand), lookup(cand_a, score_a, cand)
        )
        score = self.ranker.score(batch, cand, recall)
        order = np.lexsort((cand, -score), axis=1)[:, :k]
        items, team = np.take_along_axis(cand, order, axis=1), np.take_along_axis(team, order, 1)
        short = k - items.shape[1]  # fewer candidates than slots: empty slots, filled later
        if short > 0:
            items = np.pad(items, ((0, 0), (0, short)), constant_values=-1)
            team = np.pad(team, ((0, 0), (0, short)), constant_values=NO_TEAM)
        return items, team


# ---------------------------------------------------------------------------- the credit


@dataclass
class CreditStats:
    """An engine sink: S x U x D x 2 x 3 sums credited to each team (0 control, 1
    treatment) of the impressions, clicks and watch time (s) of its items (see
    :data:`CREDIT_SUMS`), days from `start_day` (sessions running past the last day count to
    it). Impressions of items of no team (filled slots, or slates without teams) go to the
    S-length `uncredited` count instead."""

    values: np.ndarray
    uncredited: np.ndarray
    start_day: int

    @classmethod
    def empty(cls, n_scenarios: int, n_users: int, start_day: int, n_days: int) -> CreditStats:
        shape = (n_scenarios, n_users, n_days, 2, len(CREDIT_SUMS))
        check_array("credited sums (scenarios x users x days x teams x sums)", shape)
        return cls(np.zeros(shape), np.zeros(n_scenarios, dtype=np.int64), start_day)

    def add(self, arm: int, batch: RequestBatch, slates: Slates, responses: Responses) -> None:
        day = batch.day - self.start_day
        if day.min() < 0:
            raise ValueError(f"request on day {batch.day.min()} before the credit's first day")
        day = np.minimum(day, self.values.shape[2] - 1)
        team = np.full(slates.items.shape, NO_TEAM) if slates.team is None else slates.team
        rows = np.empty((len(batch), 2, len(CREDIT_SUMS)))
        for t in (CONTROL, TREATMENT):
            mine = team == t
            rows[:, t, 0] = mine.sum(axis=1)
            rows[:, t, 1] = (responses.click * mine).sum(axis=1)
            rows[:, t, 2] = (responses.watch_time * mine).sum(axis=1)
        np.add.at(self.values, (batch.scenario, batch.user_id, day), rows)
        self.uncredited[batch.scenario] += int((team == NO_TEAM).sum())

    def merge(self, other: CreditStats) -> CreditStats:
        if other.start_day != self.start_day or other.values.shape != self.values.shape:
            raise ValueError("can only merge credit stats of the same shape and days")
        return CreditStats(
            self.values + other.values, self.uncredited + other.uncredited, self.start_day
        )


# ---------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class InterleavingData:
    """An interleaving run as per-user sums (no event rows)."""

    arms: tuple[str, str]  # model names of control (team 0) and treatment (team 1)
    scenarios: tuple[str, ...]
    seed: int
    start_day: int
    days: int
    variant: str
    credit: np.ndarray  # S x U x D x 2 x 3: team sums (impressions, clicks, watch time)
    observed: UserStats  # the run's per-user sums (one arm: the interleaved policy)
    requests: int
    exposures: int
    wall_seconds: float
    uncredited: np.ndarray | None = None  # S impressions credited to nobody (filled slots)

    def credited(
        self, scenario: int | None, what: str = "clicks"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per user, over the days: (treatment's, control's) credited `what` (one of
        :data:`CREDIT_SUMS`) in scenario index `scenario` (None: all scenarios), and a U
        bool of the users who saw at least one team's item there."""
        k = CREDIT_SUMS.index(what)
        part = self.credit if scenario is None else self.credit[scenario : scenario + 1]
        sums = part.sum(axis=(0, 2))  # U x 2 x 3
        return sums[:, TREATMENT, k], sums[:, CONTROL, k], sums[:, :, 0].sum(axis=1) > 0


def run_interleaving(
    config: Config,
    world: World,
    control: RecallPolicy,
    treatment: RecallPolicy,
    logs: pl.DataFrame,
    *,
    names: tuple[str, str],
    days: int,
    seed: int,
    variant: str = "recall",
    users: Sequence[int] | np.ndarray | None = None,
    progress: bool = True,
) -> InterleavingData:
    """Serve `days` days after the pre-period with every user (or every one of `users`) on
    the interleaving of `control` and `treatment`, and credit each team's items.

    `logs` are the pre-period logs (they warm the histories); `seed` keys the engine's draws
    and the interleaving coins.
    """
    policy = InterleavedPolicy(control, treatment, seed=seed, variant=variant)
    start_day = config.periods.pre_days
    credit = CreditStats.empty(len(world.scenarios), world.users.n, start_day, days)
    user_ids = None if users is None else np.asarray(users, dtype=np.int64)
    observed, engine = simulate_period(
        config,
        world,
        [policy],
        logs,
        np.zeros(world.users.n, dtype=np.int64),
        days=days,
        seed=seed,
        users=user_ids,
        sinks=[credit],
        progress=progress,
        desc=f"interleaving {names[1]} vs {names[0]}",
    )
    es = engine.stats
    return InterleavingData(
        arms=names,
        scenarios=config.scenario_names,
        seed=seed,
        start_day=start_day,
        days=days,
        variant=variant,
        credit=credit.values,
        observed=observed,
        requests=es.requests,
        exposures=es.exposures,
        wall_seconds=es.wall_seconds,
        uncredited=credit.uncredited,
    )
