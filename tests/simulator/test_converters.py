"""The KuaiRand and Open Bandit Dataset converters, on the small fixtures in tests/fixtures."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from core.errors import UserError
from simulator.converters import kuairand_to_logs, obd_to_logs, read_kuairand_dir
from simulator.logs import LOG_SCHEMA, UNIFORM, LogError, validate_logs
from tests.conftest import FIXTURES

KUAIRAND = FIXTURES / "kuairand"
STANDARD_CSV = KUAIRAND / "log_standard_4_22_to_5_08_pure.csv"
RANDOM_CSV = KUAIRAND / "log_random_4_22_to_5_08_pure.csv"
OBD_RANDOM = FIXTURES / "obd" / "random" / "all" / "all.csv"
OBD_BTS = FIXTURES / "obd" / "bts" / "men" / "men.csv"
UTC = dt.timezone.utc


def _raw(path: Path) -> pl.DataFrame:
    """A fixture as text columns, to derive broken variants that keep every other value."""
    return pl.read_csv(path, infer_schema=False)


def _write(frame: pl.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(path)
    return path


# --- KuaiRand ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kuairand():
    return kuairand_to_logs([STANDARD_CSV, RANDOM_CSV])


def test_kuairand_shape_and_schema(kuairand):
    logs, users, items = kuairand
    assert logs.height == 33 + 20
    assert dict(logs.schema) == LOG_SCHEMA
    assert validate_logs(logs).equals(logs)
    assert set(logs["scenario"]) == {"tab0", "tab1", "tab2", "tab4"}
    assert (logs["position"] == 0).all()
    assert logs["request_id"].to_list() == list(range(53))  # one request per interaction
    assert users["user_id"].to_list() == [0, 17, 352, 1021, 4890, 27030]
    assert users.schema["user_id"] == pl.Int64
    assert items.columns == ["item_id", "duration"]
    assert items["item_id"].is_unique().all()
    assert set(items["item_id"]) == set(logs["item_id"])


def test_kuairand_row_checked_by_hand(kuairand):
    # standard log: 1021,4302,20220423,1303,1650690192417,1,...,play_time_ms 53630,
    # duration_ms 46000, is_rand 0, tab 0 (13:03 Beijing time = 05:03 UTC)
    logs, _, items = kuairand
    row = logs.filter(user_id=1021, item_id=4302, policy="standard").row(0, named=True)
    assert row["timestamp"] == dt.datetime(2022, 4, 23, 5, 3, 12, 417000, tzinfo=UTC)
    assert row["watch_time"] == pytest.approx(53.63)
    assert row["click"] == 1
    assert row["scenario"] == "tab0"
    assert row["propensity"] is None
    assert items.filter(item_id=4302)["duration"].item() == pytest.approx(46.0)


def test_kuairand_watch_time_is_play_time_in_seconds(kuairand):
    logs, _, _ = kuairand
    raw = pl.concat([pl.read_csv(STANDARD_CSV), pl.read_csv(RANDOM_CSV)]).sort(
        "time_ms", "user_id", "video_id", maintain_order=True
    )
    assert logs["item_id"].to_list() == raw["video_id"].to_list()
    assert logs["watch_time"].to_list() == pytest.approx((raw["play_time_ms"] / 1000).to_list())
    assert logs["click"].to_list() == raw["is_click"].to_list()


def test_kuairand_policies_and_propensities(kuairand):
    logs, _, _ = kuairand
    uniform = logs.filter(policy=UNIFORM)
    standard = logs.filter(policy="standard")
    assert uniform.height == 20 and standard.height == 33
    assert set(logs["policy"]) == {UNIFORM, "standard"}
    assert uniform["item_id"].n_unique() == 8  # the random log's candidate pool
    assert uniform["propensity"].to_list() == pytest.approx([1 / 8] * 20)
    assert standard["propensity"].null_count() == standard.height


def test_kuairand_explicit_pool_size():
    logs, _, _ = kuairand_to_logs([RANDOM_CSV], pool_size=7551)
    assert logs["propensity"].to_list() == pytest.approx([1 / 7551] * 20)
    with pytest.raises(UserError, match="pool_size"):
        kuairand_to_logs([RANDOM_CSV], pool_size=5)  # fewer than the 8 videos seen


def test_kuairand_dir_reads_every_log(kuairand):
    assert all(a.equals(b) for a, b in zip(read_kuairand_dir(KUAIRAND), kuairand, strict=True))
    with pytest.raises(UserError, match="log_"):
        read_kuairand_dir(FIXTURES / "obd")


def test_kuairand_fixture_session_splits_on_long_gap(kuairand):
    # user 17 watches in tab 1 twice at 11:10 Beijing time, then at 14:10 and 14:17
    logs, _, _ = kuairand
    tab1 = logs.filter(user_id=17, scenario="tab1", policy="standard").sort("timestamp")
    sessions = tab1["session_id"].to_list()
    assert len(sessions) == 4
    assert sessions[0] == sessions[1] != sessions[2] == sessions[3]


def test_kuairand_sessionisation(tmp_path):
    template = _raw(STANDARD_CSV).head(1)
    t0 = 1_650_600_000_000
    minutes = [0, 10, 45, 75, 106]  # gaps 10, 35 (> 30: split), 30 (not > 30), 31 (split)
    rows = [(m, 0) for m in minutes] + [(12, 1)]  # another tab is another session
    frame = pl.concat(
        template.with_columns(
            user_id=pl.lit("5"), time_ms=pl.lit(str(t0 + m * 60_000)), tab=pl.lit(str(tab))
        )
        for m, tab in rows
    )
    path = _write(frame, tmp_path / "log_standard_test.csv")

    logs, _, _ = kuairand_to_logs([path])
    got = logs.sort("timestamp").select("scenario", "session_id").rows()
    # sessions are numbered in the order they start
    assert got == [
        ("tab0", 0),
        ("tab0", 0),
        ("tab1", 1),
        ("tab0", 2),
        ("tab0", 2),
        ("tab0", 3),
    ]
    logs, _, _ = kuairand_to_logs([path], session_gap_minutes=60)
    assert logs.sort("timestamp")["session_id"].to_list() == [0, 0, 1, 0, 0, 0]


def test_kuairand_sessions_are_per_user(tmp_path):
    template = _raw(STANDARD_CSV).head(1)
    frame = pl.concat(
        template.with_columns(user_id=pl.lit(str(u)), time_ms=pl.lit(str(1_650_600_000_000 + s)))
        for u, s in [(1, 0), (2, 1000), (1, 2000)]
    )
    logs, _, _ = kuairand_to_logs([_write(frame, tmp_path / "log_x.csv")])
    assert logs.sort("timestamp")["session_id"].to_list() == [0, 1, 0]


def test_kuairand_missing_column(tmp_path):
    path = _write(_raw(STANDARD_CSV).drop("tab"), tmp_path / "log_standard.csv")
    with pytest.raises(UserError, match=r"log_standard\.csv.*missing column\(s\) tab$"):
        kuairand_to_logs([RANDOM_CSV, path])


def test_kuairand_unparsable_file(tmp_path):
    path = _write(_raw(STANDARD_CSV).with_columns(tab=pl.lit("feed")), tmp_path / "log_bad.csv")
    with pytest.raises(UserError, match=r"cannot parse .*log_bad\.csv"):
        kuairand_to_logs([path])
    with pytest.raises(UserError, match="not found"):
        kuairand_to_logs([tmp_path / "log_missing.csv"])


def test_kuairand_negative_play_time(tmp_path):
    bad = _raw(STANDARD_CSV).with_columns(
        play_time_ms=pl.when(pl.int_range(pl.len()) == 3)
        .then(pl.lit("-1200"))
        .otherwise("play_time_ms")
    )
    path = _write(bad, tmp_path / "log_standard.csv")
    with pytest.raises(LogError, match="watch_time"):
        kuairand_to_logs([path])


# --- Open Bandit Dataset ----------------------------------------------------------------


@pytest.fixture(scope="module")
def obd_random():
    return obd_to_logs(OBD_RANDOM)


@pytest.fixture(scope="module")
def obd_bts():
    return obd_to_logs(OBD_BTS)


def test_obd_random(obd_random):
    logs, users, _ = obd_random
    raw = pl.read_csv(OBD_RANDOM)
    assert logs.height == raw.height == 40
    assert dict(logs.schema) == LOG_SCHEMA
    assert validate_logs(logs).equals(logs)
    assert set(logs["scenario"]) == {"all"}
    assert set(logs["policy"]) == {UNIFORM}
    assert logs["position"].to_list() == (raw["position"] - 1).to_list()  # the file is in order
    assert set(logs["position"]) <= {0, 1, 2}
    assert logs["item_id"].to_list() == raw["item_id"].to_list()
    assert logs["click"].to_list() == raw["click"].to_list()
    assert logs["propensity"].to_list() == raw["propensity_score"].to_list()
    assert (logs["propensity"] == 1 / 80).all()
    assert logs["watch_time"].null_count() == 40
    # one round per row: request and session both number the rows in time order
    assert logs["request_id"].to_list() == list(range(40))
    assert logs["session_id"].to_list() == list(range(40))
    assert logs["timestamp"][0] == dt.datetime(2019, 11, 24, 0, 0, 26, 475408, tzinfo=UTC)
    # pandas drops zero microseconds: "2019-11-24 00:00:50+00:00"
    assert logs["timestamp"][7] == dt.datetime(2019, 11, 24, 0, 0, 50, tzinfo=UTC)
    assert users["user_id"].n_unique() == users.height == 12


def test_obd_item_context(obd_random, obd_bts):
    _, _, items = obd_random
    context = pl.read_csv(OBD_RANDOM.parent / "item_context.csv")
    assert items.columns == ["item_id", "item_feature_0"]
    assert items["item_id"].to_list() == list(range(80))
    assert items["item_feature_0"].to_list() == context["item_feature_0"].to_list()
    _, _, items = obd_bts  # no item_context.csv near bts/men: the logged item ids
    assert items.columns == ["item_id"]
    assert items["item_id"].to_list() == sorted(set(pl.read_csv(OBD_BTS)["item_id"]))


def test_obd_bts(obd_bts):
    logs, _, _ = obd_bts
    raw = pl.read_csv(OBD_BTS)
    assert logs.height == 30
    assert set(logs["scenario"]) == {"men"}
    assert set(logs["policy"]) == {"bts"}
    assert logs["propensity"].to_list() == raw["propensity_score"].to_list()
    assert logs["propensity"].n_unique() > 10
    assert logs["position"].to_list() == (raw["position"] - 1).to_list()
    assert logs["watch_time"].null_count() == 30


def test_obd_user_ids_are_stable_hashes(obd_random):
    logs, _, _ = obd_random
    again, _, _ = obd_to_logs(OBD_RANDOM)
    assert logs["user_id"].equals(again["user_id"])
    assert (logs["user_id"] >= 0).all()
    # pinned: the id must not change between runs, machines or library versions
    assert logs["user_id"][0] == 6433765773437738861
    raw = pl.read_csv(OBD_RANDOM)
    features = [f"user_feature_{i}" for i in range(4)]
    per_user = (
        raw.with_columns(user_id=logs["user_id"])
        .group_by(features)
        .agg(pl.col("user_id").n_unique())
    )
    assert (per_user["user_id"] == 1).all()  # one id per feature tuple ...
    assert logs["user_id"].n_unique() == per_user.height  # ... and distinct tuples differ


def test_obd_overrides_and_sorting(tmp_path):
    # outside the <policy>/<campaign> layout, shuffled rows: names from arguments, time order
    raw = _raw(OBD_BTS)
    path = _write(raw.reverse(), tmp_path / "sample.csv")
    logs, _, _ = obd_to_logs(path, campaign="women", behavior_policy="random")
    assert set(logs["scenario"]) == {"women"}
    assert set(logs["policy"]) == {UNIFORM}
    assert logs["timestamp"].is_sorted()
    assert logs["item_id"].to_list() == raw["item_id"].cast(pl.Int64).to_list()


def test_obd_missing_propensity(tmp_path):
    path = _write(_raw(OBD_RANDOM).drop("propensity_score"), tmp_path / "random/all/all.csv")
    with pytest.raises(UserError, match=r"all\.csv.*missing column\(s\) propensity_score"):
        obd_to_logs(path)


def test_obd_zero_propensity(tmp_path):
    bad = _raw(OBD_RANDOM).with_columns(
        propensity_score=pl.when(pl.int_range(pl.len()) == 5)
        .then(pl.lit("0.0"))
        .otherwise("propensity_score")
    )
    path = _write(bad, tmp_path / "random/all/all.csv")
    with pytest.raises(LogError, match="propensity"):
        obd_to_logs(path)


def test_obd_bad_timestamp(tmp_path):
    bad = _raw(OBD_RANDOM).with_columns(timestamp=pl.lit("24/11/2019"))
    path = _write(bad, tmp_path / "random/all/all.csv")
    with pytest.raises(UserError, match="timestamp"):
        obd_to_logs(path)
