"""Model features from the logs (polars): clicked-item histories without future leakage.

The recall models read, for each request, the user's most recent clicks across *all*
scenarios (item and scenario), as SASS does. :func:`click_histories` computes them with an
as-of join: a request sees only clicks logged strictly before its timestamp, so a time
split never leaks the future into a history. :func:`time_split` cuts the pre-period into
train and validation parts by time.

Shapes: R requests, H history length.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl


@dataclass(frozen=True)
class Histories:
    request_id: np.ndarray  # R int64, in the order of the requests frame given
    items: np.ndarray  # R x H int64, most recent first, -1 = empty
    scenarios: np.ndarray  # R x H int64 scenario codes, -1 = empty


def click_histories(
    logs: pl.DataFrame, requests: pl.DataFrame, length: int, scenario_codes: dict[str, int]
) -> Histories:
    """The last `length` clicks of each request's user logged strictly before the request.

    `logs` supplies the clicks (columns user_id, timestamp, item_id, scenario, click);
    `requests` has one row per request (request_id, user_id, timestamp).
    """
    clicks = (
        logs.lazy()
        .filter(pl.col("click") == 1)
        .select("user_id", "timestamp", "item_id", "scenario")
        .sort("user_id", "timestamp", "item_id")
        .with_columns(seq=pl.int_range(1, pl.len() + 1).over("user_id"))
        .collect()
    )
    item_arr = clicks["item_id"].to_numpy()
    scen_arr = clicks["scenario"].replace_strict(scenario_codes, return_dtype=pl.Int64).to_numpy()
    offsets = clicks.group_by("user_id").agg(start=pl.len()).sort("user_id")
    offsets = offsets.with_columns(start=pl.col("start").cum_sum() - pl.col("start"))
    # seq = clicks of this user strictly before the request (as-of, exact matches excluded).
    seen = (
        requests.select("request_id", "user_id", "timestamp")
        .with_row_index("row")
        .sort("timestamp")
        .join_asof(
            clicks.select("user_id", "timestamp", "seq").sort("timestamp"),
            on="timestamp",
            by="user_id",
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,  # sorted just above; polars cannot check it with `by`
        )
        .join(offsets, on="user_id", how="left")
        .sort("row")
    )
    n_seen = seen["seq"].fill_null(0).to_numpy()
    start = seen["start"].fill_null(0).to_numpy()
    back = np.arange(length)[None, :]
    valid = back < n_seen[:, None]
    idx = np.where(valid, start[:, None] + n_seen[:, None] - 1 - back, 0)
    items = np.where(valid, item_arr[idx] if item_arr.size else -1, -1)
    scen = np.where(valid, scen_arr[idx] if scen_arr.size else -1, -1)
    return Histories(seen["request_id"].to_numpy(), items.astype(np.int64), scen.astype(np.int64))


def time_split(
    logs: pl.DataFrame, start: dt.datetime, pre_days: int, valid_days: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Train on the first ``pre_days - valid_days`` days of the pre-period, validate on the rest."""
    if not 0 < valid_days < pre_days:
        raise ValueError(f"valid_days must be in (0, {pre_days}), got {valid_days}")
    cut = start + dt.timedelta(days=pre_days - valid_days)
    end = start + dt.timedelta(days=pre_days)
    ts = pl.col("timestamp")
    return logs.filter(ts < cut), logs.filter((ts >= cut) & (ts < end))
