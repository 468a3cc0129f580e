"""The log schema: `validate_logs` on a hand-built log and its broken variants; `read_logs`."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import UserError
from simulator.logs import LOG_SCHEMA, SORT_KEYS, LogError, read_logs, validate_logs
from tests.conftest import FAST

SCENARIOS = ["home_feed", "immersive_video", "image_text", "related_detail", "new_user_landing"]
T0 = dt.datetime(2026, 3, 2, 21, 0, tzinfo=dt.timezone.utc)
LATE = T0 + dt.timedelta(seconds=5, microseconds=123)
EARLY = T0 + dt.timedelta(seconds=1)

# Three requests x three positions, deliberately out of order: request 2 is the earliest;
# requests 1 and 3 share a timestamp, so request_id breaks the tie.
# request_id, session_id, timestamp, user_id, scenario, item_id, position, click, watch_time,
# propensity, policy
ROWS = [
    (3, 11, LATE, 7, "home_feed", 30, 2, 0, None, 0.20, "control"),  # row 0
    (3, 11, LATE, 7, "home_feed", 31, 0, 1, 41.5, 0.50, "control"),  # row 1
    (1, 10, LATE, 7, "home_feed", 10, 1, 0, None, 0.25, "control"),  # row 2
    (2, 20, EARLY, 8, "immersive_video", 20, 0, 1, 12.0, 0.10, "uniform"),  # row 3
    (1, 10, LATE, 7, "home_feed", 11, 0, 1, 3.0, 0.50, "control"),  # row 4
    (2, 20, EARLY, 8, "immersive_video", 22, 2, 0, 1.5, 0.10, "uniform"),  # row 5
    (3, 11, LATE, 7, "home_feed", 32, 1, 0, None, 0.30, "control"),  # row 6
    (2, 20, EARLY, 8, "immersive_video", 21, 1, 1, 0.0, 0.10, "uniform"),  # row 7
    (1, 10, LATE, 7, "home_feed", 12, 2, 0, None, None, "control"),  # row 8
]
SORTED_ROWS = [3, 7, 5, 4, 2, 8, 1, 6, 0]  # (timestamp, request_id, position) order


def valid_frame() -> pl.DataFrame:
    return pl.DataFrame(ROWS, schema=LOG_SCHEMA, orient="row")


def expected_frame() -> pl.DataFrame:
    return valid_frame()[SORTED_ROWS]


# --- a valid log -------------------------------------------------------------------------


def test_valid_frame_is_sorted_with_canonical_dtypes():
    df = valid_frame()
    out = validate_logs(df, scenarios=SCENARIOS)
    assert dict(out.schema) == LOG_SCHEMA
    assert out.columns == list(LOG_SCHEMA)
    assert out.select("request_id", "position").rows() == [
        (2, 0), (2, 1), (2, 2), (1, 0), (1, 1), (1, 2), (3, 0), (3, 1), (3, 2),
    ]  # fmt: skip
    assert out.equals(expected_frame())
    assert out.equals(out.sort(SORT_KEYS))
    assert df.equals(valid_frame())  # the input is not modified
    assert validate_logs(out).equals(out)  # idempotent; no scenario list: no scenario check
    assert out["watch_time"].null_count() == 4
    assert out["propensity"].null_count() == 1


variants: list[tuple[str, Callable[[pl.DataFrame], pl.DataFrame]]] = [
    (
        "Int32 ids",
        lambda df: df.with_columns(
            pl.col("request_id", "session_id", "user_id", "item_id", "position").cast(pl.Int32)
        ),
    ),
    ("UInt16 ids", lambda df: df.with_columns(pl.col("user_id", "item_id").cast(pl.UInt16))),
    (
        "naive datetime is UTC",
        lambda df: df.with_columns(pl.col("timestamp").dt.replace_time_zone(None)),
    ),
    (
        "other time zone",
        lambda df: df.with_columns(pl.col("timestamp").dt.convert_time_zone("Asia/Shanghai")),
    ),
    ("nanoseconds", lambda df: df.with_columns(pl.col("timestamp").dt.cast_time_unit("ns"))),
    (
        "Categorical scenario",
        lambda df: df.with_columns(pl.col("scenario", "policy").cast(pl.Categorical)),
    ),
    ("Enum scenario", lambda df: df.with_columns(pl.col("scenario").cast(pl.Enum(SCENARIOS)))),
    ("Int64 click", lambda df: df.with_columns(pl.col("click").cast(pl.Int64))),
    ("Boolean click", lambda df: df.with_columns(pl.col("click").cast(pl.Boolean))),
    ("Float32 watch_time", lambda df: df.with_columns(pl.col("watch_time").cast(pl.Float32))),
    ("column order", lambda df: df.select(reversed(df.columns))),
]


@pytest.mark.parametrize("mutate", [pytest.param(m, id=i) for i, m in variants])
def test_accepted_variants_are_canonicalised(mutate):
    out = validate_logs(mutate(valid_frame()), scenarios=SCENARIOS)
    assert dict(out.schema) == LOG_SCHEMA
    assert out.equals(expected_frame())


def test_all_variants_at_once():
    df = valid_frame()
    for _, mutate in variants:
        df = mutate(df)
    assert validate_logs(df, scenarios=SCENARIOS).equals(expected_frame())


def test_all_null_nullable_columns_are_accepted():
    df = valid_frame().with_columns(
        watch_time=pl.lit(None, dtype=pl.Null), propensity=pl.lit(None, dtype=pl.Null)
    )
    out = validate_logs(df)
    assert dict(out.schema) == LOG_SCHEMA
    assert out["watch_time"].is_null().all()
    assert out["propensity"].is_null().all()


# --- invalid logs (Open Bandit Pipeline style table) --------------------------------------


def _cell(col: str, row: int, value) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Set one cell, keeping the column's dtype where the value fits it."""

    def mutate(df: pl.DataFrame) -> pl.DataFrame:
        values = df[col].to_list()
        values[row] = value
        try:
            series = pl.Series(col, values, dtype=df.schema[col])
        except (TypeError, OverflowError, pl.exceptions.PolarsError):
            series = pl.Series(col, values)  # e.g. click 300: does not fit Int8
        return df.with_columns(series)

    return mutate


