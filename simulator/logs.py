"""Logged traffic: the one schema, its validating reader, and the engine's log writer.

One row per exposure (polars; parquet on disk):

==============  =====================  ================================================
column          dtype                  meaning
==============  =====================  ================================================
request_id      Int64                  one served page (slate); unique with `position`
session_id      Int64                  the visit the page belongs to
timestamp       Datetime(us, UTC)      when the page was requested
user_id         Int64
scenario        String                 the scenario (entry point) name
item_id         Int64
position        Int64                  0-based slot on the page
click           Int8                   0 or 1 (immersive: a view rather than a skip)
watch_time      Float64, nullable      seconds watched (null when the source has none)
propensity      Float64, nullable      P(item at this position) under the logging policy
policy          String                 which policy served; ``uniform`` marks the
                                       uniformly random slice (replay's unbiased subset)
==============  =====================  ================================================

Side tables: ``users`` (user_id + integer profile columns) and ``items`` (item_id,
category, content_type, duration); an imported folder's also carry ``source_id`` and its
items may lack features (:func:`validate_side_table`). :func:`validate_logs` checks every
rule and names the column and the first offending rows in its error.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl

from core import fileio
from core.errors import UserError
from core.staging import staging_dir
from simulator.logfolder import LOGS, verify_named
from simulator.policies import RequestBatch, Slates
from simulator.world import Responses, World

UTC_US = pl.Datetime("us", "UTC")
LOG_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.Int64(),
    "session_id": pl.Int64(),
    "timestamp": UTC_US,
    "user_id": pl.Int64(),
    "scenario": pl.String(),
    "item_id": pl.Int64(),
    "position": pl.Int64(),
    "click": pl.Int8(),
    "watch_time": pl.Float64(),
    "propensity": pl.Float64(),
    "policy": pl.String(),
}
KEY_COLUMNS = (
    "request_id",
    "session_id",
    "timestamp",
    "user_id",
    "scenario",
    "item_id",
    "position",
    "click",
    "policy",
)
UNIFORM = "uniform"
SORT_KEYS = ("timestamp", "request_id", "position")


class LogError(UserError):
    """A log that breaks the schema; the message names the column and the offending rows."""


def _rows(df: pl.DataFrame, mask: pl.Series, column: str, limit: int = 5) -> str:
    idx = np.flatnonzero(mask.fill_null(True).to_numpy())
    shown = ", ".join(f"{i} ({df[column][int(i)]!r})" for i in idx[:limit])
    more = f" and {idx.size - limit} more" if idx.size > limit else ""
    return f"first offending rows: {shown}{more}"


def _cast(df: pl.DataFrame, col: str, source: str) -> pl.Series:
    s, want = df[col], LOG_SCHEMA[col]
    kind = s.dtype
    if col == "timestamp":
        if not isinstance(kind, pl.Datetime):
            raise LogError(f"{source}: column 'timestamp' must be a datetime, got {kind}")
        if kind.time_zone is None:
            s = s.dt.replace_time_zone("UTC")
        return s.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    if want == pl.String():
        if kind in (pl.String, pl.Categorical) or isinstance(kind, pl.Enum):
            return s.cast(pl.String)
        raise LogError(f"{source}: column {col!r} must be text, got {kind}")
    if want.is_integer():
        if kind.is_integer() or kind == pl.Boolean:
            out = s.cast(want, strict=False)
            lost = out.is_null() & s.is_not_null()
            if lost.any():
                raise LogError(
                    f"{source}: column {col!r} has values out of range for {want}; "
                    f"{_rows(df, lost, col)}"
                )
            return out
        raise LogError(f"{source}: column {col!r} must be integer, got {kind}")
    if kind.is_numeric() or kind == pl.Null:
        return s.cast(want)
    raise LogError(f"{source}: column {col!r} must be numeric, got {kind}")


def validate_logs(
    df: pl.DataFrame, *, scenarios: Sequence[str] | None = None, source: str = "logs"
) -> pl.DataFrame:
    """Check `df` against the log schema; return it with canonical dtypes, sorted by time.

    Raises :class:`LogError` naming the first broken rule, its column and offending rows.
    """
    missing = [c for c in LOG_SCHEMA if c not in df.columns]
    if missing:
        raise LogError(f"{source}: missing column(s) {', '.join(missing)}")
    extra = [c for c in df.columns if c not in LOG_SCHEMA]
    if extra:
        raise LogError(f"{source}: unexpected column(s) {', '.join(extra)}")
    if df.height == 0:
        raise LogError(f"{source}: the log has no rows")
    df = df.select(_cast(df, c, source).alias(c) for c in LOG_SCHEMA)

    for col in KEY_COLUMNS:
        nulls = df[col].is_null()
        if nulls.any():
            raise LogError(f"{source}: column {col!r} has null values; {_rows(df, nulls, col)}")
    checks: list[tuple[str, pl.Series, str]] = [
        ("click", ~df["click"].is_in([0, 1]), "must be 0 or 1"),
        ("position", df["position"] < 0, "must be >= 0"),
        ("watch_time", ~df["watch_time"].is_finite(), "must be finite (no NaN or inf)"),
        ("watch_time", df["watch_time"] < 0, "must be >= 0"),
        ("propensity", ~df["propensity"].is_finite(), "must be finite (no NaN or inf)"),
        ("propensity", (df["propensity"] <= 0) | (df["propensity"] > 1), "must be in (0, 1]"),
    ]
    if scenarios is not None:
        unknown = ~df["scenario"].is_in(list(scenarios))
        checks.append(
            ("scenario", unknown, f"has scenarios not in the config ({', '.join(scenarios)})")
        )
    for col, bad, rule in checks:
        bad = bad.fill_null(False)
        if bad.any():
            raise LogError(f"{source}: column {col!r} {rule}; {_rows(df, bad, col)}")

    dup = df.select(pl.struct("request_id", "position").is_duplicated()).to_series()
    if dup.any():
        raise LogError(
            f"{source}: (request_id, position) is not unique; {_rows(df, dup, 'request_id')}"
        )
    for col in ("user_id", "session_id", "scenario", "timestamp"):
        varies = df.select(pl.col(col).n_unique().over("request_id") > 1).to_series()
        if varies.any():
            raise LogError(
                f"{source}: column {col!r} differs between rows of one request_id; "
                f"{_rows(df, varies, 'request_id')}"
            )
    return df.sort(SORT_KEYS)


ITEM_COLUMNS = {"item_id": "integer", "category": "integer", "content_type": "text",
                "duration": "numeric"}  # fmt: skip
SOURCE_ID = "source_id"  # an imported folder's side tables: the source's id of each row


def _side_kind_ok(kind: pl.DataType, want: str) -> bool:
    if want == "integer":
        return kind.is_integer()
    if want == "text":
        return kind in (pl.String, pl.Categorical) or isinstance(kind, pl.Enum)
    return kind.is_numeric()


SOURCE_ID = "source_id"  # an imported table's id in its source (text)


def validate_side_table(
    df: pl.DataFrame, table: str, source: str | None = None, *, full: bool | None = None
) -> pl.DataFrame:
    """Check a ``users`` or ``items`` side table; raise :class:`LogError` naming the column.

    ``users``: an integer ``user_id`` and integer profile codes >= 0; ``items``: ``item_id``,
    ``category`` (integers >= 0), ``content_type`` (text) and ``duration`` (seconds, finite,
    >= 0). No nulls, ids unique. Extra item columns are ignored.

    Either table may carry ``source_id`` (text, unique: the id in the source an imported
    folder was made from). `full`: whether items need every feature column; by default a
    table with ``source_id`` (imported: a feature the source lacks is absent) may hold any
    subset of them, one without it (generated from a world) all of them.
    """
    source = source or table
    key = "user_id" if table == "users" else "item_id"
    if table == "users":
        want = {c: "integer" for c in df.columns if c != SOURCE_ID} | {key: "integer"}
    else:
        full = SOURCE_ID not in df.columns if full is None else full
        want = {c: k for c, k in ITEM_COLUMNS.items() if full or c == key or c in df.columns}
    if SOURCE_ID in df.columns:
        want[SOURCE_ID] = "text"
    missing = [c for c in want if c not in df.columns]
    if missing:
        raise LogError(f"{source}: missing column(s) {', '.join(missing)}")
    if df.height == 0:
        raise LogError(f"{source}: the table has no rows")
    for col, kind in want.items():
        if not _side_kind_ok(df[col].dtype, kind):
            raise LogError(f"{source}: column {col!r} must be {kind}, got {df[col].dtype}")
        nulls = df[col].is_null()
        if nulls.any():
            raise LogError(f"{source}: column {col!r} has null values; {_rows(df, nulls, col)}")
        if kind == "numeric":
            bad = ~df[col].cast(pl.Float64).is_finite()
            if bad.any():
                raise LogError(f"{source}: column {col!r} must be finite; {_rows(df, bad, col)}")
        if kind != "text":
            bad = df[col] < 0
            if bad.any():
                raise LogError(f"{source}: column {col!r} must be >= 0; {_rows(df, bad, col)}")
    for col in (key, SOURCE_ID) if SOURCE_ID in want else (key,):
        dup = df[col].is_duplicated()
        if dup.any():
            raise LogError(f"{source}: column {col!r} is not unique; {_rows(df, dup, col)}")
    return df


def read_logs(
    path: str | Path, *, scenarios: Sequence[str] | None = None, verify: bool = True
) -> pl.DataFrame:
    """Read and validate a parquet log file (or a folder holding ``logs.parquet``).

    A folder with a manifest is verified first (:func:`simulator.logfolder.verify_named`):
    a file changed since it was generated is refused. ``verify=False``: the caller has
    verified the folder already.
    """
    path = Path(path)
    if path.is_dir():
        path = path / LOGS
    if not path.exists():
        raise UserError(f"log file not found: {path}")
    if verify:
        verify_named(path)
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a corrupt file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read {path} as parquet: {first}") from None
    return validate_logs(df, scenarios=scenarios, source=str(path))


def world_tables(world: World) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ``users`` and ``items`` side tables: what a platform knows, not the ground truth."""
    users = pl.DataFrame(
        {"user_id": np.arange(world.users.n, dtype=np.int64)}
        | {name: world.users.profile[:, f] for f, name in enumerate(world.users.profile_names)}
    )
    it = world.items
    items = pl.DataFrame(
        {
            "item_id": np.arange(it.n, dtype=np.int64),
            "category": it.category,
            "content_type": np.array(it.content_type_names)[it.content_type],
            "duration": it.duration,
        }
    )
    return users, items


