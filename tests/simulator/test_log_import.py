"""The log importer (``python -m abtest import``): KuaiRand, Open Bandit Dataset and table
sources into an imported log folder, checked against the source rows and the eager
converters, on the fixtures, a synthetic log and the real OBD sample."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from core.errors import UserError
from simulator.converters import gap_sessions, obd_to_logs, read_kuairand_dir
from simulator.log_import import (
    code_feature,
    dense_ids,
    import_kuairand,
    import_logs,
    import_obd,
    import_table,
    parse_mapping,
)
from simulator.logfolder import problems, read_manifest
from simulator.logs import LOG_SCHEMA, SORT_KEYS, UNIFORM, validate_logs, validate_side_table
from tests.conftest import FIXTURES

KUAIRAND = FIXTURES / "kuairand"
OBD = FIXTURES / "obd"
UTC = dt.timezone.utc


def _read(folder: Path) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    return tuple(pl.read_parquet(folder / f"{n}.parquet") for n in ("logs", "users", "items"))


def _check_folder(folder: Path, fmt: str) -> dict:
    """The folder-level contract every import keeps; its manifest."""
    assert problems(folder) == []
    logs, users, items = _read(folder)
    assert dict(logs.schema) == LOG_SCHEMA
    assert validate_logs(logs).equals(logs)  # valid, and already sorted by SORT_KEYS
    assert logs.select(SORT_KEYS).equals(logs.select(SORT_KEYS).sort(SORT_KEYS))
    validate_side_table(users, "users")
    validate_side_table(items, "items")
    # dense ids
    assert users["user_id"].to_list() == list(range(users.height))
    assert items["item_id"].to_list() == list(range(items.height))
    assert set(logs["user_id"]) == set(users["user_id"])
    assert set(logs["item_id"]) == set(items["item_id"])
    m = read_manifest(folder)
    assert m["kind"] == "imported" and m["format"] == fmt
    assert Path(m["source"]).is_absolute()
    assert m["rows"] == {
        "logs": logs.height,
        "users": users.height,
        "items": items.height,
        "requests": logs["request_id"].n_unique(),
    }
    start, end = logs["timestamp"].min(), logs["timestamp"].max()
    assert dt.datetime.fromisoformat(m["start"]) == start
    assert dt.datetime.fromisoformat(m["end"]) == end
    pre_end = dt.datetime.fromisoformat(m["pre_period_end"])
    expected = start + (end - start) * m["pre_fraction"]
    assert abs((pre_end - expected).total_seconds()) < 1e-5
    requests = logs.group_by("scenario").agg(pl.col("request_id").n_unique())
    by_scenario = dict(requests.iter_rows())
    busiest = sorted(by_scenario, key=lambda s: (-by_scenario[s], s))
    assert m["scenarios"] == busiest
    total = sum(by_scenario.values())
    assert m["traffic_share"] == pytest.approx({s: n / total for s, n in by_scenario.items()})
    assert m["policies"] == dict(logs.group_by("policy").len().iter_rows())
    return m


def _source_ids(logs: pl.DataFrame, users: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """`logs` with user_id and item_id mapped back to the source ids (text)."""
    return (
        logs.join(users.select("user_id", uid="source_id"), on="user_id", maintain_order="left")
        .join(items.select("item_id", vid="source_id"), on="item_id", maintain_order="left")
        .with_columns(user_id="uid", item_id="vid")
        .drop("uid", "vid")
    )


# --- KuaiRand ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kuairand(tmp_path_factory):
    out = tmp_path_factory.mktemp("kr") / "imported"
    result = import_kuairand(KUAIRAND, out)
    assert result.out == out.resolve()
    return out


def test_kuairand_folder(kuairand):
    m = _check_folder(kuairand, "kuairand")
    assert m["rows"]["logs"] == m["rows"]["requests"] == 53
    assert m["scenarios"] == ["tab1", "tab0", "tab4", "tab2"]  # ties (14, 14) by name
    assert m["tabs"] == [1, 0, 4, 2]
    assert m["policies"] == {"standard": 33, UNIFORM: 20}
    assert m["pool_size"] == 8
    assert m["session_gap_minutes"] == 30.0
    assert m["source_files"] == [p.name for p in sorted(KUAIRAND.glob("log_*.csv"))]
    assert m["items"] == ["duration"] and m["users"] == []


def test_kuairand_matches_the_eager_converter(kuairand):
    """Same rows, request and session numbers as kuairand_to_logs, up to the id coding."""
    logs, users, items = _read(kuairand)
    eager, eager_users, eager_items = read_kuairand_dir(KUAIRAND)
    back = _source_ids(logs, users, items).with_columns(
        pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64)
    )
    assert back.sort("request_id").equals(eager.sort("request_id"))
    # dense ids in numeric order of the source ids
    assert users["source_id"].cast(pl.Int64).to_list() == eager_users["user_id"].to_list()
    assert items["source_id"].cast(pl.Int64).to_list() == eager_items["item_id"].to_list()
    assert items["duration"].to_list() == eager_items["duration"].to_list()


def test_kuairand_row_checked_by_hand(kuairand):
    # standard log: 1021,4302,...,time_ms 1650690192417, is_click 1, play_time_ms 53630,
    # duration_ms 46000, is_rand 0, tab 0
    logs, users, items = _read(kuairand)
    user = users.filter(source_id="1021")["user_id"].item()
    item = items.filter(source_id="4302")["item_id"].item()
    row = logs.filter(user_id=user, item_id=item, policy="standard").row(0, named=True)
    assert row["timestamp"] == dt.datetime(2022, 4, 23, 5, 3, 12, 417000, tzinfo=UTC)
    assert row["watch_time"] == pytest.approx(53.63)
    assert (row["click"], row["scenario"], row["position"]) == (1, "tab0", 0)
    assert row["propensity"] is None
    assert items.filter(item_id=item)["duration"].item() == pytest.approx(46.0)
    assert (logs.filter(policy=UNIFORM)["propensity"] == 1 / 8).all()


def test_kuairand_tabs_subset(tmp_path):
    result = import_kuairand(KUAIRAND, tmp_path / "out", tabs="4, tab0")
    m = _check_folder(tmp_path / "out", "kuairand")
    assert m["tabs"] == [4, 0] and set(m["scenarios"]) == {"tab4", "tab0"}
    assert m["rows"]["logs"] == 28
    logs, users, _ = _read(tmp_path / "out")
    assert logs["scenario"].to_list().count("tab4") == 14
    assert result.scenarios["scenario"].to_list() == m["scenarios"]
    # only the users logged in the chosen tabs, still dense
    assert users.height == logs["user_id"].n_unique()


def test_kuairand_default_is_the_five_busiest_tabs(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    raw = pl.read_csv(KUAIRAND / "log_standard_4_22_to_5_08_pure.csv")
    # six tabs: tab 9 gets one row, the least busy, and is left out
    extra = [raw.head(1).with_columns(tab=pl.lit(9)), raw.head(2).with_columns(tab=pl.lit(3))]
    raw = pl.concat([raw, *extra], how="vertical_relaxed")
    raw.write_csv(src / "log_standard_x.csv")
    m = import_kuairand(src, tmp_path / "out").manifest
    assert len(m["tabs"]) == 5 and 9 not in m["tabs"]
    assert m["tab_rows"]["tab9"] == 1


def test_kuairand_side_features(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(KUAIRAND, src)
    pl.DataFrame(
        {
            "user_id": [0, 17, 352, 1021, 99999],
            "user_active_degree": ["high_active", "full_active", None, "high_active", "x"],
            "is_lowactive_period": [0, 1, 0, 0, 1],
            "follow_user_num_range": ["0", "(0,10]", "(10,50]", "0", "0"],
            "onehot_feat0": [5, 1, 5, None, 2],
        }
    ).write_csv(src / "user_features_pure.csv")
    pl.DataFrame(
        {
            "video_id": [4302, 640, 2208, 77],
            "video_type": ["NORMAL", "AD", "NORMAL", None],
            "tag": ["28,9", "9", None, "5"],
            "video_duration": [45000.0, None, 12000.0, 7000.0],
        }
    ).write_csv(src / "video_features_basic_pure.csv")
    import_kuairand(src, tmp_path / "out")
    m = _check_folder(tmp_path / "out", "kuairand")
    _, users, items = _read(tmp_path / "out")
    assert m["users"] == [
        "user_active_degree",
        "is_lowactive_period",
        "follow_user_num_range",
        "onehot_feat0",
    ]
    degree = dict(zip(users["source_id"], users["user_active_degree"], strict=True))
    # logged users' values in sorted order: full_active 0, high_active 1; null (352, and the
    # users without a row: 4890, 27030) its own code 2; user 99999 is not logged
    assert degree == {"0": 1, "17": 0, "352": 2, "1021": 1, "4890": 2, "27030": 2}
    onehot = dict(zip(users["source_id"], users["onehot_feat0"], strict=True))
    assert onehot == {"0": 1, "17": 0, "352": 1, "1021": 2, "4890": 2, "27030": 2}  # numeric
    assert m["items"] == ["category", "content_type", "duration"]
    by_id = {r["source_id"]: r for r in items.iter_rows(named=True)}
    assert by_id["4302"]["content_type"] == "NORMAL" and by_id["640"]["content_type"] == "AD"
    assert by_id["77"]["content_type"] == "unknown" and by_id["118"]["content_type"] == "unknown"
    # first tags 28, 9, 5 in numeric order: 5 -> 0, 9 -> 1, 28 -> 2; none -> 3
    assert [by_id[i]["category"] for i in ("77", "640", "4302", "2208", "118")] == [0, 1, 2, 3, 3]
    # the listed duration in seconds, else the log's
    assert by_id["4302"]["duration"] == 45.0 and by_id["2208"]["duration"] == 12.0
    assert by_id["640"]["duration"] == 46.0  # not listed: the log's duration_ms


def test_kuairand_session_gap_setting(tmp_path):
    a = import_kuairand(KUAIRAND, tmp_path / "a").out
    b = import_kuairand(KUAIRAND, tmp_path / "b", session_gap_minutes=600).out
    assert _read(b)[0]["session_id"].n_unique() < _read(a)[0]["session_id"].n_unique()
    assert read_manifest(b)["session_gap_minutes"] == 600


@pytest.mark.parametrize(
    ("tabs", "pattern"),
    [("7", r"no tab 7 .*its tabs: 1 \(18 rows\)"), ("x", "not a tab number"), (",", "no tab")],
)
def test_kuairand_bad_tabs(tmp_path, tabs, pattern):
    with pytest.raises(UserError, match=pattern):
        import_kuairand(KUAIRAND, tmp_path / "out", tabs=tabs)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging folder left


# --- Open Bandit Dataset ----------------------------------------------------------------


@pytest.fixture(scope="module")
def obd(tmp_path_factory):
    out = tmp_path_factory.mktemp("obd") / "imported"
    import_obd(OBD, out)
    return out


def test_obd_folder(obd):
    m = _check_folder(obd, "obd")
    assert m["rows"]["logs"] == m["rows"]["requests"] == 70
    assert m["scenarios"] == ["all", "men"]
    assert m["policies"] == {UNIFORM: 40, "bts": 30}
    assert m["source_files"] == ["random/all/all.csv", "bts/men/men.csv"]
    assert m["users"] == [f"user_feature_{i}" for i in range(4)]
    assert m["items"] == ["category"]
    logs, _, _ = _read(obd)
    assert logs["request_id"].to_list() == list(range(70))  # unique over both files
    assert logs["session_id"].to_list() == list(range(70))


@pytest.mark.parametrize(
    ("csv", "campaign"), [("random/all/all.csv", "all"), ("bts/men/men.csv", "men")]
)
def test_obd_matches_the_eager_converter(obd, csv, campaign):
    logs, users, items = _read(obd)
    eager, _, _ = obd_to_logs(OBD / csv)
    back = _source_ids(logs.filter(scenario=campaign), users, items)
    assert back["item_id"].str.starts_with(f"{campaign}/").all()
    back = back.with_columns(
        user_id=pl.col("user_id").cast(pl.Int64),
        item_id=pl.col("item_id").str.split("/").list.last().cast(pl.Int64),
    )
    cols = [
        "timestamp",
        "user_id",
        "scenario",
        "item_id",
        "position",
        "click",
        "watch_time",
        "propensity",
        "policy",
    ]
    assert back.select(cols).equals(eager.select(cols))


def test_obd_side_tables(obd):
    _, users, items = _read(obd)
    raw = pl.concat([pl.read_csv(OBD / "random/all/all.csv"), pl.read_csv(OBD / "bts/men/men.csv")])
    features = [f"user_feature_{i}" for i in range(4)]
    assert users.height == raw.select(features).n_unique()
    # the hashes' numeric order
    assert users["source_id"].cast(pl.Int64).is_sorted()
    # item ids: "<campaign>/<item>" in text order
    assert items["source_id"].to_list() == sorted(items["source_id"].to_list())
    assert (
        items.filter(pl.col("source_id").str.starts_with("men/")).height
        == raw.filter(pl.col("propensity_score") != 0.0125)["item_id"].n_unique()
    )
    context = pl.read_csv(OBD / "random/all/item_context.csv")
    values = sorted(set(context["item_feature_1"]))
    all_items = items.filter(pl.col("source_id").str.starts_with("all/"))
    for sid, cat in all_items.select("source_id", "category").iter_rows():
        item = int(sid.split("/")[1])
        value = context.filter(item_id=item)["item_feature_1"].item()
        assert cat == values.index(value)
    men = items.filter(pl.col("source_id").str.starts_with("men/"))
    assert (men["category"] == len(values)).all()  # no item_context: the missing code


def test_obd_campaign_subset(tmp_path):
    m = import_obd(OBD, tmp_path / "out", campaigns=["men"]).manifest
    assert m["scenarios"] == ["men"] and m["policies"] == {"bts": 30}
    with pytest.raises(UserError, match=r"no campaign women .*its campaigns: all, men"):
        import_obd(OBD, tmp_path / "other", campaigns=["women"])


@pytest.mark.realdata
def test_obd_real_sample(obd_sample, tmp_path):
    result = import_obd(obd_sample, tmp_path / "out")
    m = _check_folder(tmp_path / "out", "obd")
    assert len(m["source_files"]) == 6
    assert m["rows"]["logs"] == 60_000
    assert m["scenarios"] == ["all", "men", "women"]
    assert m["policies"] == {"bts": 30_000, UNIFORM: 30_000}
    assert result.scenarios["requests"].to_list() == [20_000] * 3
    logs, _, items = _read(tmp_path / "out")
    got = dict(
        ((s, p), ctr)
        for s, p, ctr in logs.group_by("scenario", "policy").agg(pl.col("click").mean()).rows()
    )
    for folder, policy in (("random", UNIFORM), ("bts", "bts")):
        for campaign in ("all", "men", "women"):
            raw = pl.read_csv(obd_sample / folder / campaign / f"{campaign}.csv")
            assert got[(campaign, policy)] == pytest.approx(raw["click"].mean(), abs=1e-12)
    assert items.height == 80 + 34 + 46
    assert items["category"].min() >= 0


# --- table ------------------------------------------------------------------------------

TOY = """uid,vid,ts,clicked,scen
a,10,2024-05-01T12:00:00Z,1,home
a,11,2024-05-01T12:00:00Z,0,home
b,10,2024-05-01T13:00:00+02:00,0,search
b,12,2024-05-01T13:40:00+02:00,1,search
a,12,2024-05-02T12:00:00Z,1,home
"""
TOY_MAP = "user_id=uid,item_id=vid,timestamp=ts,click=clicked,scenario=scen"


def test_table_defaults(tmp_path):
    src = tmp_path / "toy.csv"
    src.write_text(TOY)
    import_table(src, tmp_path / "out", mapping=TOY_MAP)
    m = _check_folder(tmp_path / "out", "table")
    logs, users, items = _read(tmp_path / "out")
    assert users["source_id"].to_list() == ["a", "b"]
    assert items["source_id"].to_list() == ["10", "11", "12"]  # integer text: numeric order
    back = _source_ids(logs, users, items)
    rows = back.select("timestamp", "user_id", "item_id", "position", "click", "scenario")
    assert rows.rows() == [
        (dt.datetime(2024, 5, 1, 11, tzinfo=UTC), "b", "10", 0, 0, "search"),
        (dt.datetime(2024, 5, 1, 11, 40, tzinfo=UTC), "b", "12", 0, 1, "search"),
        (dt.datetime(2024, 5, 1, 12, tzinfo=UTC), "a", "10", 0, 1, "home"),
        (dt.datetime(2024, 5, 1, 12, tzinfo=UTC), "a", "11", 1, 0, "home"),  # one page
        (dt.datetime(2024, 5, 2, 12, tzinfo=UTC), "a", "12", 0, 1, "home"),
    ]
    assert logs["request_id"].to_list() == [0, 1, 2, 2, 3]
    assert logs["session_id"].to_list() == [0, 1, 2, 2, 3]  # 40 min > 30: a new session
    assert set(logs["policy"]) == {"logged"}
    assert logs["watch_time"].null_count() == logs["propensity"].null_count() == 5
    assert m["mapping"] == {
        "timestamp": "ts",
        "user_id": "uid",
        "scenario": "scen",
        "item_id": "vid",
        "click": "clicked",
    }
    assert m["requests"] == "(user, scenario, time)" and m["sessions"] == "gap"
    longer = import_table(src, tmp_path / "gap", mapping=TOY_MAP, session_gap_minutes=60)
    assert _read(longer.out)[0]["session_id"].to_list() == [0, 0, 1, 1, 2]


def test_table_epoch_units_and_yaml_mapping(tmp_path):
    frame = pl.DataFrame(
        {
            "u": [7, 7, 3],
            "i": ["x", "y", "x"],
            "t": [1_714_564_800_000, 1_714_564_800_000, 1_714_564_860_000],
            "c": [True, False, True],
            "req": [5, 5, 9],
            "pos": [1, 0, 0],
            "w": [3.5, 0.0, 1.0],
            "p": [0.5, 0.25, 1.0],
            "pol": ["a", "a", "b"],
        }
    )
    frame.write_parquet(tmp_path / "t.parquet")
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "user_id: u\nitem_id: i\ntimestamp: t\nclick: c\nrequest_id: req\nposition: pos\n"
        "watch_time: w\npropensity: p\npolicy: pol\n"
    )
    with pytest.raises(UserError, match=r"outside 1970-2200 in --time-unit s"):
        import_table(tmp_path / "t.parquet", tmp_path / "out", mapping=str(mapping))
    import_table(tmp_path / "t.parquet", tmp_path / "out", mapping=str(mapping), time_unit="ms")
    _check_folder(tmp_path / "out", "table")
    logs, users, items = _read(tmp_path / "out")
    assert users["source_id"].to_list() == ["3", "7"]
    back = _source_ids(logs, users, items)
    assert back.select("user_id", "item_id", "position", "click", "policy").rows() == [
        ("7", "y", 0, 0, "a"),
        ("7", "x", 1, 1, "a"),
        ("3", "x", 0, 1, "b"),
    ]
    assert logs["timestamp"][0] == dt.datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert logs["watch_time"].to_list() == [0.0, 3.5, 1.0]
    assert logs["propensity"].to_list() == [0.25, 0.5, 1.0]
    assert logs["request_id"].to_list() == [0, 0, 1]


def test_table_round_trip_of_a_synthetic_log(tiny_ab, tmp_path):
    """Synthetic logs -> parquet with other column names -> table import: the same rows up
    to the coding of users, items, requests and sessions."""
    _, world, logs = tiny_ab
    renamed = {
        "user_id": "uid",
        "item_id": "iid",
        "request_id": "rid",
        "session_id": "sid",
        "timestamp": "when",
        "click": "clk",
    }
    logs.rename(renamed).write_parquet(tmp_path / "synthetic.parquet")
    mapping = ",".join(f"{ours}={theirs}" for ours, theirs in renamed.items())
    result = import_table(tmp_path / "synthetic.parquet", tmp_path / "out", mapping=mapping)
    m = _check_folder(tmp_path / "out", "table")
    assert m["rows"]["logs"] == logs.height
    assert m["rows"]["requests"] == logs["request_id"].n_unique()
    assert set(m["scenarios"]) == set(logs["scenario"])
    imported, users, items = _read(tmp_path / "out")
    back = _source_ids(imported, users, items).with_columns(
        pl.col("user_id").cast(pl.Int64), pl.col("item_id").cast(pl.Int64)
    )
    keys = ["timestamp", "user_id", "scenario", "position"]
    a = back.sort(keys)
    b = logs.sort(keys)
    same = [
        "timestamp",
        "user_id",
        "scenario",
        "item_id",
        "position",
        "click",
        "watch_time",
        "propensity",
        "policy",
    ]
    assert a.select(same).equals(b.select(same))
    for col in ("request_id", "session_id"):  # a bijection between the two numberings
        pairs = pl.DataFrame({"new": a[col], "old": b[col]}).unique()
        assert pairs["new"].is_unique().all() and pairs["old"].is_unique().all()
    # dense users and items in numeric order of the world's ids
    assert users["source_id"].cast(pl.Int64).is_sorted()
    assert users.height == logs["user_id"].n_unique() <= world.users.n
    assert result.manifest["requests"] == "source request_id"


def test_table_side_tables(tmp_path):
    src = tmp_path / "toy.csv"
    src.write_text(TOY)
    pl.DataFrame(
        {"name": ["b", "a", "zz"], "age": [30, None, 5], "tier": ["gold", "x", "y"]}
    ).write_csv(tmp_path / "users.csv")
    pl.DataFrame(
        {
            "vid": [12, 10, 99],
            "genre": ["pop", "rock", "pop"],
            "secs": [30.0, None, 1.0],
            "kind": ["video", "live", "video"],
        }
    ).write_parquet(tmp_path / "items.parquet")
    mapping = (
        f"{TOY_MAP},users.user_id=name,items.item_id=vid,items.category=genre,"
        "items.duration=secs,items.content_type=kind"
    )
    import_table(
        src,
        tmp_path / "out",
        mapping=mapping,
        users=tmp_path / "users.csv",
        items=tmp_path / "items.parquet",
    )
    m = _check_folder(tmp_path / "out", "table")
    _, users, items = _read(tmp_path / "out")
    assert users.rows() == [(0, "a", 1, 1), (1, "b", 0, 0)]  # a: age missing -> own code
    assert users.columns == ["user_id", "source_id", "age", "tier"]
    assert items.to_dicts() == [
        {
            "item_id": 0,
            "source_id": "10",
            "category": 1,
            "content_type": "live",
            "duration": 30.0,
        },  # no duration: the median of the known (30)
        {
            "item_id": 1,
            "source_id": "11",
            "category": 2,
            "content_type": "unknown",
            "duration": 30.0,
        },
        {"item_id": 2, "source_id": "12", "category": 0, "content_type": "video", "duration": 30.0},
    ]
    assert m["durations_imputed"] == 2


def test_table_side_table_of_lists_is_refused(tmp_path):
    src = tmp_path / "toy.csv"
    src.write_text(TOY)
    pl.DataFrame({"user_id": ["a", "b"], "tags": [[1], [2]]}).write_parquet(tmp_path / "u.parquet")
    with pytest.raises(UserError, match=r"u\.parquet: column\(s\) tags of the users table hold"):
        import_table(src, tmp_path / "out", mapping=TOY_MAP, users=tmp_path / "u.parquet")
    assert not (tmp_path / "out").exists()


def test_import_logs_dispatch_and_replace(tmp_path, kuairand):
    out = tmp_path / "out"
    import_logs("obd", OBD, out)
    (out / "notes.txt").write_text("mine")
    import_logs("kuairand", KUAIRAND, out)  # an imported folder is replaced as a whole
    assert read_manifest(out)["format"] == "kuairand"
    assert not (out / "notes.txt").exists()
    assert problems(out) == []
    with pytest.raises(UserError, match="unknown import format 'csv'"):
        import_logs("csv", KUAIRAND, tmp_path / "x")


def test_failed_import_leaves_the_folder(tmp_path):
    out = tmp_path / "out"
    import_obd(OBD, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(UserError, match="no tab 7"):
        import_kuairand(KUAIRAND, out, tabs="7")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- building blocks ----------------------------------------------------------------------


def test_gap_sessions():
    # rows in request order: (group, time)
    group = np.array([0, 1, 0, 0, 1, 0])
    time = np.array([0, 5, 10, 50, 60, 55])
    assert gap_sessions(group, time, 30).tolist() == [0, 1, 0, 2, 3, 2]
    assert gap_sessions(group, time, 60).tolist() == [0, 1, 0, 0, 1, 0]
    assert gap_sessions(np.array([], dtype=np.int64), np.array([]), 1).tolist() == []


def test_dense_ids_and_codes():
    codes, ids = dense_ids(pl.Series(["10", "9", "10", None]))
    assert codes.to_list() == [1, 0, 1, None] and ids.to_list() == ["9", "10"]
    codes, ids = dense_ids(pl.Series(["b", "a10", "a9"]))
    assert codes.to_list() == [2, 0, 1] and ids.to_list() == ["a10", "a9", "b"]
    codes, ids = dense_ids(pl.Series(["007", "7"]))  # not plain integers: text
    assert ids.to_list() == ["007", "7"]
    assert code_feature(pl.Series(["b", None, "a", "b"])).to_list() == [1, 2, 0, 1]
    assert code_feature(pl.Series(["10", "9", None])).to_list() == [1, 0, 2]
    assert code_feature(pl.Series([2.5, float("nan"), -1.0])).to_list() == [1, 2, 0]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("user_id=uid, item_id = vid", {"user_id": "uid", "item_id": "vid"}),
        ({"click": "c"}, {"click": "c"}),
        ("items.category=genre", {"items.category": "genre"}),
        (None, {}),
    ],
)
def test_parse_mapping(spec, expected):
    assert parse_mapping(spec) == expected


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("user=uid", r"unknown column 'user'; ours: request_id"),
        ("user_id", "not OURS=THEIRS"),
        ("user_id=a,user_id=b", "mapped twice"),
        ("users.age=a", "unknown column 'users.age'"),
        ("missing.yaml", "mapping file not found"),
    ],
)
def test_parse_mapping_errors(spec, pattern):
    with pytest.raises(UserError, match=pattern):
        parse_mapping(spec)


def test_yaml_mapping_must_be_flat(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("user_id: {a: b}\n")
    with pytest.raises(UserError, match="flat mapping"):
        parse_mapping(str(path))
    path.write_text("user_id: [unclosed\n")
    with pytest.raises(UserError, match=r"cannot read .* as YAML"):
        parse_mapping(str(path))


def test_manifest_is_json_with_the_spec_keys(kuairand):
    m = json.loads((kuairand / "manifest.json").read_text())
    for key in (
        "kind",
        "format",
        "source",
        "scenarios",
        "rows",
        "start",
        "end",
        "pre_period_end",
        "traffic_share",
        "policies",
        "files",
        "manifest_sha256",
    ):
        assert key in m
