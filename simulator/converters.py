"""Converters from public interaction logs (KuaiRand, Open Bandit Dataset) to our log schema.

The eager converters (:func:`kuairand_to_logs`, :func:`read_kuairand_dir`, :func:`obd_to_logs`)
return ``(logs, users, items)`` with the source's own ids; ``logs`` has passed
:func:`simulator.logs.validate_logs`. They share their readers and rules with the lazy,
memory-flat importer :mod:`simulator.log_import` (``python -m abtest import``):
:func:`scan_csv_columns` (a CSV's needed columns, read lazily with explicit dtypes),
:func:`collect_checked` / :func:`sink_checked` (a parse failure becomes a
:class:`~core.errors.UserError` naming the file, the column and the first bad rows),
:func:`gap_sessions` (sessions by inactivity gap) and :func:`obd_timestamp` /
:func:`user_hash` (the Open Bandit Dataset's time format and user ids).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from core.errors import UserError
from simulator.logs import UNIFORM, UTC_US, validate_logs

STANDARD = "standard"

# KuaiRand log columns the converter needs, with the dtypes they are read as.
KUAIRAND_COLUMNS: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "video_id": pl.Int64(),
    "time_ms": pl.Int64(),
    "is_click": pl.Int64(),
    "play_time_ms": pl.Float64(),
    "duration_ms": pl.Float64(),
    "is_rand": pl.Int64(),
    "tab": pl.Int64(),
}

OBD_USER_FEATURES = tuple(f"user_feature_{i}" for i in range(4))
OBD_COLUMNS: dict[str, pl.DataType] = {
    "timestamp": pl.String(),
    "item_id": pl.Int64(),
    "position": pl.Int64(),
    "click": pl.Int64(),
    "propensity_score": pl.Float64(),
} | {name: pl.String() for name in OBD_USER_FEATURES}
# pandas writes microseconds only when they are non-zero; ``%.f`` accepts both forms.
OBD_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def csv_header(path: Path, what: str) -> list[str]:
    """The column names of a CSV; a missing or unreadable file is a UserError naming it."""
    if not path.is_file():
        raise UserError(f"{what} file not found: {path}")
    try:
        return pl.read_csv(path, n_rows=0).columns
    except Exception as exc:  # polars raises several types for an unreadable file
        raise UserError(f"cannot read {path} as a {what} CSV: {_first_line(exc)}") from None


def scan_csv_columns(
    path: Path,
    columns: dict[str, pl.DataType],
    what: str,
    optional: dict[str, pl.DataType] | None = None,
) -> tuple[pl.LazyFrame, dict[str, pl.DataType]]:
    """`columns` (and those of `optional` present) of a CSV as a lazy frame with those dtypes,
    and the dtypes read; only these columns are parsed.

    A missing file or column is a UserError naming the file; an unparsable value surfaces
    when the frame is collected: use :func:`collect_checked` or :func:`sink_checked`.
    """
    header = csv_header(path, what)
    missing = [c for c in columns if c not in header]
    if missing:
        raise UserError(f"{path}: not a {what} CSV, missing column(s) {', '.join(missing)}")
    wanted = columns | {c: t for c, t in (optional or {}).items() if c in header}
    lf = pl.scan_csv(path, infer_schema=False, schema_overrides=wanted).select(list(wanted))
    return lf, wanted


def first_rows(values: pl.DataFrame, total: int, limit: int = 5) -> str:
    """``first offending rows: 3 ('x'), 8 (-1) and 12 more`` (the format of
    :func:`simulator.logs.validate_logs`) from a frame of (row, value) pairs."""
    shown = ", ".join(f"{row} ({value!r})" for row, value in values.head(limit).iter_rows())
    more = f" and {total - limit} more" if total > limit else ""
    return f"first offending rows: {shown}{more}"


def _parse_problem(path: Path, wanted: dict[str, pl.DataType]) -> str | None:
    """Which column of `path` holds a value that does not parse as its dtype, with the first
    such rows (0-based data rows); None if every value parses."""
    raw = pl.scan_csv(path, infer_schema=False).select(list(wanted)).with_row_index("row")
    for column, dtype in wanted.items():
        if dtype == pl.String():
            continue
        bad = pl.col(column).is_not_null() & pl.col(column).cast(dtype, strict=False).is_null()
        found = raw.filter(bad).select("row", column)
        total = found.select(pl.len()).collect().item()
        if total:
            kind = "an integer" if dtype.is_integer() else "a number"
            return (
                f"cannot parse {path}: column {column!r} must be {kind}; "
                f"{first_rows(found.head(5).collect(), total)}"
            )
    return None


def collect_checked(
    lf: pl.LazyFrame, path: Path, wanted: dict[str, pl.DataType], what: str
) -> pl.DataFrame:
    """Collect a frame of :func:`scan_csv_columns`; a parse failure is a UserError naming the
    file, the column and the first bad rows."""
    try:
        return lf.collect(engine="streaming")
    except pl.exceptions.PolarsError as exc:
        raise UserError(
            _parse_problem(path, wanted)
            or f"cannot parse {path} as a {what} CSV: {_first_line(exc)}"
        ) from None


def sink_checked(
    lf: pl.LazyFrame, dest: Path, path: Path, wanted: dict[str, pl.DataType], what: str
) -> None:
    """Stream a frame of :func:`scan_csv_columns` (perhaps transformed) into parquet `dest`;
    a parse failure is a UserError as in :func:`collect_checked`."""
    try:
        lf.sink_parquet(dest)
    except pl.exceptions.PolarsError as exc:
        raise UserError(
            _parse_problem(path, wanted)
            or f"cannot parse {path} as a {what} CSV: {_first_line(exc)}"
        ) from None


def _read_csv(
    path: Path,
    columns: dict[str, pl.DataType],
    what: str,
    optional: dict[str, pl.DataType] | None = None,
) -> pl.DataFrame:
    """Read `columns` (and those of `optional` present) of a CSV, ignoring the others.

    A missing file or column, or an unparsable value, is a UserError naming the file.
    """
    lf, wanted = scan_csv_columns(path, columns, what, optional)
    return collect_checked(lf, path, wanted, what)


def gap_sessions(group: np.ndarray, time: np.ndarray, gap: float) -> np.ndarray:
    """Session numbers of rows in request order (`time` non-decreasing along the rows).

    A session is a run of one `group`'s rows (a user in one scenario) with no gap over `gap`
    between consecutive ones; sessions are numbered 0, 1, ... in the order of their first row.
    Memory: a few arrays of the rows' length (no frame is sorted).
    """
    n = len(group)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # by group, request order within one (a stable sort; polars' is several times numpy's)
    keys = pl.DataFrame({"g": group})
    order = keys.select(pl.arg_sort_by("g", maintain_order=True)).to_series().to_numpy()
    del keys
    g = group[order]
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(g[1:], g[:-1], out=new[1:])
    del g
    t = time[order]
    new[1:] |= np.diff(t) > gap
    del t
    local = np.cumsum(new) - 1  # session index in group order
    starts = order[new]  # the row of each session's first request
    number = np.empty(len(starts), dtype=np.int64)
    number[np.argsort(starts)] = np.arange(len(starts), dtype=np.int64)  # starts are distinct
    out = np.empty(n, dtype=np.int64)
    out[order] = number[local]
    return out


def kuairand_to_logs(
    paths: Sequence[str | Path],
    *,
    pool_size: int | None = None,
    session_gap_minutes: float = 30.0,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Convert KuaiRand log CSVs (standard and/or random) to ``(logs, users, items)``.

    Every interaction is its own request (position 0), numbered in (time_ms, user_id,
    video_id) order; scenario is ``tab<N>``. A session is a run of one user's interactions in
    one tab with no gap over `session_gap_minutes`; sessions are numbered by their start.
    Random-exposure rows (``is_rand == 1``) get policy ``uniform`` and propensity
    ``1 / pool_size`` (default: the number of distinct videos among them); the others get
    policy ``standard`` and a null propensity, since KuaiRand logs none. ``users`` holds the
    user ids; ``items`` each video's duration in seconds (its first logged ``duration_ms``).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise UserError("no KuaiRand log files given")
    if session_gap_minutes <= 0:
        raise UserError(f"session_gap_minutes must be > 0, got {session_gap_minutes}")
    raw = pl.concat([_read_kuairand_csv(path) for path in paths], how="vertical")

    seen = raw.filter(pl.col("is_rand") == 1)["video_id"].n_unique()
    if pool_size is None:
        pool_size = max(seen, 1)
    elif pool_size < max(seen, 1):
        raise UserError(
            f"pool_size must be >= 1 and cover the {seen} distinct videos of the random "
            f"log, got {pool_size}"
        )
    is_rand = pl.col("is_rand") == 1

    raw = raw.sort("time_ms", "user_id", "video_id", maintain_order=True).with_row_index(
        "request_id"
    )
    sessions = _kuairand_sessions(raw, session_gap_minutes * 60_000.0)
    raw = raw.join(sessions, on="request_id", how="left", maintain_order="left")
    logs = raw.select(
        pl.col("request_id").cast(pl.Int64),
        "session_id",
        timestamp=pl.from_epoch("time_ms", time_unit="ms").dt.replace_time_zone("UTC").cast(UTC_US),
        user_id="user_id",
        scenario=pl.format("tab{}", "tab"),
        item_id="video_id",
        position=pl.lit(0, dtype=pl.Int64),
        click=pl.col("is_click"),
        watch_time=pl.col("play_time_ms") / 1000.0,
        propensity=pl.when(is_rand).then(1.0 / pool_size).otherwise(None).cast(pl.Float64),
        policy=pl.when(is_rand).then(pl.lit(UNIFORM)).otherwise(pl.lit(STANDARD)),
    )
    logs = validate_logs(logs, source=", ".join(str(p) for p in paths))
    users = raw.select(pl.col("user_id").unique().sort())
    return logs, users, _kuairand_items(raw)


def _read_kuairand_csv(path: Path) -> pl.DataFrame:
    frame = _read_csv(path, KUAIRAND_COLUMNS, "KuaiRand log")
    bad = frame.filter(~pl.col("is_rand").is_in([0, 1]).fill_null(False)).height
    if bad:
        raise UserError(f"{path}: column 'is_rand' must be 0 or 1 ({bad} rows are not)")
    return frame


def _kuairand_sessions(raw: pl.DataFrame, gap_ms: float) -> pl.DataFrame:
    """request_id -> session_id: a session is a run of one user's requests in one tab with
    no gap over `gap_ms`; sessions are numbered in the order they start."""
    key = raw.select(pl.struct("user_id", "tab").rank("dense")).to_series().to_numpy()
    session = gap_sessions(key, raw["time_ms"].to_numpy(), gap_ms)
    return pl.DataFrame({"request_id": raw["request_id"], "session_id": session})


def _kuairand_items(raw: pl.DataFrame) -> pl.DataFrame:
    """Each video's duration in seconds (its first logged ``duration_ms``), by item id."""
    items = raw.group_by("video_id", maintain_order=True).agg(
        duration=pl.col("duration_ms").first() / 1000.0
    )
    return items.select(item_id="video_id", duration=pl.col("duration").cast(pl.Float64)).sort(
        "item_id"
    )