def logical_seconds(start: dt.datetime) -> pl.Expr:
    """The ``timestamp`` column as float seconds since `start` (the engine's logical time)."""
    return (pl.col("timestamp") - pl.lit(start)).dt.total_microseconds().cast(pl.Float64) / 1e6


def start_datetime(world: World) -> dt.datetime:
    day0 = dt.date.fromisoformat(world.config.periods.start_date)
    return dt.datetime(day0.year, day0.month, day0.day, tzinfo=dt.timezone.utc)


def chunk_root() -> Path:
    """Where log writers keep their chunk files: one folder per user in the temp folder."""
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    return Path(tempfile.gettempdir()) / f"abtest-logs-{uid}"


class LogWriter:
    """An engine sink writing every exposure in the log schema as parquet chunks.

    Memory stays bounded by `chunk_rows`; :meth:`finish` merges the chunks into one file
    sorted by time (streaming) and writes it atomically. The chunks live in a staging folder
    under :func:`chunk_root` that :meth:`close` removes (use the writer as a context manager,
    or close it in a ``finally``: SIGTERM reaches it as an exception); one left by a killed
    process is removed by the next writer.
    """

    def __init__(self, world: World, arm_names: Sequence[str], chunk_rows: int = 500_000):
        self.world = world
        self.arm_names = list(arm_names)
        self.chunk_rows = chunk_rows
        root = chunk_root()
        with contextlib.suppress(OSError):  # private to this user; staging_dir reports failures
            root.mkdir(mode=0o700, exist_ok=True)
        self._stack = contextlib.ExitStack()
        self.tmpdir = self._stack.enter_context(staging_dir(root))
        self._parts: dict[str, list[np.ndarray]] = {}
        self._rows = 0
        self.chunks: list[Path] = []

    def add(self, arm: int, batch: RequestBatch, slates: Slates, responses: Responses) -> None:
        b, k = slates.items.shape
        rep = lambda a: np.repeat(a, k)  # noqa: E731
        policy_code = np.where(slates.component == 1, -1, arm).astype(np.int8)
        cols = {
            "request_id": rep(batch.request_id),
            "session_id": rep(batch.session_id),
            "timestamp": rep(batch.timestamp),
            "user_id": rep(batch.user_id),
            "scenario": np.full(b * k, batch.scenario, dtype=np.int8),
            "item_id": slates.items.ravel(),
            "position": np.tile(np.arange(k, dtype=np.int64), b),
            "click": responses.click.ravel(),
            "watch_time": responses.watch_time.ravel(),
            "propensity": slates.propensity.ravel(),
            "policy": rep(policy_code),
        }
        for name, arr in cols.items():
            self._parts.setdefault(name, []).append(arr)
        self._rows += b * k
        if self._rows >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if not self._rows:
            return
        frame = pl.DataFrame({n: np.concatenate(v) for n, v in self._parts.items()})
        path = self.tmpdir / f"chunk-{len(self.chunks):05d}.parquet"
        frame.write_parquet(path)
        self.chunks.append(path)
        self._parts, self._rows = {}, 0

    def lazy(self) -> pl.LazyFrame:
        """All exposures written so far, in the log schema (not yet sorted)."""
        self.flush()
        if not self.chunks:
            return pl.DataFrame(schema=LOG_SCHEMA).lazy()
        start = start_datetime(self.world)
        names = [s.name for s in self.world.scenarios]
        policies = {i: n for i, n in enumerate(self.arm_names)} | {-1: UNIFORM}
        micros = (pl.col("timestamp") * 1e6).round().cast(pl.Int64)
        return pl.scan_parquet(self.chunks).select(
            "request_id",
            "session_id",
            (pl.lit(start, dtype=UTC_US) + pl.duration(microseconds=micros)).alias("timestamp"),
            "user_id",
            pl.col("scenario").replace_strict(dict(enumerate(names)), return_dtype=pl.String),
            "item_id",
            "position",
            "click",
            pl.col("watch_time").cast(pl.Float64),
            pl.col("propensity").fill_nan(None),
            pl.col("policy").replace_strict(policies, return_dtype=pl.String),
        )

    def finish(self, path: str | Path) -> Path:
        """Write all exposures, sorted by (timestamp, request_id, position), to `path`."""
        fileio.write_parquet(path, self.lazy().sort(SORT_KEYS))
        return Path(path)

    def close(self) -> None:
        """Remove the chunk files (idempotent)."""
        self._stack.close()

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
