"""Per-user sufficient statistics: what the statistics engine needs, accumulated as the engine runs.

For every (arm, scenario, user, day) a :class:`UserStats` holds five sums — impressions,
clicks, watch time (s), sessions, pages — in a dense array whose size depends on the number
of users and days, never on the number of requests. Shards of a run (disjoint users, or the
same users in disjoint days) add up with :meth:`UserStats.merge`.

:func:`pre_period_stats` gives the same five sums per (scenario, user) from a log folder's
pre-period: the CUPED covariates and the activity segments. :func:`warm_histories` gives each
user's last clicks before the experiment, so the models read the same kind of history they
were trained on from the first request on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from core.budget import check_array
from simulator.arrivals import DAY
from simulator.engine import History
from simulator.logs import logical_seconds
from simulator.policies import RequestBatch, Slates
from simulator.world import Responses

# the five per-user sums, in the order of the last axis (not the analysis' metrics, which
# are built from them: see abtest.online.analysis.METRICS)
SUMS = ("impressions", "clicks", "watch_time", "sessions", "pages")
IMPRESSIONS, CLICKS, WATCH, SESSIONS, PAGES = range(5)


@dataclass
class UserStats:
    """An engine sink: A x S x U x D x 5 sums (see :data:`SUMS`), days from `start_day`."""

    values: np.ndarray
    start_day: int

    @classmethod
    def empty(cls, n_arms: int, n_scenarios: int, n_users: int, start_day: int, n_days: int):
        shape = (n_arms, n_scenarios, n_users, n_days, len(SUMS))
        check_array("per-user sums (arms x scenarios x users x days x sums)", shape)
        return cls(np.zeros(shape, dtype=np.float64), start_day)

    def add(self, arm: int, batch: RequestBatch, slates: Slates, responses: Responses) -> None:
        day = batch.day - self.start_day
        if day.min() < 0:
            raise ValueError(f"request on day {batch.day.min()} before the stats' first day")
        # sessions of the last day that run past midnight still count to the last day
        day = np.minimum(day, self.values.shape[3] - 1)
        rows = np.empty((len(batch), len(SUMS)))
        rows[:, IMPRESSIONS] = slates.items.shape[1]
        rows[:, CLICKS] = responses.click.sum(axis=1)
        rows[:, WATCH] = responses.watch_time.sum(axis=1)
        rows[:, SESSIONS] = batch.page == 0
        rows[:, PAGES] = 1.0
        np.add.at(self.values, (arm, batch.scenario, batch.user_id, day), rows)

    def merge(self, other: UserStats) -> UserStats:
        if other.start_day != self.start_day or other.values.shape != self.values.shape:
            raise ValueError("can only merge user stats of the same shape and days")
        return UserStats(self.values + other.values, self.start_day)

    def totals(self) -> dict[str, float]:
        sums = self.values.sum(axis=(0, 1, 2, 3))
        return {m: float(sums[i]) for i, m in enumerate(SUMS)}


def pre_period_stats(
    logs: pl.DataFrame, scenarios: tuple[str, ...], n_users: int, end: dt.datetime
) -> np.ndarray:
    """S x U x 5 sums of every user's logged traffic before `end` (the CUPED covariates)."""
    codes = {n: i for i, n in enumerate(scenarios)}
    pre = logs.filter(pl.col("timestamp") < end)
    per_request = pre.group_by("request_id").agg(
        pl.col("user_id", "scenario", "session_id").first(),
        pl.len().alias("impressions"),
        pl.col("click").sum().alias("clicks"),
        pl.col("watch_time").sum(),
    )
    per_user = per_request.group_by("scenario", "user_id").agg(
        pl.col("impressions", "clicks", "watch_time").sum(),
        pl.col("session_id").n_unique().alias("sessions"),
        pl.len().alias("pages"),
    )
    out = np.zeros((len(scenarios), n_users, len(SUMS)))
    s = per_user["scenario"].replace_strict(codes, return_dtype=pl.Int64).to_numpy()
    u = per_user["user_id"].to_numpy()
    keep = (u >= 0) & (u < n_users)
    for i, m in enumerate(SUMS):
        out[s[keep], u[keep], i] = per_user[m].to_numpy()[keep]
    return out


def warm_histories(
    logs: pl.DataFrame,
    scenarios: tuple[str, ...],
    history: History,
    start: dt.datetime,
    end: dt.datetime,
) -> None:
    """Fill `history` with each user's last clicks logged before `end` (logical times)."""
    codes = {n: i for i, n in enumerate(scenarios)}
    h = history.items.shape[1]
    clicks = (
        logs.filter((pl.col("click") == 1) & (pl.col("timestamp") < end))
        .sort("timestamp", "request_id", "position", descending=True)
        .with_columns(rank=pl.int_range(pl.len()).over("user_id"))
        .filter(pl.col("rank") < h)
        .select(
            "user_id",
            "rank",
            "item_id",
            pl.col("scenario").replace_strict(codes, return_dtype=pl.Int64),
            logical_seconds(start).alias("t"),
        )
    )
    u = clicks["user_id"].to_numpy()
    r = clicks["rank"].to_numpy()
    keep = (u >= 0) & (u < history.items.shape[0])
    history.items[u[keep], r[keep]] = clicks["item_id"].to_numpy()[keep]
    history.scenarios[u[keep], r[keep]] = clicks["scenario"].to_numpy()[keep]
    history.times[u[keep], r[keep]] = clicks["t"].to_numpy()[keep]


def experiment_start(start: dt.datetime, pre_days: int) -> dt.datetime:
    return start + dt.timedelta(seconds=pre_days * DAY)