def read_kuairand_dir(
    directory: str | Path,
    *,
    pool_size: int | None = None,
    session_gap_minutes: float = 30.0,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Convert every ``log_*.csv`` in a KuaiRand folder with :func:`kuairand_to_logs`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"KuaiRand folder not found: {directory}")
    paths = sorted(directory.glob("log_*.csv"))
    if not paths:
        raise UserError(f"no KuaiRand log files (log_*.csv) in {directory}")
    return kuairand_to_logs(paths, pool_size=pool_size, session_gap_minutes=session_gap_minutes)


def user_hash(features: Sequence[str | None]) -> int:
    """A stable non-negative 63-bit id: blake2b-64 of the features joined by U+001F.

    Missing features count as empty strings. Unlike ``pl.Expr.hash`` this does not change
    between polars versions, so ids from two conversions can be joined.
    """
    text = "\x1f".join("" if f is None else f for f in features)
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & (2**63 - 1)


_user_hash = user_hash  # the name earlier callers use


def obd_timestamp(column: str = "timestamp") -> pl.Expr:
    """An OBD timestamp column (text, with or without an offset, microseconds optional) as
    Datetime(us, UTC); null where it does not parse."""
    text = pl.col(column)
    aware = text.str.to_datetime(OBD_TIME_FORMATS[0], time_unit="us", strict=False)
    naive = text.str.to_datetime(OBD_TIME_FORMATS[1], time_unit="us", strict=False)
    return aware.dt.convert_time_zone("UTC").fill_null(naive.dt.replace_time_zone("UTC"))


