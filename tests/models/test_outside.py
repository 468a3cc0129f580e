"""Outside models (models/outside.py): factories checked on every call, embeddings folders
validated and looked up, and an export that loads back bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from core.errors import UserError
from models.data import Dataset
from models.floors import RandomRecaller
from models.index import ItemIndex
from models.outside import (
    ITEM_FILE,
    USER_FILE,
    EmbeddingRecaller,
    FactoryRecaller,
    ModelContext,
    export_embeddings,
    load_embeddings,
    load_factory,
    load_outside,
    user_rows,
)
from models.recaller import ModelRecaller
from models.towers import build_model
from models.train import user_features
from tests.models.conftest import small_config

FACTORIES = "tests.models.outside_factories"


@pytest.fixture(scope="module")
def ctx(data: Dataset) -> ModelContext:
    return ModelContext.from_dataset(data, seed=0)


def _rows(data: Dataset, n: int = 300) -> dict[str, np.ndarray]:
    """The user features of `n` requests spread over every scenario."""
    return user_features(data.requests, np.linspace(0, len(data.requests) - 1, n).astype(int))


def _every_user(data: Dataset) -> dict[str, np.ndarray]:
    """Every user of the requests in every scenario, with their profile and no history."""
    users, first = np.unique(data.requests.user_id, return_index=True)
    return user_rows(
        users, data.requests.profile[first], range(data.spec.n_scenarios), data.spec.history_length
    )


def _bits(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)


# ------------------------------------------------------------------------------ factories


def test_a_factory_model_serves_the_vectors_it_computes(data, ctx):
    rec = load_factory(f"{FACTORIES}:make_good", ctx)
    assert isinstance(rec, FactoryRecaller) and rec.name == f"{FACTORIES}:make_good"
    f = _rows(data)
    want = np.column_stack(
        [
            np.ones(300),
            f["user_bucket"] % 10 / 10,
            f["profile"][:, 0] / 10,
            f["scenario"] / 10,
        ]
    ).astype(np.float32)
    got = rec.user_vectors(f)
    assert got.dtype == np.float32 and np.array_equal(got, want)
    for s in range(data.spec.n_scenarios):
        pool, vecs = rec.item_vectors(s)
        assert np.array_equal(pool, data.items.pools[s])
        cat, ct = data.items.category[pool], data.items.content_type[pool]
        hand = np.column_stack([cat / 10, pool % 7 / 7, ct, np.full(pool.size, s / 10)])
        assert np.array_equal(vecs, hand.astype(np.float32))
    assert load_outside(f"{FACTORIES}:make_good", ctx).name == rec.name
    with pytest.raises(UserError, match="unknown model 'nomodel': not a zoo model, an emb"):
        load_outside("nomodel", ctx)
    with pytest.raises(UserError, match="no/such/folder: embeddings folder not found"):
        load_outside("no/such/folder", ctx)


def test_the_documented_example_factory_recalls_the_clicked_categories(data, ctx):
    rec = load_outside("docs.examples.outside_factory:make", ctx)
    f = _rows(data, 50)
    f["hist_items"] = np.full_like(f["hist_items"], -1)
    pool, vecs = rec.item_vectors(0)
    cat = int(data.items.category[pool[0]])
    f["hist_items"][:, :3] = pool[0]  # three clicks on one item of category `cat`
    scores = rec.user_vectors(f)[:1] @ vecs.T
    top = pool[np.argsort(-scores[0], kind="stable")[:10]]
    assert (data.items.category[top] == cat).all()
    empty = rec.user_vectors({**f, "hist_items": np.full_like(f["hist_items"], -1)})[:1]
    clicks = np.bincount(
        data.train.item[data.requests.scenario[data.train.request] == 0],
        minlength=data.spec.n_items,
    )[pool]
    best = pool[np.argmax(empty @ vecs.T)]
    assert clicks[pool == best][0] == clicks.max()  # no clicks: the most clicked item first


def test_a_factory_cannot_change_the_callers_features(ctx):
    with pytest.raises(UserError, match=r"model .*make_writes: user_vectors raised ValueError"):
        load_factory(f"{FACTORIES}:make_writes", ctx)


BAD_FACTORIES = [
    ("nomodule", "a factory is named 'package.module:function'"),
    ("a:b:c", "a factory is named 'package.module:function'"),
    ("mod:", "a factory is named 'package.module:function'"),
    ("nope_no_such_module:make", "cannot import module 'nope_no_such_module' for model"),
    ("tests.models.nope:make", r"cannot import module 'tests.models.nope' for model"),
    (
        "tests.models.outside_broken:make",
        "importing tests.models.outside_broken raised RuntimeError: broken on import",
    ),
    (f"{FACTORIES}:missing", f"'missing' is not a function of {FACTORIES}"),
    (f"{FACTORIES}:NOT_CALLABLE", f"'NOT_CALLABLE' is not a function of {FACTORIES}"),
    (f"{FACTORIES}:make_raises", r"model \S+:make_raises raised ValueError: boom$"),
    (f"{FACTORIES}:make_no_pool", "make_no_pool returned an object without pool_vectors"),
    (f"{FACTORIES}:make_short", r"user_vectors returned shape \((\d+), 3\) for \d+ requests"),
    (f"{FACTORIES}:make_user_raises", "user_vectors raised KeyError: 'hist_items'"),
    (f"{FACTORIES}:make_strings", "user_vectors returned <U1 values, not numbers"),
    (f"{FACTORIES}:make_nan", "pool_vectors returned NaN or infinite values .*first bad rows: 2"),
    (f"{FACTORIES}:make_huge", r"pool_vectors returned NaN .*\(or too large for float32\)"),
    (
        f"{FACTORIES}:make_dims",
        "user_vectors returned 4 dimensions .* but pool_vectors .* returned 3",
    ),
    (
        f"{FACTORIES}:make_dims_by_scenario",
        "pool_vectors returned 3 dimensions for the .* "
        "scenario 'image_text' but pool_vectors .* 'home_feed' returned 4",
    ),
    (f"{FACTORIES}:make_changes", "user_vectors is not deterministic"),
]


@pytest.mark.parametrize(("spec", "match"), BAD_FACTORIES, ids=[b[0] for b in BAD_FACTORIES])
def test_a_bad_factory_is_one_clear_error(ctx, spec, match):
    with pytest.raises(UserError, match=match) as err:
        load_factory(spec, ctx)
    assert "\n" not in str(err.value)


def test_a_factory_is_checked_on_every_call(data, ctx):
    rec = load_factory(f"{FACTORIES}:make_big_batches", ctx)  # fine on the small probe
    rec.user_vectors(_rows(data, 50))
    with pytest.raises(UserError, match=r"user_vectors returned shape \(201, 4\) for 200 requests"):
        rec.user_vectors(_rows(data, 200))


# ----------------------------------------------------------------------- embeddings folder


def test_export_then_load_gives_the_same_bits_and_the_same_top_k(tmp_path, data, ctx):
    for source in (RandomRecaller(data.items, seed=4), load_factory(f"{FACTORIES}:make_good", ctx)):
        folder = export_embeddings(source, tmp_path / "emb", _every_user(data), ctx.scenario_names)
        loaded = load_embeddings(folder, ctx)
        assert isinstance(loaded, EmbeddingRecaller) and loaded.name == "embeddings:emb"
        # the requests' own rows, histories and all: these models ignore the history
        f = _rows(data)
        assert np.array_equal(_bits(loaded.user_vectors(f)), _bits(source.user_vectors(f)))
        for s in range(data.spec.n_scenarios):
            pool, vecs = source.item_vectors(s)
            pool2, vecs2 = loaded.item_vectors(s)
            assert np.array_equal(pool, pool2) and np.array_equal(_bits(vecs), _bits(vecs2))
            rows = f["scenario"] == s
            a = ItemIndex(pool, vecs).search(source.user_vectors(f)[rows], 20)
            b = ItemIndex(pool2, vecs2).search(loaded.user_vectors(f)[rows], 20)
            assert np.array_equal(a[1], b[1]) and np.array_equal(a[0], b[0])


def test_export_writes_one_null_row_for_vectors_equal_in_every_scenario(tmp_path, data, ctx):
    users = _every_user(data)
    n_users, n_scen = np.unique(users["user_id"]).size, data.spec.n_scenarios
    export_embeddings(RandomRecaller(data.items, seed=1), tmp_path, users, ctx.scenario_names)
    u, it = pl.read_parquet(tmp_path / USER_FILE), pl.read_parquet(tmp_path / ITEM_FILE)
    assert u.schema == pl.Schema(
        {"user_id": pl.Int64, "scenario": pl.String, "vector": pl.List(pl.Float32)}
    )
    assert u.height == n_users and u["scenario"].is_null().all()  # random: one vector per user
    in_all = np.bincount(np.concatenate(data.items.pools), minlength=data.spec.n_items) == n_scen
    null_items = it.filter(pl.col("scenario").is_null())["item_id"].to_numpy()
    assert np.array_equal(null_items, np.flatnonzero(in_all))
    export_embeddings(
        load_factory(f"{FACTORIES}:make_good", ctx), tmp_path, users, ctx.scenario_names
    )
    u = pl.read_parquet(tmp_path / USER_FILE)
    assert u.height == n_users * n_scen and u["scenario"].null_count() == 0  # per scenario


def test_export_refuses_a_model_whose_user_vectors_read_the_history(tmp_path, data, ctx):
    mixed = ModelRecaller("mixed", build_model(small_config("mixed", data), data.items), data.items)
    with pytest.raises(UserError, match="mixed: its user vectors change with the click history"):
        export_embeddings(mixed, tmp_path, _every_user(data), ctx.scenario_names)
    assert not list(tmp_path.iterdir())  # nothing written
    f = _rows(data, 100)
    with pytest.raises(UserError, match="two different vectors for user_id"):
        export_embeddings(mixed, tmp_path, f, ctx.scenario_names, check_history=False)
    # a snapshot: the vectors of one request's history per user and scenario
    _, first = np.unique(np.column_stack([f["user_id"], f["scenario"]]), axis=0, return_index=True)
    f = {k: v[first] for k, v in f.items()}
    export_embeddings(mixed, tmp_path, f, ctx.scenario_names, check_history=False)
    loaded = load_embeddings(tmp_path, ctx)
    assert np.array_equal(_bits(loaded.user_vectors(f)), _bits(mixed.user_vectors(f)))


def test_a_scenario_row_wins_over_the_null_row(tmp_path, data, ctx):
    every = np.unique(np.concatenate(data.items.pools))
    some = data.items.pools[1][:3]
    a, b = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    items = pl.DataFrame(
        {
            "item_id": np.concatenate([every, some]),
            "scenario": [None] * every.size + ["immersive_video"] * some.size,
            "vector": [a] * every.size + [b] * some.size,
        }
    )
    users = pl.DataFrame(
        {
            "user_id": [5, 5, 6],
            "scenario": [None, "image_text", "home_feed"],
            "vector": [a, b, b],
        }
    )
    items.write_parquet(tmp_path / ITEM_FILE)
    users.write_parquet(tmp_path / USER_FILE)
    rec = load_embeddings(tmp_path, ctx)
    pool, vecs = rec.item_vectors(1)
    assert np.array_equal(vecs[np.isin(pool, some)], np.tile(b, (3, 1)))
    assert np.array_equal(vecs[~np.isin(pool, some)], np.tile(a, (pool.size - 3, 1)))
    assert np.array_equal(rec.item_vectors(0)[1], np.tile(a, (data.items.pools[0].size, 1)))
    f = {"user_id": np.array([5, 5, 5, 6]), "scenario": np.array([0, 2, 3, 0])}
    assert np.array_equal(rec.user_vectors(f), np.array([a, b, a, b], dtype=np.float32))
    with pytest.raises(
        UserError,
        match=r"no vector for user_id 6 in scenario 'immersive_video' "
        r"\(neither .*; 1 of 2 requests",
    ):
        rec.user_vectors({"user_id": np.array([5, 6]), "scenario": np.array([1, 1])})


def _good(data: Dataset) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Null-scenario rows of 4-d vectors for every user 0..299 and every pooled item."""
    every = np.unique(np.concatenate(data.items.pools))
    vec = pl.List(pl.Float64)
    users = pl.DataFrame(
        {
            "user_id": np.arange(300),
            "scenario": [None] * 300,
            "vector": [[0.5, 0.5, 0.5, 0.5]] * 300,
        },
        schema_overrides={"scenario": pl.String, "vector": vec},
    )
    items = pl.DataFrame(
        {
            "item_id": every,
            "scenario": [None] * every.size,
            "vector": [[1.0, 0.0, 0.0, 0.0]] * every.size,
        },
        schema_overrides={"scenario": pl.String, "vector": vec},
    )
    return users, items


