"""Import logged interactions as a log folder: ``python -m abtest import FORMAT SRC --out DIR``.

Formats (:data:`FORMATS`):

* ``kuairand`` (:func:`import_kuairand`): a KuaiRand folder, ``log_*.csv`` (standard and
  random logs), optional ``user_features*.csv`` and ``video_features_basic*.csv``. The
  semantics of :func:`simulator.converters.kuairand_to_logs`: one request per interaction at
  position 0, numbered in (time, user, video) order; sessions by a 30-minute gap per user and
  tab; random rows (``is_rand``) policy ``uniform`` with propensity 1 / the random log's
  distinct videos, standard rows ``standard`` with none. Scenarios ``tab<N>``: the 5 busiest
  tabs unless ``tabs`` picks them.
* ``obd`` (:func:`import_obd`): an Open Bandit Dataset folder, ``<policy>/<campaign>/
  <campaign>.csv`` for the policies ``random`` (named ``uniform``) and ``bts``. Every
  campaign is a scenario, every row a request and a session of its own; request ids are
  numbered over all files in (time, file, row) order. Items are ``<campaign>/<item_id>``
  (each campaign numbers its own items); users the 63-bit hash of the four user features
  (:func:`simulator.converters.user_hash`).
* ``table`` (:func:`import_table`): any CSV or parquet file whose columns a mapping names
  (:func:`parse_mapping`); see :func:`import_table` for the defaults.

The folder (the spec of issue 16): ``logs.parquet`` in the log schema, sorted by (timestamp,
request_id, position), with **dense** user and item ids (0..n-1, in sorted order of the
source ids: numeric for integer ids, text otherwise); ``users.parquet`` / ``items.parquet``
with the dense id, ``source_id`` (the source's id as text) and integer-coded features
(:func:`code_feature`); ``manifest.json`` (``kind: imported``, scenarios busiest first,
row counts, time range, ``pre_period_end`` = start + `pre_fraction` of the logged time,
traffic shares, rows per policy, the format's settings), sealed by
:func:`simulator.logfolder.seal`. Everything is built in a staging folder beside the output
and swapped in whole at the end (:func:`core.staging.replace_dir`): a failure leaves the
output folder as it was, and an output folder that is not empty must be a log folder (an
earlier import or a generated one), which is replaced as a whole.

Bad input is a :class:`core.errors.UserError` naming the file, the column and the first bad
rows (0-based data rows, as :func:`simulator.logs.validate_logs` numbers them).

Memory: KuaiRand and OBD files are read lazily (only the needed columns, explicit dtypes) and
streamed into narrow parquet files in a work folder; the rows are then held once in narrow
columns (about 40 bytes a row) to number requests and sessions, and ``logs.parquet`` is
streamed out of them. A 10-million-row KuaiRand log imports in well under 2 GB
(``benchmarks/bench_import.py``). The table format reads its file whole.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import yaml

from core.errors import UserError
from core.staging import recover_dir, replace_dir, staging_dir
from simulator.converters import (
    KUAIRAND_COLUMNS,
    OBD_COLUMNS,
    OBD_TIME_EXAMPLE,
    OBD_USER_FEATURES,
    STANDARD,
    collect_checked,
    first_rows,
    gap_sessions,
    obd_timestamp,
    scan_csv_columns,
    sink_checked,
    user_hash,
)
from simulator.logfolder import ITEMS, LOGS, MANIFEST, USERS, seal
from simulator.logs import LOG_SCHEMA, SOURCE_ID, UNIFORM, UTC_US, LogError, validate_logs
from simulator.logs import validate_side_table as _validate_side_table

FORMATS = ("kuairand", "obd", "table")
IMPORTED = "imported"
REPLACEABLE = (IMPORTED, "synthetic")  # manifest kinds of folders an import may replace
PRE_FRACTION = 0.5
SESSION_GAP_MINUTES = 30.0
DEFAULT_TABS = 5
TIME_UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1}  # microseconds per unit
OBD_POLICIES = {"random": UNIFORM, "bts": "bts"}  # folder -> policy name
TABLE_REQUIRED = ("user_id", "item_id", "timestamp", "click")
TABLE_DEFAULTS = {
    "scenario": "all",
    "position": 0,
    "watch_time": None,
    "propensity": None,
    "policy": "logged",
}
USER_KEYS = ("user_id",)
ITEM_KEYS = ("item_id", "category", "content_type", "duration")
UNKNOWN_TYPE = "unknown"  # an item's content type when the source has none for it
# Plausible timestamps: outside these years an epoch number is in another unit.
YEARS = (1970, 2200)

Say = Callable[[str], None]


def _silent(_: str) -> None:
    pass


@dataclass(frozen=True)
class Imported:
    """An import's result: the folder, its manifest and the per-scenario table."""

    out: Path
    manifest: dict[str, Any]
    scenarios: pl.DataFrame  # scenario, requests, share, rows, clicks, ctr (busiest first)
    seconds: float


# ------------------------------------------------------------------------ output folder


def _manifest_kind(folder: Path) -> str | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest.get("kind") if isinstance(manifest, dict) else None


def claim_out(out: str | Path, sources: Sequence[Path] = ()) -> Path:
    """Check, before any work, that the folder `out` may be written (replaced as a whole);
    its resolved path. Nothing is created.

    It must not be a file, the current folder or one above it, nor hold a source; when not
    empty it must be a log folder (its manifest's kind imported or synthetic).
    """
    out = Path(out)
    try:
        real = out.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise UserError(f"output folder {out} cannot be resolved: {exc}") from None
    with contextlib.suppress(OSError):
        recover_dir(real)  # an earlier swap was cut between its two renames
    if out.exists() and not out.is_dir():
        raise UserError(f"output folder {out} is a file, not a folder")
    if real.parent == real or Path.cwd().resolve().is_relative_to(real):
        raise UserError(
            f"output folder {out} is the current folder or holds it; it is replaced as a "
            "whole: name a folder below the current one"
        )
    for src in sources:
        if src.resolve().is_relative_to(real):
            raise UserError(
                f"output folder {out} holds the source {src}; it is replaced as a whole: "
                "name another folder"
            )
    if out.is_dir():
        try:
            entries = list(out.iterdir())
        except OSError as exc:
            raise UserError(f"cannot read output folder {out}: {exc.strerror or exc}") from None
        if entries and _manifest_kind(out) not in REPLACEABLE:
            raise UserError(
                f"output folder {out} is not empty and is not a log folder (no {MANIFEST} of "
                "an imported or generated one); it would be replaced as a whole: use a new "
                "or empty folder"
            )
    parent = next(p for p in real.parents if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"output folder {out} is not writable ({parent})")
    return real


@contextlib.contextmanager
def _building(target: Path) -> Iterator[tuple[Path, Path]]:
    """A work folder and a staging folder beside `target`; the staging folder replaces
    `target` when the block ends without an error. Both are removed however it ends."""
    with staging_dir(target.parent) as work, staging_dir(target.parent) as stage:
        yield work, stage
        replace_dir(stage, target)


# ------------------------------------------------------------------------ shared helpers


def _check_settings(pre_fraction: float, session_gap_minutes: float) -> None:
    if not (isinstance(pre_fraction, float | int) and 0 < pre_fraction < 1):
        raise UserError(f"--pre-fraction must be in (0, 1), got {pre_fraction}")
    if not (math.isfinite(session_gap_minutes) and session_gap_minutes > 0):
        raise UserError(f"--session-gap must be > 0 minutes, got {session_gap_minutes}")