def _cast(col: str, dtype: pl.DataType) -> Callable[[pl.DataFrame], pl.DataFrame]:
    return lambda df: df.with_columns(pl.col(col).cast(dtype))


def _request(request_id: int, **values) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Set columns on every row of one request."""

    def mutate(df: pl.DataFrame) -> pl.DataFrame:
        mine = pl.col("request_id") == request_id
        return df.with_columns(
            pl.when(mine).then(pl.lit(v)).otherwise(pl.col(c)).alias(c) for c, v in values.items()
        )

    return mutate


ROWS_OF_REQUEST_1 = r"first offending rows: 2 \(1\), 4 \(1\), 8 \(1\)$"
NOT_FINITE = r"must be finite \(no NaN or inf\); first offending rows: "

# (id, mutation of valid_frame(), regex the LogError message must match)
invalid_logs: list[tuple[str, Callable[[pl.DataFrame], pl.DataFrame], str]] = [
    ("missing column", lambda df: df.drop("propensity"), r"^logs: missing column\(s\) propensity$"),
    (
        "missing columns",
        lambda df: df.drop("policy", "click"),
        r"^logs: missing column\(s\) click, policy$",
    ),
    (
        "extra column",
        lambda df: df.with_columns(reward=pl.lit(1.0)),
        r"^logs: unexpected column\(s\) reward$",
    ),
    (
        "string user_id",
        _cast("user_id", pl.String),
        r"^logs: column 'user_id' must be integer, got String$",
    ),
    (
        "float item_id",
        _cast("item_id", pl.Float64),
        r"^logs: column 'item_id' must be integer, got Float64$",
    ),
    (
        "string timestamp",
        _cast("timestamp", pl.String),
        r"^logs: column 'timestamp' must be a datetime, got String$",
    ),
    (
        "date timestamp",
        _cast("timestamp", pl.Date),
        r"^logs: column 'timestamp' must be a datetime, got Date$",
    ),
    (
        "integer scenario",
        lambda df: df.with_columns(scenario=pl.lit(1)),
        r"^logs: column 'scenario' must be text, got Int32$",
    ),
    (
        "string watch_time",
        _cast("watch_time", pl.String),
        r"^logs: column 'watch_time' must be numeric, got String$",
    ),
    (
        "null item_id",
        _cell("item_id", 5, None),
        r"^logs: column 'item_id' has null values; first offending rows: 5 \(None\)$",
    ),
    (
        "null timestamp",
        _cell("timestamp", 0, None),
        r"^logs: column 'timestamp' has null values; first offending rows: 0 \(None\)$",
    ),
    (
        "null policy",
        _cell("policy", 8, None),
        r"^logs: column 'policy' has null values; first offending rows: 8 \(None\)$",
    ),
    (
        "click 2",
        _cell("click", 4, 2),
        r"^logs: column 'click' must be 0 or 1; first offending rows: 4 \(2\)$",
    ),
    (
        "click -1",
        _cell("click", 3, -1),
        r"^logs: column 'click' must be 0 or 1; first offending rows: 3 \(-1\)$",
    ),
    (
        "click 300",
        _cell("click", 4, 300),
        r"^logs: column 'click' has values out of range for Int8; first offending rows: 4 \(300\)$",
    ),
    (
        "id beyond Int64",
        lambda df: _cell("user_id", 8, 2**63)(df.with_columns(pl.col("user_id").cast(pl.UInt64))),
        r"^logs: column 'user_id' has values out of range for Int64; "
        r"first offending rows: 8 \(9223372036854775808\)$",
    ),
    (
        "negative position",
        _cell("position", 7, -1),
        r"^logs: column 'position' must be >= 0; first offending rows: 7 \(-1\)$",
    ),
    (
        "negative watch_time",
        _cell("watch_time", 1, -3.0),
        r"^logs: column 'watch_time' must be >= 0; first offending rows: 1 \(-3\.0\)$",
    ),
    (
        "NaN watch_time",
        _cell("watch_time", 1, float("nan")),
        rf"^logs: column 'watch_time' {NOT_FINITE}1 \(nan\)$",
    ),
    (
        "inf watch_time",
        _cell("watch_time", 7, float("inf")),
        rf"^logs: column 'watch_time' {NOT_FINITE}7 \(inf\)$",
    ),
    (
        "propensity 0",
        _cell("propensity", 2, 0.0),
        r"^logs: column 'propensity' must be in \(0, 1\]; first offending rows: 2 \(0\.0\)$",
    ),
    (
        "propensity 1.5",
        _cell("propensity", 6, 1.5),
        r"^logs: column 'propensity' must be in \(0, 1\]; first offending rows: 6 \(1\.5\)$",
    ),
    (
        "propensity NaN",
        _cell("propensity", 0, float("nan")),
        rf"^logs: column 'propensity' {NOT_FINITE}0 \(nan\)$",
    ),
    (
        "propensity -inf",
        _cell("propensity", 0, float("-inf")),
        rf"^logs: column 'propensity' {NOT_FINITE}0 \(-inf\)$",
    ),
    (
        "unknown scenario",
        _request(2, scenario="search_bar"),
        r"^logs: column 'scenario' has scenarios not in the config \(home_feed, .*\); "
        r"first offending rows: 3 \('search_bar'\), 5 \('search_bar'\), 7 \('search_bar'\)$",
    ),
    (
        "duplicated request position",
        _cell("position", 6, 2),
        r"^logs: \(request_id, position\) is not unique; first offending rows: 0 \(3\), 6 \(3\)$",
    ),
    (
        "user_id differs in a request",
        _cell("user_id", 4, 99),
        r"^logs: column 'user_id' differs between rows of one request_id; " + ROWS_OF_REQUEST_1,
    ),
    (
        "session_id differs in a request",
        _cell("session_id", 8, 12),
        r"^logs: column 'session_id' differs between rows of one request_id; " + ROWS_OF_REQUEST_1,
    ),
    (
        "scenario differs in a request",
        _cell("scenario", 2, "image_text"),
        r"^logs: column 'scenario' differs between rows of one request_id; " + ROWS_OF_REQUEST_1,
    ),
    (
        "timestamp differs in a request",
        _cell("timestamp", 2, EARLY),
        r"^logs: column 'timestamp' differs between rows of one request_id; " + ROWS_OF_REQUEST_1,
    ),
    (
        "many offending rows",
        lambda df: df.with_columns(click=pl.lit(2, pl.Int8)),
        r"^logs: column 'click' must be 0 or 1; "
        r"first offending rows: 0 \(2\), 1 \(2\), 2 \(2\), 3 \(2\), 4 \(2\) and 4 more$",
    ),
    ("empty frame", lambda df: df.clear(), r"^logs: the log has no rows$"),
    (
        "empty frame, no columns",
        lambda df: pl.DataFrame(),
        r"^logs: missing column\(s\) request_id, session_id, timestamp, ",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "pattern"), [pytest.param(m, p, id=i) for i, m, p in invalid_logs]
)
def test_invalid_log(mutate, pattern):
    df = mutate(valid_frame())
    with pytest.raises(LogError, match=pattern):
        validate_logs(df, scenarios=SCENARIOS)


def test_invalid_log_table_is_large_enough():
    assert len(invalid_logs) >= 15
    assert len({i for i, _, _ in invalid_logs}) == len(invalid_logs)


def test_log_error_is_a_user_error_naming_the_source():
    df = _cell("click", 4, 2)(valid_frame())
    with pytest.raises(UserError, match=r"^day3\.parquet: column 'click' must be 0 or 1"):
        validate_logs(df, source="day3.parquet")


# --- read_logs ---------------------------------------------------------------------------


@pytest.fixture
def log_path(tmp_path) -> Path:
    path = tmp_path / "logs.parquet"
    expected_frame().write_parquet(path)
    return path


def test_read_logs_round_trip(log_path):
    out = read_logs(log_path, scenarios=SCENARIOS)
    assert dict(out.schema) == LOG_SCHEMA
    assert out.equals(expected_frame())
    assert read_logs(log_path.parent).equals(out)  # a folder holding logs.parquet
    assert read_logs(str(log_path)).equals(out)


def test_read_logs_sorts_an_unsorted_file(tmp_path):
    path = tmp_path / "logs.parquet"
    valid_frame().with_columns(pl.col("timestamp").dt.replace_time_zone(None)).write_parquet(path)
    assert read_logs(path).equals(expected_frame())


def test_read_logs_validates_and_names_the_file(tmp_path):
    path = tmp_path / "logs.parquet"
    _cell("propensity", 6, 1.5)(valid_frame()).write_parquet(path)
    with pytest.raises(LogError, match=rf"^{re.escape(str(path))}: column 'propensity' must be in"):
        read_logs(path)
    valid_frame().write_parquet(path)
    with pytest.raises(LogError, match=r"column 'scenario' has scenarios not in the config \(home"):
        read_logs(path, scenarios=["home_feed"])


def _truncated(tmp: Path) -> Path:
    path = tmp / "logs.parquet"
    expected_frame().write_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _write_bytes(data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "logs.parquet"
        path.write_bytes(data)
        return path

    return make


unreadable: list[tuple[str, Callable[[Path], Path], str]] = [
    (
        "missing file",
        lambda tmp: tmp / "missing.parquet",
        r"^log file not found: .*missing\.parquet$",
    ),
    ("folder without logs", lambda tmp: tmp, r"^log file not found: .*logs\.parquet$"),
    ("truncated parquet", _truncated, r"^cannot read .*logs\.parquet as parquet: \S"),
    (
        "csv named parquet",
        _write_bytes(b"request_id,user_id\n1,2\n"),
        r"^cannot read .*logs\.parquet as parquet: \S",
    ),
    ("empty file", _write_bytes(b""), r"^cannot read .*logs\.parquet as parquet: \S"),
]


@pytest.mark.parametrize(("make", "pattern"), [pytest.param(m, p, id=i) for i, m, p in unreadable])
def test_read_logs_unreadable(tmp_path, make, pattern):
    path = make(tmp_path)
    with pytest.raises(UserError, match=pattern) as info:
        read_logs(path)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- properties (hypothesis)
# validate_logs on odd logs returns a clean log or raises LogError naming a column


def _log(n_req: int = 4, k: int = 3) -> pl.DataFrame:
    n = n_req * k
    t0 = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
    req = np.repeat(np.arange(n_req), k)
    return pl.DataFrame(
        {
            "request_id": req,
            "session_id": req // 2,
            "timestamp": [t0 + dt.timedelta(seconds=int(r) * 10) for r in req],
            "user_id": req % 3,
            "scenario": np.where(req % 2 == 0, "a", "b"),
            "item_id": np.arange(n),
            "position": np.tile(np.arange(k), n_req),
            "click": (np.arange(n) % 4 == 0).astype(np.int8),
            "watch_time": np.linspace(0.0, 30.0, n),
            "propensity": np.full(n, 0.25),
            "policy": np.where(req == 0, "uniform", "logging"),
        },
        schema=LOG_SCHEMA,
    )


BAD_VALUES = {
    "numeric": [None, float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1.0, 1.5, 1e300],
    "integer": [None, -1, 0, 1, 2, 2**40],
    "text": [None, "", "a", "c", "uniform"],
}


@pytest.mark.usefixtures("no_warnings")
@FAST
@given(st.data())
def test_validate_logs_returns_a_clean_log_or_names_a_column(data):
    df = _log()
    for _ in range(data.draw(st.integers(1, 4))):
        col = data.draw(st.sampled_from(list(LOG_SCHEMA)))
        kind = "text" if col in ("scenario", "policy") else "numeric"
        kind = "integer" if LOG_SCHEMA[col].is_integer() else kind
        op = data.draw(st.sampled_from(["set", "set", "set", "cast", "drop"]))
        if op == "drop":
            df = df.drop(col) if col in df.columns else df
            continue
        if col not in df.columns:
            continue
        if op == "cast":
            to = data.draw(st.sampled_from([pl.String, pl.Float64, pl.Int32, pl.UInt8]))
            df = df.with_columns(pl.col(col).cast(to, strict=False))
            continue
        if col == "timestamp":
            continue  # timestamps: cast above (to text, numbers) and the request rules below
        row = data.draw(st.integers(0, df.height - 1))
        value = data.draw(st.sampled_from(BAD_VALUES[kind]))
        dtype = df.schema[col]
        values = df[col].to_list()
        values[row] = value
        df = df.with_columns(pl.Series(col, values, dtype=dtype, strict=False))
    try:
        out = validate_logs(df, scenarios=["a", "b"], source="t")
    except LogError as exc:
        msg = str(exc)
        assert msg.startswith("t: ")
        assert any(f"'{c}'" in msg or c in msg for c in LOG_SCHEMA), msg
        return
    assert out.schema == pl.Schema(LOG_SCHEMA)
    for c in ("request_id", "user_id", "item_id", "click", "position", "scenario"):
        assert out[c].null_count() == 0
    assert out["click"].is_in([0, 1]).all() and (out["position"] >= 0).all()
    wt, pr = out["watch_time"].drop_nulls(), out["propensity"].drop_nulls()
    assert wt.is_finite().all() and (wt >= 0).all()
    assert pr.is_finite().all() and ((pr > 0) & (pr <= 1)).all()
    assert not out.select(pl.struct("request_id", "position").is_duplicated()).to_series().any()