OBD_TIME_EXAMPLE = "'2019-11-24 00:00:17.604458+00:00'"


def _obd_timestamps(ts: pl.Series, path: Path) -> pl.Series:
    out = ts.to_frame("timestamp").select(obd_timestamp()).to_series()
    bad = out.is_null()
    if bad.any():
        raise UserError(
            f"{path}: cannot parse column 'timestamp' (expected e.g. "
            f"{OBD_TIME_EXAMPLE}); first bad value {ts.filter(bad)[0]!r}"
        )
    return out


def _obd_items(folder: Path, logged: pl.Series) -> pl.DataFrame:
    """``item_context.csv`` beside the log or one folder up, else just the logged ids."""
    items = pl.DataFrame({"item_id": logged.unique().sort()})
    for candidate in (folder / "item_context.csv", folder.parent / "item_context.csv"):
        if candidate.is_file():
            context = _read_csv(
                candidate,
                {"item_id": pl.Int64()},
                "OBD item context",
                optional={"item_feature_0": pl.Float64()},
            )
            context = context.unique("item_id", keep="first", maintain_order=True)
            extra = items.join(context, on="item_id", how="anti")
            return pl.concat([context, extra], how="diagonal").sort("item_id")
    return items


def obd_to_logs(
    csv_path: str | Path,
    *,
    campaign: str | None = None,
    behavior_policy: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Convert an Open Bandit Dataset CSV (``<policy>/<campaign>/<campaign>.csv``).

    The campaign is the scenario and each row one round (request and session); positions
    become 0-based; the ``random`` policy is named ``uniform``. OBD has no user id: user_id
    is a 63-bit blake2b hash of the four user features (see :func:`_user_hash`), stable
    across runs and versions. Watch time is null.
    """
    path = Path(csv_path)
    folder = path.resolve().parent
    campaign = campaign if campaign is not None else folder.name
    behavior_policy = behavior_policy if behavior_policy is not None else folder.parent.name
    if not campaign or not behavior_policy:
        raise UserError(
            f"{path}: cannot tell the campaign and behaviour policy from the folder layout "
            "<policy>/<campaign>/<campaign>.csv; pass campaign= and behavior_policy="
        )
    raw = _read_csv(path, OBD_COLUMNS, "Open Bandit Dataset")
    raw = raw.with_columns(
        _obd_timestamps(raw["timestamp"], path),
        *(pl.col(c).fill_null("") for c in OBD_USER_FEATURES),
    )
    raw = raw.sort("timestamp", maintain_order=True).with_row_index("request_id")

    keys = raw.select(OBD_USER_FEATURES).unique(maintain_order=True)
    keys = keys.with_columns(
        user_id=pl.Series([user_hash(row) for row in keys.iter_rows()], dtype=pl.Int64)
    )
    raw = raw.join(keys, on=list(OBD_USER_FEATURES), how="left", maintain_order="left")

    policy = UNIFORM if behavior_policy == "random" else behavior_policy
    logs = raw.select(
        pl.col("request_id").cast(pl.Int64),
        session_id=pl.col("request_id").cast(pl.Int64),
        timestamp="timestamp",
        user_id="user_id",
        scenario=pl.lit(campaign),
        item_id="item_id",
        position=pl.col("position") - 1,
        click="click",
        watch_time=pl.lit(None, dtype=pl.Float64),
        propensity="propensity_score",
        policy=pl.lit(policy),
    )
    logs = validate_logs(logs, source=str(path))
    users = raw.select(pl.col("user_id").unique().sort())
    items = _obd_items(folder, raw["item_id"])
    return logs, users, items