def _check_rules(
    lf: pl.LazyFrame, rules: Sequence[tuple[str, pl.Expr, str]], source: str, shown=None
) -> None:
    """Raise a LogError for the first rule with offending rows (column, bad-row expression
    (null counts as fine), rule text): ``{source}: column 'x' must be ...; first offending
    rows: ...``. An empty frame is an error too. `shown`: the column whose value to show per
    rule (default the rule's column)."""
    counts = lf.select(
        pl.len().alias("_rows"),
        *(bad.fill_null(False).sum().alias(f"_r{i}") for i, (_, bad, _) in enumerate(rules)),
    ).collect(engine="streaming")
    if counts["_rows"].item() == 0:
        raise LogError(f"{source}: the log has no rows")
    for i, (column, bad, rule) in enumerate(rules):
        total = counts[f"_r{i}"].item()
        if total:
            value = (shown or {}).get(column, column)
            rows = (
                lf.with_row_index("_row")
                .filter(bad.fill_null(False))
                .select("_row", value)
                .head(5)
                .collect(engine="streaming")
            )
            raise LogError(f"{source}: column {column!r} {rule}; {first_rows(rows, total)}")


def _nulls(columns: Sequence[str]) -> list[tuple[str, pl.Expr, str]]:
    return [(c, pl.col(c).is_null(), "has null values (empty)") for c in columns]


def _rechunked(df: pl.DataFrame) -> pl.DataFrame:
    """`df` with contiguous columns, one column at a time (the peak is one column over)."""
    cols: dict[str, pl.Series] = {}
    for name in df.columns:
        cols[name] = df.get_column(name).rechunk()
        df = df.drop(name)
    return pl.DataFrame(cols)


def _gathered(df: pl.DataFrame, order: pl.Series) -> pl.DataFrame:
    """`df`'s rows in `order`, one column at a time."""
    cols: dict[str, pl.Series] = {}
    for name in df.columns:
        cols[name] = df.get_column(name).gather(order)
        df = df.drop(name)
    return pl.DataFrame(cols)


def _is_integer_text(s: pl.Series) -> bool:
    """Whether every value of a text column is an integer written plainly ("12", not "012")."""
    as_int = s.cast(pl.Int64, strict=False)
    return bool((as_int.cast(pl.String) == s).fill_null(False).sum() == s.len() - s.null_count())


def id_key(source: pl.Series) -> pl.Series:
    """Ids as a sort key: integers (and integer floats, and text that is all plain integers)
    as Int64, anything else as text. Nulls stay null."""
    if source.dtype == pl.Boolean:
        source = source.cast(pl.Int64)
    if source.dtype.is_float():
        whole = source.drop_nulls()
        source = source.cast(pl.Int64) if (whole == whole.round()).all() else source
    if source.dtype.is_integer():
        return source.cast(pl.Int64)
    text = source.cast(pl.String)
    return text.cast(pl.Int64) if _is_integer_text(text) else text


def dense_ids(source: pl.Series) -> tuple[pl.Series, pl.Series]:
    """(code of each value, the source ids by code as text): codes 0..n-1 in sorted order of
    the distinct ids (:func:`id_key`: numeric for integer ids, text otherwise). Nulls stay
    null."""
    key = id_key(source)
    distinct = key.drop_nulls().unique().sort()
    codes = pl.DataFrame({"key": distinct, "code": pl.int_range(len(distinct), eager=True)})
    coded = key.to_frame("key").join(codes, on="key", how="left", maintain_order="left")
    return coded["code"].cast(pl.Int64), distinct.cast(pl.String)


def code_feature(values: pl.Series) -> pl.Series:
    """Integer codes >= 0 of a categorical feature: its distinct values in sorted order
    (numbers in numeric order, text in text order) are 0, 1, ...; a missing value (null or
    NaN) gets the next code of its own."""
    s = values
    if s.dtype == pl.String:
        as_num = s.cast(pl.Float64, strict=False)
        if as_num.null_count() == s.null_count():
            s = as_num
    if s.dtype.is_float():
        s = s.fill_nan(None)
    if s.dtype in (pl.Categorical,) or isinstance(s.dtype, pl.Enum):
        s = s.cast(pl.String)
    distinct = s.drop_nulls().unique().sort()
    table = pl.DataFrame({"v": distinct, "code": pl.int_range(len(distinct), eager=True)})
    coded = s.to_frame("v").join(table, on="v", how="left", maintain_order="left")["code"]
    return coded.fill_null(len(distinct)).cast(pl.Int64)


def _features_table(
    ids: pl.Series, table: pl.DataFrame | None, id_column: str, what: str, path: Path | None
) -> pl.DataFrame:
    """The side table's feature columns for `ids` (source ids as text, in code order), from
    `table` (its `id_column` the ids, matched as :func:`id_key` writes them), every feature
    coded with :func:`code_feature`. A feature named like an id column gets ``_feature``."""
    base = pl.DataFrame({"_sid": ids})
    if table is None:
        return base
    if id_column not in table.columns:
        raise UserError(f"{path}: not a {what} table, missing column {id_column!r}")
    table = table.with_columns(_sid=id_key(table[id_column]).cast(pl.String)).drop(id_column)
    nested = [c for c, t in table.schema.items() if t.is_nested() or t in (pl.Binary, pl.Object)]
    if nested:
        raise UserError(
            f"{path}: column(s) {', '.join(nested)} of the {what} table hold lists, structs or "
            "bytes, not a categorical feature: drop them"
        )
    reserved = {"user_id", "item_id", SOURCE_ID}
    table = table.rename({c: f"{c}_feature" for c in table.columns if c in reserved})
    table = table.unique("_sid", keep="first", maintain_order=True)
    joined = base.join(table, on="_sid", how="left", maintain_order="left")
    return joined.select(
        "_sid", *(code_feature(joined[c]).alias(c) for c in joined.columns if c != "_sid")
    )


def _side_table(
    key: str, source_ids: pl.Series, features: pl.DataFrame | None, what: str
) -> pl.DataFrame:
    table = pl.DataFrame(
        {key: pl.int_range(len(source_ids), eager=True, dtype=pl.Int64), SOURCE_ID: source_ids}
    )
    if features is not None:
        table = pl.concat([table, features.drop("_sid")], how="horizontal")
    return _validate_side_table(table, what, f"{what}.parquet", full=False)


def _impute_duration(seconds: pl.Series) -> tuple[pl.Series, int]:
    """Durations with the missing ones (null, NaN, negative) set to the median of the known,
    and how many were missing."""
    s = seconds.cast(pl.Float64).fill_nan(None).to_frame("d")
    s = s.select(pl.when(pl.col("d") >= 0).then(pl.col("d")).alias("duration")).to_series()
    missing = s.null_count()
    if missing:
        known = s.drop_nulls()
        s = s.fill_null(float(known.median()) if known.len() else 0.0)
    return s, missing


# ------------------------------------------------------------------------ writing


@dataclass
class _Core:
    """The logs in request order, coded, one column per log column: ``ts`` (Int64
    microseconds, UTC), ``request`` (absent: each row is a request of its own, numbered in
    row order), ``session``, ``user``, ``scenario`` (a code into `scenarios`), ``item``,
    ``position`` (absent: 0), ``click``, ``watch_time``, ``propensity`` (absent: null),
    ``policy`` (a code into `policies`). `exprs` replaces a log column's expression (over
    these columns)."""

    frame: pl.DataFrame
    scenarios: list[str]
    policies: list[str]
    exprs: dict[str, pl.Expr] = field(default_factory=dict)


