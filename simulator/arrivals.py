"""When users visit which scenario: the day's session schedule, keyed by identity.

User u visits scenario s on day t ``Poisson(sessions_per_user_day * activity_u * share_s)``
times; the k-th visit starts at a time of day drawn from the diurnal profile
``1 + amplitude * cos(2 pi (hour - peak) / 24)``. Both draws are keyed by
(seed, day, user, scenario, k), so a user's visits do not depend on other users, on how the
population is sharded, or on the policy serving them.

Identifiers are arithmetic, not counters, so they are stable across shards:
``session_id = ((day * U + user) * S + scenario) * 64 + k`` and
``request_id = session_id * 1024 + page``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from core import keyed
from simulator.world import World

DAY = 86_400.0
MAX_SESSIONS_PER_DAY = 64  # per user and scenario; the id layout reserves 6 bits
PAGE_SLOTS = 1024  # request_id = session_id * PAGE_SLOTS + page


@dataclass(frozen=True)
class DaySchedule:
    """The sessions that start on one day, sorted by start time. All arrays have length n."""

    day: int
    user: np.ndarray  # int64
    scenario: np.ndarray  # int64
    start: np.ndarray  # float64 seconds since the start of day 0
    session_id: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.user.shape[0])


def session_ids(day, user, scenario, k, n_users: int, n_scenarios: int) -> np.ndarray:
    day, user, scenario, k = (np.asarray(x, dtype=np.int64) for x in (day, user, scenario, k))
    return ((day * n_users + user) * n_scenarios + scenario) * MAX_SESSIONS_PER_DAY + k


def request_ids(session_id, page) -> np.ndarray:
    return np.asarray(session_id, dtype=np.int64) * PAGE_SLOTS + np.asarray(page, dtype=np.int64)


def diurnal_inverse_cdf(u: np.ndarray, amplitude: float, peak_hour: float) -> np.ndarray:
    """Seconds into the day for uniforms `u`, with density ∝ 1 + a cos(2π(h - peak)/24)."""
    grid = np.linspace(0.0, 24.0, 24 * 60 + 1)
    # Exact integral of the density from 0 to each grid point (in hours).
    w = 2 * np.pi / 24
    cdf = grid + amplitude / w * (np.sin(w * (grid - peak_hour)) - np.sin(w * (-peak_hour)))
    cdf /= cdf[-1]
    return np.interp(u, cdf, grid) * 3600.0


def day_schedule(world: World, day: int, seed: int, users: np.ndarray | None = None) -> DaySchedule:
    """All sessions starting on `day` (optionally only for the given users)."""
    cfg = world.config
    n_users, n_scen = world.users.n, len(world.scenarios)
    if users is None:
        users = np.arange(n_users, dtype=np.int64)
    share = np.array([s.traffic_share for s in world.scenarios])
    rate = cfg.traffic.sessions_per_user_day * world.users.activity[users][:, None] * share[None]
    s_idx = np.arange(n_scen)[None, :]
    u = keyed.uniform(seed, "sessions", day, users[:, None], s_idx)
    counts = stats.poisson.ppf(u, rate).astype(np.int64)
    counts = np.minimum(counts, MAX_SESSIONS_PER_DAY)
    flat = counts.ravel()
    total = int(flat.sum())
    pair = np.repeat(np.arange(flat.size), flat)
    first = np.repeat(np.cumsum(flat) - flat, flat)
    k = np.arange(total) - first
    user = users[pair // n_scen].astype(np.int64)
    scenario = (pair % n_scen).astype(np.int64)
    u_time = keyed.uniform(seed, "session_start", day, user, scenario, k)
    start = day * DAY + diurnal_inverse_cdf(
        u_time, cfg.traffic.diurnal_amplitude, cfg.traffic.diurnal_peak_hour
    )
    sid = session_ids(day, user, scenario, k, n_users, n_scen)
    order = np.lexsort((sid, start))
    return DaySchedule(day, user[order], scenario[order], start[order], sid[order])
