"""Logged traffic as the engine's arrival source (``run --replay LOGDIR``).

Instead of drawing sessions from the world's traffic model, the engine replays the sessions
of a log: each logged session starts at its first logged timestamp, for its user, in its
scenario, with its session id (so request ids, and the keyed draws behind every response,
are the logged ones). Pages then follow the world's leave model — or, with
``fixed_pages``, exactly the logged number of pages per session.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from core.errors import UserError
from simulator.arrivals import DAY, PAGE_SLOTS, DaySchedule
from simulator.logs import logical_seconds, start_datetime
from simulator.world import World


def logged_sessions(
    logs: pl.DataFrame,
    world: World,
    start_day: int,
    n_days: int,
    users: np.ndarray | None = None,
) -> tuple[dict[int, DaySchedule], dict[int, int]]:
    """The sessions of `logs` starting in days [start_day, start_day + n_days).

    Returns the day schedules and each session's logged page count.
    """
    names = [s.name for s in world.scenarios]
    codes = {n: i for i, n in enumerate(names)}
    t0 = start_datetime(world)
    secs = logical_seconds(t0)
    sessions = (
        logs.group_by("session_id")
        .agg(
            pl.col("user_id").first(),
            pl.col("scenario").first(),
            secs.min().alias("start"),
            pl.col("request_id").n_unique().alias("pages"),
            pl.col("user_id").n_unique().alias("n_users"),
        )
        .filter(
            (pl.col("start") >= start_day * DAY) & (pl.col("start") < (start_day + n_days) * DAY)
        )
        .sort("start", "session_id")
    )
    if sessions.height == 0:
        raise UserError(
            f"the replayed log has no sessions in the experiment period: days {start_day}.."
            f"{start_day + n_days - 1} after {t0.date()}"
        )
    bad_users = sessions.filter((pl.col("user_id") < 0) | (pl.col("user_id") >= world.users.n))
    if bad_users.height:
        raise UserError(
            f"replayed log: user_id {bad_users['user_id'][0]} is not a user of this world "
            f"(0..{world.users.n - 1})"
        )
    if (sessions["n_users"] > 1).any():
        sid = sessions.filter(pl.col("n_users") > 1)["session_id"][0]
        raise UserError(f"replayed log: session_id {sid} has rows of more than one user")
    if sessions["session_id"].min() < 0 or sessions["session_id"].max() >= 2**63 // PAGE_SLOTS:
        raise UserError("replayed log: session_id out of range for request ids (session*1024+page)")
    too_long = sessions.filter(pl.col("pages") > PAGE_SLOTS)
    if too_long.height:
        raise UserError(
            f"replayed log: session {too_long['session_id'][0]} has more than {PAGE_SLOTS} pages"
        )
    if users is not None:
        sessions = sessions.filter(pl.col("user_id").is_in(pl.Series(users).implode()))
    scen = sessions["scenario"].replace_strict(codes, return_dtype=pl.Int64).to_numpy()
    start = sessions["start"].to_numpy()
    user = sessions["user_id"].to_numpy().astype(np.int64)
    sid = sessions["session_id"].to_numpy().astype(np.int64)
    day = (start // DAY).astype(np.int64)
    schedules = {
        int(d): DaySchedule(int(d), user[day == d], scen[day == d], start[day == d], sid[day == d])
        for d in np.unique(day)
    }
    pages = dict(zip(sid.tolist(), sessions["pages"].to_list(), strict=True))
    return schedules, pages