def _names(codes: str, names: list[str]) -> pl.LazyFrame:
    """A small (code, name) table: joined to name the codes (a join streams; replace_strict
    on a long column costs a lot of memory)."""
    frame = pl.DataFrame({codes: pl.int_range(len(names), eager=True), f"_{codes}": names})
    return frame.lazy()


def _write_logs(core: _Core, path: Path) -> None:
    """Stream the coded logs into `path` in the log schema."""
    f = core.frame
    lf = f.lazy()
    if "request" not in f.columns:
        lf = lf.with_row_index("request")
    for name, names in (("scenario", core.scenarios), ("policy", core.policies)):
        table = _names(name, names).with_columns(pl.col(name).cast(f.schema[name]))
        lf = lf.join(table, on=name, how="left", maintain_order="left")
    exprs = {
        "request_id": pl.col("request"),
        "session_id": pl.col("session"),
        "timestamp": pl.from_epoch("ts", time_unit="us").dt.replace_time_zone("UTC"),
        "user_id": pl.col("user"),
        "scenario": pl.col("_scenario"),
        "item_id": pl.col("item"),
        "position": pl.col("position") if "position" in f.columns else pl.lit(0),
        "click": pl.col("click"),
        "watch_time": pl.col("watch_time"),
        "propensity": pl.col("propensity") if "propensity" in f.columns else pl.lit(None),
        "policy": pl.col("_policy"),
    } | core.exprs
    lf.select(exprs[c].cast(t).alias(c) for c, t in LOG_SCHEMA.items()).sink_parquet(path)


def _iso(micros: int) -> str:
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
    return (epoch + dt.timedelta(microseconds=int(micros))).isoformat()


def _finish(
    fmt: str,
    src: Path,
    stage: Path,
    core: _Core,
    users: pl.DataFrame,
    items: pl.DataFrame,
    pre_fraction: float,
    settings: dict[str, Any],
    say: Say,
) -> tuple[dict[str, Any], pl.DataFrame]:
    """Write the folder's files into `stage` and seal it; the manifest and scenario table."""
    f = core.frame
    say(f"writing {LOGS} ({f.height:,} rows)")
    lf = f.lazy()
    if "request" in f.columns:
        per_req = lf.filter(pl.col("request").diff().fill_null(1) != 0)
        per_req = per_req.group_by("scenario").agg(requests=pl.len())
    else:
        per_req = lf.group_by("scenario").agg(requests=pl.len())
    per_row = lf.group_by("scenario").agg(
        rows=pl.len(), clicks=pl.col("click").cast(pl.Int64).sum()
    )
    table = per_req.join(per_row, on="scenario").collect()
    total = int(table["requests"].sum())
    table = (
        table.with_columns(
            scenario=pl.col("scenario")
            .cast(pl.Int64)
            .replace_strict(dict(enumerate(core.scenarios)), return_dtype=pl.String),
            share=pl.col("requests") / total,
            ctr=pl.col("clicks") / pl.col("rows"),
        )
        .sort(pl.col("requests"), pl.col("scenario"), descending=[True, False])
        .select("scenario", "requests", "share", "rows", "clicks", "ctr")
    )
    policies = (
        f.group_by("policy")
        .agg(pl.len())
        .with_columns(
            pl.col("policy").cast(pl.Int64).replace_strict(dict(enumerate(core.policies)))
        )
        .sort("len", "policy", descending=[True, False])
    )
    start, end = int(f["ts"][0]), int(f["ts"][-1])
    _write_logs(core, stage / LOGS)
    users.write_parquet(stage / USERS)
    items.write_parquet(stage / ITEMS)
    manifest = {
        "kind": IMPORTED,
        "format": fmt,
        "source": str(src.resolve()),
        "scenarios": table["scenario"].to_list(),
        "rows": {
            "logs": f.height,
            "users": users.height,
            "items": items.height,
            "requests": total,
        },
        "start": _iso(start),
        "end": _iso(end),
        "pre_fraction": pre_fraction,
        "pre_period_end": _iso(start + round((end - start) * pre_fraction)),
        "traffic_share": {r["scenario"]: r["share"] for r in table.iter_rows(named=True)},
        "policies": {p: n for p, n in policies.iter_rows()},
        "users": [c for c in users.columns if c not in ("user_id", SOURCE_ID)],
        "items": [c for c in items.columns if c not in ("item_id", SOURCE_ID)],
        **settings,
        "summary": table.to_dicts(),
    }
    return seal(stage, manifest), table


def _run(
    fmt: str,
    src: Path,
    target: Path,
    build: Callable[[Path], tuple],
    pre_fraction: float,
    say: Say,
    t0: float,
) -> Imported:
    """Build the folder with `build(work)` -> (core, users, items, settings) and swap it in;
    `t0`: when the import started (``time.perf_counter``)."""
    with _building(target) as (work, stage):
        core, users, items, settings = build(work)
        manifest, table = _finish(fmt, src, stage, core, users, items, pre_fraction, settings, say)
        del core
    return Imported(target, manifest, table, time.perf_counter() - t0)


def format_summary(result: Imported) -> str:
    """A short summary: rows, users, items, scenarios with their shares, time range, policies."""
    m = result.manifest
    rows = m["rows"]
    lines = [
        f"imported {rows['logs']:,} rows ({rows['requests']:,} requests) of {rows['users']:,} "
        f"users and {rows['items']:,} items from {m['format']} {m['source']} "
        f"in {result.seconds:.1f} s",
        f"time: {m['start']} .. {m['end']}; pre-period until {m['pre_period_end']} "
        f"(pre-fraction {m['pre_fraction']:g})",
        f"policies: {', '.join(f'{p} {n:,} rows' for p, n in m['policies'].items())}",
        "",
        f"{'scenario':<20} {'requests':>10} {'share':>7} {'rows':>11} {'CTR':>7}",
    ]
    for r in result.scenarios.iter_rows(named=True):
        lines.append(
            f"{r['scenario']:<20} {r['requests']:>10,} {r['share']:>7.1%} {r['rows']:>11,} "
            f"{r['ctr']:>7.2%}"
        )
    lines.append(f"\nwrote {result.out}/{LOGS}, {USERS}, {ITEMS}, {MANIFEST}")
    return "\n".join(lines)


# ------------------------------------------------------------------------ kuairand


def parse_tabs(text: str | Sequence[int] | None) -> list[int] | None:
    """``"0,1,4"`` (or ``"tab0, tab4"``) -> ``[0, 1, 4]``; None stays None."""
    if text is None or not isinstance(text, str):
        return None if text is None else [int(t) for t in text]
    tabs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        digits = part.removeprefix("tab")
        if not digits.isdigit():
            raise UserError(f"--tabs: {part!r} is not a tab number (e.g. --tabs 0,1,4)")
        tabs.append(int(digits))
    if not tabs:
        raise UserError("--tabs: no tab given (e.g. --tabs 0,1,4)")
    return list(dict.fromkeys(tabs))