def _set(df: pl.DataFrame, column: str, row: int, value) -> pl.DataFrame:
    values = df[column].to_list()
    values[row] = value
    return df.with_columns(pl.Series(column, values, dtype=df[column].dtype, strict=False))


def _first_item(data):
    return int(data.items.pools[0][0])


# (what to break, match): each gets the good (users, items) frames and the folder
BAD_FOLDERS = [
    ("no user file", lambda u, i, d: (None, i), f"{USER_FILE}: file not found"),
    ("not parquet", lambda u, i, d: (u, b"PAR1 garbage"), f"cannot read .*{ITEM_FILE} as parquet"),
    ("no vector column", lambda u, i, d: (u, i.drop("vector")),
     f"{ITEM_FILE}: missing column 'vector'"),
    ("text ids", lambda u, i, d: (u.with_columns(pl.col("user_id").cast(pl.String)), i),
     "column 'user_id' must hold integer ids, got String"),
    ("null ids", lambda u, i, d: (_set(u, "user_id", 3, None), i),
     f"{USER_FILE}: column 'user_id' has nulls; first bad rows: 3$"),
    ("text vectors", lambda u, i, d: (u, i.with_columns(vector=pl.lit("0.1,0.2"))),
     "column 'vector' must hold lists of numbers, got String"),
    ("null vector", lambda u, i, d: (_set(u, "vector", 7, None), i),
     "column 'vector' has nulls; first bad rows: 7$"),
    ("empty vectors", lambda u, i, d: (u.with_columns(vector=pl.lit([], pl.List(pl.Float64))), i),
     "column 'vector' has empty vectors"),
    ("ragged vectors", lambda u, i, d: (_set(u, "vector", 2, [1.0, 2.0, 3.0]), i),
     r"different lengths: row 0 has 4, first rows with another length: 2 \(3\)$"),
    ("users and items differ", lambda u, i, d: (u, i.with_columns(vector=pl.lit([1.0] * 5))),
     f"'vector' has 4 dimensions in {USER_FILE} but 5 in {ITEM_FILE}"),
    ("NaN", lambda u, i, d: (u, _set(i, "vector", 1, [0.0, float("nan"), 0.0, 0.0])),
     f"{ITEM_FILE}: column 'vector' has NaN or infinite values .*first bad rows: 1$"),
    ("inf", lambda u, i, d: (_set(u, "vector", 4, [float("inf")] * 4), i),
     "NaN or infinite values .*first bad rows: 4$"),
    ("beyond float32", lambda u, i, d: (_set(u, "vector", 5, [1e300] * 4), i),
     r"\(or too large for float32\); first bad rows: 5$"),
    ("null inside a vector", lambda u, i, d: (_set(u, "vector", 6, [1.0, None, 1.0, 1.0]), i),
     "null values inside vectors; first bad rows: 6$"),
    ("duplicated ids", lambda u, i, d: (u, pl.concat([i, i[3:5]])),
     r"duplicated \(item_id, scenario\) rows.*first bad rows: 3 \(item_id \d+, scenario null\)"),
    ("unknown scenario", lambda u, i, d: (_set(u, "scenario", 9, "nowhere"), i),
     r"'scenario' has scenarios not in the config .*first bad rows: 9 \('nowhere'\)$"),
    ("numeric scenario", lambda u, i, d: (u.with_columns(scenario=pl.lit(1)), i),
     "column 'scenario' must hold scenario names or nulls, got Int32"),
    ("pool item missing", lambda u, i, d: (u, i.filter(pl.col("item_id") != _first_item(d))),
     r"scenario 'home_feed' has pool items without a vector .*first missing item_id: \d+$"),
    ("no rows", lambda u, i, d: (u.clear(), i), f"{USER_FILE}: no rows"),
    ("no folder", lambda u, i, d: "nowhere", "embeddings folder not found"),
]  # fmt: skip


@pytest.mark.parametrize(("breaks", "match"), [b[1:] for b in BAD_FOLDERS],
                         ids=[b[0] for b in BAD_FOLDERS])  # fmt: skip
def test_a_bad_embeddings_folder_is_one_clear_error(tmp_path, data, ctx, breaks, match):
    out = breaks(*_good(data), data)
    folder = tmp_path / "emb"
    if isinstance(out, str):
        folder = tmp_path / out
    else:
        folder.mkdir()
        for frame, name in zip(out, (USER_FILE, ITEM_FILE), strict=True):
            if isinstance(frame, bytes):
                (folder / name).write_bytes(frame)
            elif frame is not None:
                frame.write_parquet(folder / name)
    with pytest.raises(UserError, match=match) as err:
        load_embeddings(folder, ctx)
    assert "\n" not in str(err.value)


def test_the_good_frames_of_the_bad_input_table_load(tmp_path, data, ctx):
    users, items = _good(data)
    users.write_parquet(tmp_path / USER_FILE)
    items.write_parquet(tmp_path / ITEM_FILE)
    rec = load_embeddings(Path(tmp_path), ctx)
    assert rec.user_vectors(_rows(data)).shape == (300, 4)