def _kuairand_rules() -> list[tuple[str, pl.Expr, str]]:
    c = pl.col
    return [
        *_nulls(("user_id", "video_id", "time_ms", "is_click", "is_rand", "tab")),
        ("is_click", ~c("is_click").is_in([0, 1]), "must be 0 or 1"),
        ("is_rand", ~c("is_rand").is_in([0, 1]), "must be 0 or 1"),
        ("play_time_ms", ~c("play_time_ms").is_finite(), "must be finite (no NaN or inf)"),
        ("play_time_ms", c("play_time_ms") < 0, "must be >= 0"),
        ("duration_ms", ~c("duration_ms").is_finite(), "must be finite (no NaN or inf)"),
        ("duration_ms", c("duration_ms") < 0, "must be >= 0"),
        ("tab", c("tab") < 0, "must be >= 0"),
    ]


def _read_side_csv(paths: list[Path], id_column: str, what: str) -> pl.DataFrame | None:
    """Side-table CSVs as text columns (concatenated; the first row of an id wins)."""
    if not paths:
        return None
    frames = []
    for path in paths:
        try:
            frame = pl.read_csv(path, infer_schema=False)
        except Exception as exc:  # polars raises several types for an unreadable file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"cannot read {path} as a {what} CSV: {first}") from None
        if id_column not in frame.columns:
            raise UserError(f"{path}: not a {what} CSV, missing column {id_column!r}")
        frames.append(frame.drop([c for c in frame.columns if not c or c.startswith("Unnamed")]))
    frame = pl.concat(frames, how="diagonal")
    return frame.unique(id_column, keep="first", maintain_order=True)


def _kuairand_items(
    videos: pl.Series, log_duration: pl.DataFrame, paths: list[Path]
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """items.parquet: video ids -> dense codes with category (first tag), content type
    (video_type) and duration (video_duration, else the log's first duration_ms; seconds)."""
    source_ids = videos.cast(pl.String)
    table = pl.DataFrame(
        {"item_id": pl.int_range(len(videos), eager=True, dtype=pl.Int64), SOURCE_ID: source_ids}
    )
    features = _read_side_csv(paths, "video_id", "KuaiRand video features")
    note: dict[str, Any] = {"video_features": [p.name for p in paths]}
    duration = log_duration["duration"]
    if features is not None:
        feats = pl.DataFrame({"video_id": source_ids}).join(
            features, on="video_id", how="left", maintain_order="left"
        )
        if "tag" in feats.columns:
            first_tag = feats["tag"].str.split(",").list.first().str.strip_chars()
            table = table.with_columns(category=code_feature(first_tag.replace("", None)))
        if "video_type" in feats.columns:
            table = table.with_columns(
                content_type=feats["video_type"]
                .str.strip_chars()
                .replace("", None)
                .fill_null(UNKNOWN_TYPE)
            )
        if "video_duration" in feats.columns:
            listed = feats["video_duration"].cast(pl.Float64, strict=False) / 1000.0
            duration = listed.fill_nan(None).fill_null(duration)
    duration, missing = _impute_duration(duration)
    note["durations_imputed"] = missing
    table = table.with_columns(duration=duration)
    return _validate_side_table(table, "items", "items.parquet", full=False), note


def _narrow_ints(values: np.ndarray) -> pl.Series:
    """Non-negative integers as UInt32 when they fit (half the memory of Int64)."""
    if values.size and values.max() >= 2**32:
        return pl.Series(values.astype(np.int64))
    return pl.Series(values.astype(np.uint32))


def _kuairand_rows(
    narrow: list[Path], tabs: list[int], users: np.ndarray, videos: np.ndarray
) -> pl.DataFrame:
    """The rows of `tabs` in the narrow parquet files, in file order, as narrow columns:
    time_ms, u and v (dense codes), scenario (index into `tabs`), click, policy (1: the
    random log), play, dur. Read one column at a time (the peak is the frame plus about one
    column: a streaming collect of all of them at once holds several times more)."""
    masks = [
        pl.scan_parquet(p).select(pl.col("tab").is_in(tabs)).collect().to_series() for p in narrow
    ]

    def column(name: str) -> pl.Series:
        parts = [
            pl.scan_parquet(p).select(name).collect().to_series().filter(mask)
            for p, mask in zip(narrow, masks, strict=True)
        ]
        return pl.concat(parts).rechunk()

    cols: dict[str, pl.Series] = {"time_ms": column("time_ms")}
    for name, code, ids in (("user_id", "u", users), ("video_id", "v", videos)):
        raw = column(name).to_numpy()
        cols[code] = pl.Series(np.searchsorted(ids, raw).astype(np.int32))
        del raw
    tab_index = pl.DataFrame({"tab": tabs, "scenario": list(range(len(tabs)))})
    tab = column("tab").to_frame()
    cols["scenario"] = tab.join(
        tab_index.with_columns(pl.col("scenario").cast(pl.UInt16)),
        on="tab",
        how="left",
        maintain_order="left",
    )["scenario"]
    del tab
    cols["click"] = column("is_click").cast(pl.Int8)
    cols["policy"] = column("is_rand").cast(pl.UInt8)
    cols["play"] = column("play_time_ms")
    cols["dur"] = column("duration_ms")
    return pl.DataFrame(cols)


def import_kuairand(
    src: str | Path,
    out: str | Path,
    *,
    tabs: str | Sequence[int] | None = None,
    pre_fraction: float = PRE_FRACTION,
    session_gap_minutes: float = SESSION_GAP_MINUTES,
    say: Say = _silent,
) -> Imported:
    """Import a KuaiRand folder (see the module docstring) into the log folder `out`."""
    t0 = time.perf_counter()
    src = Path(src)
    _check_settings(pre_fraction, session_gap_minutes)
    wanted_tabs = parse_tabs(tabs)
    if not src.is_dir():
        raise UserError(f"KuaiRand folder not found: {src}")
    paths = sorted(src.glob("log_*.csv"))
    if not paths:
        raise UserError(f"no KuaiRand log files (log_*.csv) in {src}")
    target = claim_out(out, [src])
    scans = [scan_csv_columns(p, KUAIRAND_COLUMNS, "KuaiRand log") for p in paths]
    user_files = sorted(src.glob("user_features*.csv"))
    video_files = sorted(src.glob("video_features_basic*.csv"))
    gap_ms = session_gap_minutes * 60_000.0

    def build(work: Path):
        narrow = []
        for i, (path, (lf, wanted)) in enumerate(zip(paths, scans, strict=True)):
            say(f"[1/4] reading {path.name}")
            dest = work / f"log-{i}.parquet"
            sink_checked(lf, dest, path, wanted, "KuaiRand log")
            _check_rules(pl.scan_parquet(dest), _kuairand_rules(), str(path))
            narrow.append(dest)
        everything = pl.concat([pl.scan_parquet(p) for p in narrow])
        say("[2/4] counting tabs, users and videos")
        tab_rows = (
            everything.group_by("tab").len().sort("len", "tab", descending=[True, False])
        ).collect(engine="streaming")
        present = tab_rows["tab"].to_list()
        if wanted_tabs is None:
            chosen = present[:DEFAULT_TABS]
        else:
            unknown = [t for t in wanted_tabs if t not in present]
            if unknown:
                listed = ", ".join(f"{t} ({n:,} rows)" for t, n in tab_rows.iter_rows())
                raise UserError(
                    f"--tabs: no tab {', '.join(map(str, unknown))} in the KuaiRand logs of "
                    f"{src}; its tabs: {listed}"
                )
            chosen = wanted_tabs
        pool = everything.filter(pl.col("is_rand") == 1).select(pl.col("video_id").n_unique())
        pool_size = max(int(pool.collect(engine="streaming").item()), 1)
        kept = everything.filter(pl.col("tab").is_in(chosen))
        users = kept.select(pl.col("user_id").unique().sort()).collect(engine="streaming")
        videos = kept.select(pl.col("video_id").unique().sort()).collect(engine="streaming")
        users, videos = users["user_id"], videos["video_id"]
        say(f"[3/4] numbering requests and sessions of tabs {', '.join(map(str, chosen))}")
        frame = _kuairand_rows(narrow, chosen, users.to_numpy(), videos.to_numpy())
        order = frame.select(
            pl.arg_sort_by("time_ms", "u", "v", maintain_order=True)  # ties: file order
        ).to_series()
        frame = _gathered(frame, order)
        del order
        wide = np.int64 if len(users) * len(chosen) >= 2**31 else np.int32
        key = frame["u"].to_numpy().astype(wide) * len(chosen)
        key += frame["scenario"].to_numpy().astype(wide)
        session = gap_sessions(key, frame["time_ms"].to_numpy(), gap_ms)
        del key
        log_duration = (
            frame.lazy().group_by("v").agg(duration=pl.col("dur").first() / 1000.0).sort("v")
        ).collect()
        say("[4/4] side tables")
        items, note = _kuairand_items(videos, log_duration, video_files)
        user_feats = _read_side_csv(user_files, "user_id", "KuaiRand user features")
        features = _features_table(
            users.cast(pl.String), user_feats, "user_id", "KuaiRand user features", None
        )
        users_table = _side_table("user_id", users.cast(pl.String), features, "users")
        # the coded columns, replacing the read ones one at a time
        frame = frame.drop("dur").with_columns(session=_narrow_ints(session))
        del session
        frame = frame.with_columns(ts=pl.col("time_ms") * 1000).drop("time_ms")
        frame = frame.with_columns(watch_time=pl.col("play") / 1000.0).drop("play")
        core = frame.rename({"u": "user", "v": "item"})
        del frame
        uniform = pl.col("policy") == 1
        exprs = {"propensity": pl.when(uniform).then(1.0 / pool_size).otherwise(None)}
        settings = {
            "tabs": chosen,
            "tab_rows": {f"tab{t}": n for t, n in tab_rows.iter_rows()},
            "session_gap_minutes": session_gap_minutes,
            "pool_size": pool_size,
            "source_files": [p.name for p in paths],
            "user_features": [p.name for p in user_files],
            **note,
        }
        scenarios = [f"tab{t}" for t in chosen]
        return _Core(core, scenarios, [STANDARD, UNIFORM], exprs), users_table, items, settings

    return _run("kuairand", src, target, build, pre_fraction, say, t0)


# ------------------------------------------------------------------------ obd


def _obd_files(src: Path, campaigns: Sequence[str] | None) -> list[tuple[str, str, Path]]:
    """(policy folder, campaign, csv) of an Open Bandit Dataset folder, in sorted order."""
    if not src.is_dir():
        raise UserError(f"Open Bandit Dataset folder not found: {src}")
    found = []
    for folder in OBD_POLICIES:
        base = src / folder
        if not base.is_dir():
            continue
        for camp in sorted(p for p in base.iterdir() if p.is_dir()):
            csv = camp / f"{camp.name}.csv"
            if csv.is_file():
                found.append((folder, camp.name, csv))
    if not found:
        raise UserError(
            f"no Open Bandit Dataset logs in {src} (expected {'|'.join(OBD_POLICIES)}/"
            "<campaign>/<campaign>.csv)"
        )
    if campaigns:
        names = sorted({c for _, c, _ in found})
        unknown = [c for c in campaigns if c not in names]
        if unknown:
            raise UserError(
                f"--campaigns: no campaign {', '.join(unknown)} in {src}; its campaigns: "
                f"{', '.join(names)}"
            )
        found = [f for f in found if f[1] in campaigns]
    return found


def _obd_rules() -> list[tuple[str, pl.Expr, str]]:
    c = pl.col
    return [
        *_nulls(("timestamp_text", "item_id", "position", "click")),
        (
            "timestamp",
            c("timestamp").is_null() & c("timestamp_text").is_not_null(),
            f"cannot be parsed (expected e.g. {OBD_TIME_EXAMPLE})",
        ),
        ("click", ~c("click").is_in([0, 1]), "must be 0 or 1"),
        ("position", c("position") < 1, "must be >= 1 (positions are 1-based)"),
        ("propensity_score", ~c("propensity_score").is_finite(), "must be finite"),
        (
            "propensity_score",
            (c("propensity_score") <= 0) | (c("propensity_score") > 1),
            "must be in (0, 1]",
        ),
    ]


def _obd_categories(files: list[tuple[str, str, Path]]) -> pl.DataFrame | None:
    """(campaign, item_id, item_feature_1) of the campaigns' item_context.csv, if any."""
    frames = []
    for campaign in dict.fromkeys(c for _, c, _ in files):
        for _, c, path in files:
            context = path.parent / "item_context.csv"
            if c != campaign or not context.is_file():
                continue
            lf, wanted = scan_csv_columns(
                context,
                {"item_id": pl.Int64()},
                "OBD item context",
                optional={"item_feature_1": pl.String()},
            )
            if "item_feature_1" not in wanted:
                break
            frame = collect_checked(lf, context, wanted, "OBD item context")
            frame = frame.unique("item_id", keep="first", maintain_order=True)
            frames.append(frame.with_columns(campaign=pl.lit(campaign)))
            break
    return pl.concat(frames) if frames else None


def import_obd(
    src: str | Path,
    out: str | Path,
    *,
    campaigns: Sequence[str] | None = None,
    pre_fraction: float = PRE_FRACTION,
    say: Say = _silent,
) -> Imported:
    """Import an Open Bandit Dataset folder (see the module docstring) into `out`."""
    t0 = time.perf_counter()
    src = Path(src)
    _check_settings(pre_fraction, SESSION_GAP_MINUTES)
    files = _obd_files(src, campaigns)
    target = claim_out(out, [src])
    what = "Open Bandit Dataset"
    scans = [scan_csv_columns(p, OBD_COLUMNS, what) for _, _, p in files]

    def build(work: Path):
        narrow = []
        for i, ((_, _, path), (lf, wanted)) in enumerate(zip(files, scans, strict=True)):
            say(f"[1/3] reading {path.relative_to(src)}")
            dest = work / f"obd-{i}.parquet"
            lf = lf.with_columns(
                *(pl.col(c).fill_null("") for c in OBD_USER_FEATURES),
                timestamp_text=pl.col("timestamp"),
                timestamp=obd_timestamp(),
            )
            sink_checked(lf, dest, path, wanted, what)
            shown = {"timestamp": "timestamp_text"}
            _check_rules(pl.scan_parquet(dest), _obd_rules(), str(path), shown)
            narrow.append(dest)
        say("[2/3] users and items")
        features = list(OBD_USER_FEATURES)
        tuples = (
            pl.concat([pl.scan_parquet(p).select(features) for p in narrow])
            .unique()
            .collect(engine="streaming")
        )
        hashes = [user_hash(row) for row in tuples.iter_rows()]
        tuples = tuples.with_columns(hash=pl.Series(hashes, dtype=pl.Int64)).sort("hash")
        tuples = tuples.with_columns(u=pl.int_range(tuples.height, dtype=pl.Int32))
        users = pl.DataFrame(
            {
                "user_id": pl.int_range(tuples.height, eager=True, dtype=pl.Int64),
                SOURCE_ID: tuples["hash"].cast(pl.String),
            }
        ).with_columns(*(code_feature(tuples[c]).alias(c) for c in features))
        users = _validate_side_table(users, "users", "users.parquet", full=False)

        per_file = [
            pl.scan_parquet(p).select("item_id").unique().with_columns(campaign=pl.lit(c))
            for (_, c, _), p in zip(files, narrow, strict=True)
        ]
        item_keys = pl.concat(per_file).unique().collect(engine="streaming")
        item_keys = item_keys.with_columns(source=pl.format("{}/{}", "campaign", "item_id")).sort(
            "source"
        )
        item_keys = item_keys.with_columns(v=pl.int_range(item_keys.height, dtype=pl.Int32))
        items = pl.DataFrame(
            {
                "item_id": pl.int_range(item_keys.height, eager=True, dtype=pl.Int64),
                SOURCE_ID: item_keys["source"],
            }
        )
        categories = _obd_categories(files)
        if categories is not None:
            joined = item_keys.join(
                categories, on=["campaign", "item_id"], how="left", maintain_order="left"
            )
            items = items.with_columns(category=code_feature(joined["item_feature_1"]))
        items = _validate_side_table(items, "items", "items.parquet", full=False)

        say("[3/3] numbering requests")
        scen_names = sorted({c for _, c, _ in files})
        pol_names = list(dict.fromkeys(OBD_POLICIES[f] for f, _, _ in files))
        ucode = tuples.select(*features, "u").lazy()
        parts = []
        for i, ((folder, campaign, _), p) in enumerate(zip(files, narrow, strict=True)):
            vcode = item_keys.filter(pl.col("campaign") == campaign).select("item_id", "v")
            parts.append(
                pl.scan_parquet(p)
                .with_row_index("row")
                .join(ucode, on=features, how="inner")
                .join(vcode.lazy(), on="item_id", how="inner")
                .select(
                    ts=pl.col("timestamp").dt.epoch("us"),
                    file=pl.lit(i, dtype=pl.UInt16),
                    row="row",
                    user="u",
                    scenario=pl.lit(scen_names.index(campaign), dtype=pl.UInt16),
                    item="v",
                    position=(pl.col("position") - 1).cast(pl.Int16),
                    click=pl.col("click").cast(pl.Int8),
                    propensity="propensity_score",
                    policy=pl.lit(pol_names.index(OBD_POLICIES[folder]), dtype=pl.UInt8),
                )
            )
        frame = _rechunked(pl.concat(parts).collect(engine="streaming"))
        order = frame.select(pl.arg_sort_by("ts", "file", "row")).to_series()
        frame = _gathered(frame.drop("file", "row"), order)
        n = frame.height
        frame = frame.with_columns(
            request=pl.int_range(n, dtype=pl.Int64),
            session=pl.int_range(n, dtype=pl.Int64),
            watch_time=pl.lit(None, dtype=pl.Float64),
        )
        settings = {
            "campaigns": scen_names,
            "source_files": [str(p.relative_to(src)) for _, _, p in files],
            "user_id": "blake2b-64 hash of user_feature_0..3 (source_id)",
        }
        return _Core(frame, scen_names, pol_names), users, items, settings

    return _run("obd", src, target, build, pre_fraction, say, t0)


# ------------------------------------------------------------------------ table


def parse_mapping(spec: str | dict | None) -> dict[str, str]:
    """A column mapping: ``"user_id=uid,item_id=vid"``, a YAML file of such a flat mapping
    (our column: the source's), or a dict. Keys are our log columns, or ``users.<col>`` /
    ``items.<col>`` for the side tables' columns (``users.user_id``, ``items.item_id``,
    ``items.category``, ``items.content_type``, ``items.duration``)."""
    if spec is None:
        return {}
    if isinstance(spec, dict):
        raw = spec
    elif Path(spec).suffix in (".yaml", ".yml") or ("=" not in spec and Path(spec).is_file()):
        path = Path(spec)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"--map: mapping file not found: {path}") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"--map: cannot read {path} as YAML: {first}") from None
        if not isinstance(raw, dict) or not all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in raw.values()
        ):
            raise UserError(
                f"--map: {path} must be a flat mapping of our column to the source's column "
                "(e.g. user_id: uid)"
            )
    else:
        raw = {}
        for part in (p.strip() for p in spec.split(",")):
            if not part:
                continue
            key, sep, value = part.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise UserError(
                    f"--map: {part!r} is not OURS=THEIRS (e.g. --map user_id=uid,item_id=vid)"
                )
            if key.strip() in raw:
                raise UserError(f"--map: column {key.strip()!r} is mapped twice")
            raw[key.strip()] = value.strip()
    mapping = {str(k).strip(): str(v).strip() for k, v in raw.items()}
    known = [*LOG_SCHEMA, *(f"users.{k}" for k in USER_KEYS), *(f"items.{k}" for k in ITEM_KEYS)]
    unknown = [k for k in mapping if k not in known]
    if unknown:
        raise UserError(
            f"--map: unknown column {', '.join(map(repr, unknown))}; ours: {', '.join(known)}"
        )
    return mapping


def _read_table(path: Path, what: str = "table") -> pl.DataFrame:
    """A CSV (every column as text) or parquet file, whole."""
    if not path.is_file():
        raise UserError(f"{what} file not found: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix in (".csv", ".tsv", ".txt"):
            sep = "\t" if suffix == ".tsv" else ","
            frame = pl.read_csv(path, infer_schema=False, separator=sep)
        elif suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
        else:
            raise UserError(
                f"{path}: not a CSV or parquet file (by its name: .csv, .tsv, .parquet or .pq)"
            )
    except UserError:
        raise
    except Exception as exc:  # polars raises several types for an unreadable file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "parquet" if suffix in (".parquet", ".pq") else "CSV"
        raise UserError(f"cannot read {path} as {kind}: {first}") from None
    if frame.height == 0:
        raise UserError(f"{path}: the {what} has no rows")
    return frame


def _source_name(ours: str, theirs: str) -> str:
    return repr(ours) if ours == theirs else f"{ours!r} (source column {theirs!r})"


def _bad_values(frame: pl.DataFrame, mask: pl.Series, column: str) -> str:
    rows = frame.with_row_index("_row").filter(mask).select("_row", column)
    return first_rows(rows, int(mask.sum()))


def _as_number(
    frame: pl.DataFrame, ours: str, theirs: str, dtype: pl.DataType, path: Path
) -> pl.Series:
    """A source column as `dtype` (Int64 or Float64); a value that is not one is an error."""
    s = frame[theirs]
    if s.dtype == pl.Boolean:
        s = s.cast(pl.Int8)
    out = s.cast(dtype, strict=False)
    lost = out.is_null() & s.is_not_null()
    if dtype.is_integer() and s.dtype.is_float():
        lost = lost | (s != s.round()).fill_null(False)
    if not (s.dtype.is_numeric() or s.dtype == pl.String or s.dtype == pl.Null):
        lost = s.is_not_null()
    if lost.any():
        kind = "an integer" if dtype.is_integer() else "a number"
        raise UserError(
            f"{path}: column {_source_name(ours, theirs)} must be {kind}; "
            f"{_bad_values(frame, lost, theirs)}"
        )
    return out


def _timestamps(frame: pl.DataFrame, theirs: str, unit: str, path: Path) -> pl.Series:
    """A source time column as Datetime(us, UTC): datetimes and dates as they are (naive ones
    read as UTC), ISO 8601 text, or epoch numbers (integer or float, also as text) in `unit`."""
    s = frame[theirs]
    name = _source_name("timestamp", theirs)
    if s.dtype == pl.String:
        as_num = s.cast(pl.Float64, strict=False)
        if as_num.null_count() == s.null_count() and s.null_count() < s.len():
            s = as_num
    if s.dtype == pl.Date:
        s = s.cast(pl.Datetime("us"))
    if isinstance(s.dtype, pl.Datetime):
        out = s if s.dtype.time_zone else s.dt.replace_time_zone("UTC")
        out = out.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
    elif s.dtype.is_numeric():
        micros = s.cast(pl.Float64) * TIME_UNITS[unit]
        lo = dt.datetime(YEARS[0], 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1e6
        hi = dt.datetime(YEARS[1], 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1e6
        bad = ((micros < lo) | (micros >= hi) | ~micros.is_finite()).fill_null(False)
        if bad.any():
            raise UserError(
                f"{path}: column {name} holds epoch times outside {YEARS[0]}-{YEARS[1]} in "
                f"--time-unit {unit} (another unit?); {_bad_values(frame, bad, theirs)}"
            )
        out = pl.from_epoch(micros.round().cast(pl.Int64), time_unit="us")
        out = out.dt.replace_time_zone("UTC")
    elif s.dtype == pl.String:
        out = s.str.to_datetime(time_unit="us", strict=False)
        lost = (out.is_null() & s.is_not_null()) if out.len() else s.is_not_null()
        if lost.any():
            raise UserError(
                f"{path}: column {name} cannot be parsed as a time (ISO 8601 such as "
                f"2024-05-01T12:30:00Z, or epoch numbers); {_bad_values(frame, lost, theirs)}"
            )
        out = out if out.dtype.time_zone else out.dt.replace_time_zone("UTC")
        out = out.dt.convert_time_zone("UTC")
    else:
        raise UserError(f"{path}: column {name} must be a time, got {s.dtype}")
    return out.cast(UTC_US)


def _as_text(frame: pl.DataFrame, ours: str, theirs: str, path: Path) -> pl.Series:
    s = frame[theirs]
    if s.dtype == pl.String or s.dtype.is_numeric() or s.dtype == pl.Boolean:
        return s.cast(pl.String)
    if s.dtype == pl.Categorical or isinstance(s.dtype, pl.Enum):
        return s.cast(pl.String)
    raise UserError(f"{path}: column {_source_name(ours, theirs)} must be text, got {s.dtype}")


def _resolve(
    mapping: dict[str, str], prefix: str, keys: Sequence[str], columns: list[str], path: Path
) -> dict[str, str]:
    """Our columns -> the source's present in `columns` (mapped, else the same name)."""
    resolved = {}
    for key in keys:
        theirs = mapping.get(f"{prefix}{key}")
        if theirs is not None:
            if theirs not in columns:
                raise UserError(
                    f"{path}: no column {theirs!r} (mapped to {prefix}{key} by --map); its "
                    f"columns: {', '.join(columns)}"
                )
            resolved[key] = theirs
        elif key in columns:
            resolved[key] = key
    return resolved


def _table_users(path: Path | None, mapping: dict[str, str], ids: pl.Series) -> pl.DataFrame:
    if path is None:
        return _side_table("user_id", ids, None, "users")
    frame = _read_table(path, "users table")
    cols = _resolve(mapping, "users.", USER_KEYS, frame.columns, path)
    if "user_id" not in cols:
        raise UserError(f"{path}: missing column user_id (map it with --map users.user_id=COL)")
    features = _features_table(ids, frame, cols["user_id"], "users", path)
    return _side_table("user_id", ids, features, "users")


def _table_items(
    path: Path | None, mapping: dict[str, str], ids: pl.Series
) -> tuple[pl.DataFrame, int]:
    if path is None:
        return _side_table("item_id", ids, None, "items"), 0
    frame = _read_table(path, "items table")
    cols = _resolve(mapping, "items.", ITEM_KEYS, frame.columns, path)
    if "item_id" not in cols:
        raise UserError(f"{path}: missing column item_id (map it with --map items.item_id=COL)")
    frame = frame.with_columns(_id=id_key(frame[cols["item_id"]]).cast(pl.String))
    frame = frame.unique("_id", keep="first", maintain_order=True)
    joined = pl.DataFrame({"_id": ids}).join(frame, on="_id", how="left", maintain_order="left")
    table = pl.DataFrame(
        {"item_id": pl.int_range(len(ids), eager=True, dtype=pl.Int64), SOURCE_ID: ids}
    )
    imputed = 0
    if "category" in cols:
        table = table.with_columns(category=code_feature(joined[cols["category"]]))
    if "content_type" in cols:
        text = _as_text(joined, "content_type", cols["content_type"], path)
        table = table.with_columns(content_type=text.fill_null(UNKNOWN_TYPE))
    if "duration" in cols:
        seconds = _as_number(joined, "duration", cols["duration"], pl.Float64(), path)
        seconds, imputed = _impute_duration(seconds)
        table = table.with_columns(duration=seconds)
    return _validate_side_table(table, "items", "items.parquet", full=False), imputed


def import_table(
    src: str | Path,
    out: str | Path,
    *,
    mapping: str | dict | None = None,
    time_unit: str = "s",
    users: str | Path | None = None,
    items: str | Path | None = None,
    pre_fraction: float = PRE_FRACTION,
    session_gap_minutes: float = SESSION_GAP_MINUTES,
    say: Say = _silent,
) -> Imported:
    """Import a CSV or parquet table of logged exposures into the log folder `out`.

    `mapping` (:func:`parse_mapping`) names the source column of each of our columns; an
    unmapped one is read from the column of its own name if the file has one. Required:
    user_id, item_id, timestamp, click. Optional, with their defaults:

    * ``request_id``: given ids are renumbered 0, 1, ... in (time, id) order; without them,
      the rows sharing (user, scenario, timestamp) form one request (one page);
    * ``position``: without it, a request's rows take positions 0, 1, ... in file order;
    * ``session_id``: given ids are renumbered in the order their first request comes;
      without them, a session is a run of one user's requests in one scenario with no gap
      over `session_gap_minutes` (as KuaiRand);
    * ``scenario`` ``"all"``; ``watch_time`` and ``propensity`` null; ``policy`` ``"logged"``.

    Timestamps: datetimes (naive read as UTC), ISO 8601 text, or epoch numbers in
    `time_unit` (``s``, ``ms``, ``us``). `users` / `items`: optional side-table files
    (CSV or parquet) joined on their id column (``users.user_id`` / ``items.item_id`` in the
    mapping, default ``user_id`` / ``item_id``); every other users column becomes a coded
    profile column, the items' ``category`` / ``content_type`` / ``duration`` (seconds) the
    item features. Every row is checked as :func:`simulator.logs.validate_logs` does; the
    error names the file, the column and the first bad rows (0-based, in file order).
    """
    t0 = time.perf_counter()
    src = Path(src)
    _check_settings(pre_fraction, session_gap_minutes)
    if time_unit not in TIME_UNITS:
        raise UserError(f"--time-unit must be one of {', '.join(TIME_UNITS)}, got {time_unit!r}")
    mapping = parse_mapping(mapping)
    side_paths = [Path(p) for p in (users, items) if p is not None]
    for path in side_paths:
        if not path.is_file():
            raise UserError(f"side table file not found: {path}")
    if not src.is_file():
        raise UserError(f"table file not found: {src}")
    target = claim_out(out, [src, *side_paths])
    say(f"[1/3] reading {src}")
    frame = _read_table(src)
    cols = _resolve(mapping, "", list(LOG_SCHEMA), frame.columns, src)
    missing = [c for c in TABLE_REQUIRED if c not in cols]
    if missing:
        raise UserError(
            f"{src}: missing column(s) {', '.join(missing)} (name the source's with --map "
            f"{missing[0]}=COLUMN); its columns: {', '.join(frame.columns)}"
        )
    ts = _timestamps(frame, cols["timestamp"], time_unit, src)
    user_code, user_ids = dense_ids(frame[cols["user_id"]])
    item_code, item_ids = dense_ids(frame[cols["item_id"]])
    n = frame.height

    def text(key: str) -> pl.Series:
        if key in cols:
            return _as_text(frame, key, cols[key], src)
        return pl.Series(key, [TABLE_DEFAULTS[key]] * n, dtype=pl.String)

    def number(key: str, dtype: pl.DataType) -> pl.Series:
        if key in cols:
            return _as_number(frame, key, cols[key], dtype, src)
        return pl.Series(key, [TABLE_DEFAULTS[key]] * n, dtype=dtype)

    logs = pl.DataFrame(
        {
            "timestamp": ts,
            "user_id": user_code,
            "scenario": text("scenario"),
            "item_id": item_code,
            "click": number("click", pl.Int64()),
            "watch_time": number("watch_time", pl.Float64()),
            "propensity": number("propensity", pl.Float64()),
            "policy": text("policy"),
        }
    ).with_row_index("_row")
    for key in ("timestamp", "user_id", "scenario", "item_id", "click", "policy"):
        nulls = logs[key].is_null()
        if nulls.any():
            raise UserError(
                f"{src}: column {_source_name(key, cols.get(key, key))} has null values; "
                f"{_bad_values(frame, nulls, cols.get(key, key))}"
            )
    say("[2/3] numbering requests and sessions")
    if "request_id" in cols:
        logs = logs.with_columns(_req=id_key(frame[cols["request_id"]]))
        if logs["_req"].null_count():
            mask = logs["_req"].is_null()
            raise UserError(
                f"{src}: column {_source_name('request_id', cols['request_id'])} has null "
                f"values; {_bad_values(frame, mask, cols['request_id'])}"
            )
        req_key = ["_req"]
        firsts = logs.group_by("_req").agg(pl.col("timestamp").min()).sort("timestamp", "_req")
    else:
        req_key = ["user_id", "scenario", "timestamp"]
        firsts = logs.select(req_key).unique().sort("timestamp", "user_id", "scenario")
    firsts = firsts.with_columns(request_id=pl.int_range(firsts.height, dtype=pl.Int64))
    logs = logs.join(firsts.select(*req_key, "request_id"), on=req_key, maintain_order="left")
    if "position" in cols:
        logs = logs.with_columns(
            position=_as_number(frame, "position", cols["position"], pl.Int64(), src)
        )
    else:
        logs = logs.with_columns(position=pl.int_range(pl.len(), dtype=pl.Int64).over("request_id"))
    if "session_id" in cols:
        logs = logs.with_columns(_ses=id_key(frame[cols["session_id"]]))
        if logs["_ses"].null_count():
            mask = logs["_ses"].is_null()
            raise UserError(
                f"{src}: column {_source_name('session_id', cols['session_id'])} has null "
                f"values; {_bad_values(frame, mask, cols['session_id'])}"
            )
        starts = logs.group_by("_ses").agg(pl.col("request_id").min()).sort("request_id")
        starts = starts.with_columns(session_id=pl.int_range(starts.height, dtype=pl.Int64))
        logs = logs.join(starts.select("_ses", "session_id"), on="_ses", maintain_order="left")
    else:
        reqs = (
            logs.group_by("request_id")
            .agg(pl.col("timestamp").first(), pl.col("user_id").first(), pl.col("scenario").first())
            .sort("request_id")
        )
        group = reqs.select(pl.struct("user_id", "scenario").rank("dense")).to_series()
        micros = reqs["timestamp"].dt.epoch("us").to_numpy()
        session = gap_sessions(group.to_numpy(), micros, session_gap_minutes * 60e6)
        reqs = pl.DataFrame({"request_id": reqs["request_id"], "session_id": session})
        logs = logs.join(reqs, on="request_id", maintain_order="left")
    logs = logs.sort("_row").select(list(LOG_SCHEMA))
    try:
        logs = validate_logs(logs, source=str(src))
    except LogError as exc:
        renamed = {k: v for k, v in cols.items() if k != v}
        note = f" (--map {', '.join(f'{k}={v}' for k, v in renamed.items())})" if renamed else ""
        raise LogError(f"{exc}{note}") from None
    say("[3/3] side tables")
    users_table = _table_users(Path(users) if users else None, mapping, user_ids)
    items_table, imputed = _table_items(Path(items) if items else None, mapping, item_ids)
    scen_names = sorted(logs["scenario"].unique().to_list())
    pol_names = sorted(logs["policy"].unique().to_list())
    core = logs.select(
        ts=pl.col("timestamp").dt.epoch("us"),
        request=pl.col("request_id"),
        session=pl.col("session_id"),
        user=pl.col("user_id"),
        scenario=pl.col("scenario").replace_strict(scen_names, range(len(scen_names))),
        item=pl.col("item_id"),
        position=pl.col("position"),
        click=pl.col("click"),
        watch_time=pl.col("watch_time"),
        propensity=pl.col("propensity"),
        policy=pl.col("policy").replace_strict(pol_names, range(len(pol_names))),
    )
    settings = {
        "mapping": {k: cols[k] for k in LOG_SCHEMA if k in cols},
        "defaults": {k: v for k, v in TABLE_DEFAULTS.items() if k not in cols},
        "requests": "source request_id" if "request_id" in cols else "(user, scenario, time)",
        "sessions": "source session_id" if "session_id" in cols else "gap",
        "session_gap_minutes": session_gap_minutes,
        "time_unit": time_unit,
        "users_table": str(Path(users).resolve()) if users else None,
        "items_table": str(Path(items).resolve()) if items else None,
        "durations_imputed": imputed,
    }

    def build(_: Path):
        return _Core(core, scen_names, pol_names), users_table, items_table, settings

    return _run("table", src, target, build, pre_fraction, say, t0)


def import_logs(fmt: str, src: str | Path, out: str | Path, **options: Any) -> Imported:
    """Import `src` in format `fmt` (one of :data:`FORMATS`) into the log folder `out`."""
    importers = {"kuairand": import_kuairand, "obd": import_obd, "table": import_table}
    if fmt not in importers:
        raise UserError(f"unknown import format {fmt!r}; formats: {', '.join(FORMATS)}")
    return importers[fmt](src, out, **options)
