"""Training and evaluation data for the recall models, built from a log folder with polars.

A log folder is what ``python -m abtest generate`` writes (logs, users, items, manifest).
From it we build:

* a :class:`RequestTable`: per request the user features the user tower reads — hashed user
  id bucket, profile, the last H clicks across all scenarios with their scenarios (as of the
  request's time: no future leakage), and the scenario;
* an :class:`ItemTable`: per item id its category, content type and duration bucket, and
  each scenario's item pool (items whose content type the scenario shows);
* :class:`Examples` (request row, item, click) for three uses: recall training (clicks in
  the earlier part of the pre-period), validation (clicks in its later part) and SASS
  pre-training (every exposure, clicked or not, in the training window: the entire space).

Shapes: R requests, H history length, F profile features, N examples, I items.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from core import keyed
from core.config import Config
from core.errors import UserError
from models.features import click_histories
from simulator.logfolder import (
    ITEMS,
    LOGS,
    MANIFEST,
    USERS,
    logs_fingerprint,
    read_manifest,
    verify_named,
)
from simulator.logs import read_logs, validate_side_table

DURATION_EDGES = np.array([10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0])  # seconds
USER_BUCKETS = 16_384


@dataclass(frozen=True)
class FeatureSpec:
    """Cardinalities of every categorical input (what the embedding tables need)."""

    n_user_buckets: int
    profile_cards: tuple[int, ...]
    n_items: int
    n_categories: int
    n_content_types: int
    n_duration_buckets: int
    n_scenarios: int
    history_length: int


@dataclass(frozen=True)
class RequestTable:
    request_id: np.ndarray  # R int64
    user_id: np.ndarray  # R int64
    user_bucket: np.ndarray  # R int64
    profile: np.ndarray  # R x F int64
    hist_items: np.ndarray  # R x H int64, -1 = empty
    hist_scenarios: np.ndarray  # R x H int64, -1 = empty
    scenario: np.ndarray  # R int64

    def __len__(self) -> int:
        return int(self.request_id.shape[0])


@dataclass(frozen=True)
class ItemTable:
    category: np.ndarray  # I int64, index = item id
    content_type: np.ndarray  # I int64
    duration_bucket: np.ndarray  # I int64
    pools: tuple[np.ndarray, ...]  # per scenario: sorted item ids

    @classmethod
    def from_world(cls, world) -> ItemTable:
        """A synthetic world's items as a model sees them (no logs needed): what the floors
        and the simulator's tests and benchmarks serve from."""
        it = world.items
        return cls(
            it.category.astype(np.int64),
            it.content_type.astype(np.int64),
            duration_buckets(it.duration),
            tuple(sc.pool for sc in world.scenarios),
        )


@dataclass(frozen=True)
class Examples:
    request: np.ndarray  # N int64 row in the RequestTable
    item: np.ndarray  # N int64
    click: np.ndarray  # N int8

    def __len__(self) -> int:
        return int(self.item.shape[0])


@dataclass(frozen=True)
class Dataset:
    spec: FeatureSpec
    scenario_names: tuple[str, ...]
    requests: RequestTable
    items: ItemTable
    train: Examples  # clicks, training window
    valid: Examples  # clicks, validation window
    pretrain: Examples  # all exposures, training window
    data_hash: str


def user_buckets(user_id: np.ndarray, n: int = USER_BUCKETS) -> np.ndarray:
    """Hashed user-id buckets: unseen ids still get an embedding (shared with a few others)."""
    return (keyed.hash64(0, "user_bucket", user_id) % np.uint64(n)).astype(np.int64)


def duration_buckets(seconds: np.ndarray) -> np.ndarray:
    return np.digitize(seconds, DURATION_EDGES).astype(np.int64)


def content_hash(frames: list[pl.DataFrame]) -> str:
    """Hash of the frames' contents (not of the files' bytes, which differ between two writes
    of the same rows). Row hashes come from polars, so a polars upgrade may change it: the
    cached models are then retrained, never wrongly reused."""
    h = hashlib.sha256()
    for df in frames:
        h.update(",".join(f"{n}:{t}" for n, t in df.schema.items()).encode())
        h.update(df.hash_rows(seed=0).to_numpy().tobytes())
    return h.hexdigest()[:16]


def data_hash(
    frames: list[pl.DataFrame], pre_end: dt.datetime, config: Config, valid_days: int
) -> str:
    """What a dataset is built from, and so what keys the models trained on it: the tables'
    contents, the end of the pre-period (from the manifest: it splits training from
    validation), the config sections that shape the logs and the held-out days.

    Not the whole config (serving and experiment settings do not change the data, and their
    edits must not retrain), nor the files' digests (verified before the tables are read;
    the same rows written twice may differ in bytes).
    """
    blob = json.dumps(
        {
            "tables": content_hash(frames),
            "pre_period_end": pre_end.isoformat(),
            "logs_config": logs_fingerprint(config),
            "valid_days": valid_days,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _side_table(path: Path, table: str) -> pl.DataFrame:
    try:
        df = pl.read_parquet(path)
    except FileNotFoundError:
        raise UserError(f"{path}: file not found (an incomplete log folder)") from None
    except Exception as exc:  # polars raises several types for a corrupt file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot read {path} as parquet: {first}") from None
    return validate_side_table(df, table, str(path))


IMPORTED = "imported"
# An imported folder's validation window: the last fifth of its pre-period's logged time
# (a synthetic folder holds out its last `valid_days` pre-period days instead).
VALID_FRACTION = 0.2
SIDE_ID_COLUMNS = ("user_id", "item_id", "source_id")  # not model features


def load_dataset(log_dir: str | Path, config: Config, valid_days: int = 2) -> Dataset:
    """Read a log folder (generated or imported) and build requests, items and the three
    example sets.

    A generated folder's scenarios and pools come from `config` (its world); an imported
    folder's (``kind: imported``, written by ``python -m abtest import``) from the folder
    itself: the scenarios its manifest lists, each scenario's pool the items logged in it,
    the feature cardinalities from its side tables (a feature they lack is absent: one
    constant code), the time split from its own timeline. `config` then supplies only the
    model settings (the history length). The folder is verified against its manifest first
    (a changed file is refused)."""
    log_dir = Path(log_dir)
    verify_named(log_dir)
    manifest = read_manifest(log_dir)
    imported = manifest.get("kind") == IMPORTED
    pre_end = _manifest_time(log_dir, manifest, "pre_period_end")
    if imported:
        names = _imported_scenarios(log_dir, manifest)
        start = _manifest_time(log_dir, manifest, "start")
        cut = pre_end - (pre_end - start) * VALID_FRACTION
    else:
        if not 0 < valid_days < config.periods.pre_days:
            raise UserError(
                f"periods.pre_days: must be > {valid_days} (the last {valid_days} pre-period "
                f"days are held out for validation), got {config.periods.pre_days}"
            )
        names = config.scenario_names
        cut = pre_end - dt.timedelta(days=valid_days)
    logs = read_logs(log_dir / LOGS, scenarios=names, verify=False)
    users = _side_table(log_dir / USERS, "users")
    items = _side_table(log_dir / ITEMS, "items")
    _check_items_known(logs, items, log_dir)
    pre = logs.filter(pl.col("timestamp") < pre_end)
    if pre.filter(pl.col("timestamp") < cut).height == 0:
        raise UserError(f"{log_dir}: no logged traffic before {cut.isoformat()} to train on")
    codes = {n: i for i, n in enumerate(names)}
    requests, profile_cards = _request_table(pre, logs, users, config, codes)
    items = _with_item_features(items).sort("item_id")
    if imported:
        item_table, n_content_types = _logged_item_table(items, logs, names, log_dir)
        if pre.filter(pl.col("timestamp") >= cut, pl.col("click") == 1).height == 0:
            raise UserError(
                f"{log_dir}: no click logged between {cut.isoformat()} and "
                f"{pre_end.isoformat()} to validate on (re-import with a larger --pre-fraction)"
            )
    else:
        item_table, n_content_types = _item_table(items, config, log_dir)

    row_of = pl.DataFrame({"request_id": requests.request_id, "row": np.arange(len(requests))})
    ex = pre.select("request_id", "timestamp", "item_id", "click").join(row_of, on="request_id")
    early = ex.filter(pl.col("timestamp") < cut)
    late = ex.filter(pl.col("timestamp") >= cut)
    spec = FeatureSpec(
        n_user_buckets=USER_BUCKETS,
        profile_cards=profile_cards,
        n_items=item_table.category.shape[0],
        n_categories=int(item_table.category.max()) + 1,
        n_content_types=n_content_types,
        n_duration_buckets=len(DURATION_EDGES) + 1,
        n_scenarios=len(names),
        history_length=config.world.history_length,
    )
    if imported:  # the config's world does not shape these logs: only its history length
        digest = imported_data_hash([logs, users, items], pre_end, cut, spec.history_length)
    else:
        digest = data_hash([logs, users, items], pre_end, config, valid_days)
    return Dataset(
        spec=spec,
        scenario_names=tuple(names),
        requests=requests,
        items=item_table,
        train=_examples(early.filter(pl.col("click") == 1)),
        valid=_examples(late.filter(pl.col("click") == 1)),
        pretrain=_examples(early),
        data_hash=digest,
    )


def imported_data_hash(
    frames: list[pl.DataFrame], pre_end: dt.datetime, cut: dt.datetime, history_length: int
) -> str:
    """What a dataset built from an imported folder is built from: the tables' contents, the
    time split and the history length."""
    blob = json.dumps(
        {
            "tables": content_hash(frames),
            "kind": IMPORTED,
            "pre_period_end": pre_end.isoformat(),
            "validation_start": cut.isoformat(),
            "history_length": history_length,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _manifest_time(log_dir: Path, manifest: dict, key: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(manifest[key])
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{log_dir / MANIFEST}: unreadable manifest ({key}: {exc})") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def _imported_scenarios(log_dir: Path, manifest: dict) -> tuple[str, ...]:
    names = manifest.get("scenarios")
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(n, str) and n for n in names)
        or len(set(names)) < len(names)
    ):
        raise UserError(
            f"{log_dir / MANIFEST}: unreadable manifest (scenarios: a list of distinct names "
            f"expected, got {names!r})"
        )
    return tuple(names)


def _with_item_features(items: pl.DataFrame) -> pl.DataFrame:
    """The items table with every model feature: an absent one is one constant code."""
    return items.with_columns(
        (pl.col("category") if "category" in items.columns else pl.lit(0, pl.Int64)).alias(
            "category"
        ),
        (
            pl.col("content_type").cast(pl.String)
            if "content_type" in items.columns
            else pl.lit("all", pl.String)
        ).alias("content_type"),
        (pl.col("duration") if "duration" in items.columns else pl.lit(0.0, pl.Float64)).alias(
            "duration"
        ),
    )


def _logged_item_table(
    items: pl.DataFrame, logs: pl.DataFrame, names: tuple[str, ...], log_dir: Path
) -> tuple[ItemTable, int]:
    """An imported folder's item features and pools: each scenario's pool is the items
    logged in it (over the whole log: the catalogue the scenario shows)."""
    table, n_types = _features_by_id(items)
    pools = []
    for name in names:
        pool = np.sort(logs.filter(pl.col("scenario") == name)["item_id"].unique().to_numpy())
        if pool.size == 0:
            raise UserError(f"{log_dir / LOGS}: scenario {name} (in the manifest) has no rows")
        pools.append(pool.astype(np.int64))
    return ItemTable(table[0], table[1], table[2], tuple(pools)), n_types


def _features_by_id(items: pl.DataFrame) -> tuple[tuple[np.ndarray, ...], int]:
    """(category, content type code, duration bucket) indexed by item id, and the number of
    content types; `items` sorted by id, with string content types."""
    n_items = int(items["item_id"].max()) + 1
    ct_names = sorted(items["content_type"].unique().to_list())
    ct_code = {c: i for i, c in enumerate(ct_names)}
    category = np.zeros(n_items, dtype=np.int64)
    ctype = np.zeros(n_items, dtype=np.int64)
    dur = np.zeros(n_items, dtype=np.int64)
    ids = items["item_id"].to_numpy()
    category[ids] = items["category"].to_numpy()
    ctype[ids] = items["content_type"].replace_strict(ct_code, return_dtype=pl.Int64).to_numpy()
    dur[ids] = duration_buckets(items["duration"].to_numpy())
    return (category, ctype, dur), len(ct_names)


def _check_items_known(logs: pl.DataFrame, items: pl.DataFrame, log_dir: Path) -> None:
    unknown = ~logs["item_id"].is_in(items["item_id"].implode())
    if unknown.any():
        rows = ", ".join(f"{i} ({logs['item_id'][int(i)]})" for i in unknown.arg_true()[:5])
        raise UserError(
            f"{log_dir / 'logs.parquet'}: column 'item_id' has items not in "
            f"{log_dir / 'items.parquet'}; first offending rows: {rows}"
        )


def _request_table(
    pre: pl.DataFrame, logs: pl.DataFrame, users: pl.DataFrame, config: Config, codes: dict
) -> tuple[RequestTable, tuple[int, ...]]:
    """The pre-period's requests, with histories from every click logged before them, and
    the cardinality of each profile feature."""
    req = (
        pre.group_by("request_id")
        .agg(pl.col("user_id", "timestamp", "scenario").first())
        .sort("timestamp", "request_id")
    )
    hist = click_histories(logs, req, config.world.history_length, codes)
    profile_cols = [c for c in users.columns if c not in SIDE_ID_COLUMNS]
    prof = req.select("user_id").join(users, on="user_id", how="left", maintain_order="left")
    profile = prof.select(profile_cols).fill_null(0).to_numpy().astype(np.int64)
    profile_cards = tuple(int(users[c].max()) + 1 for c in profile_cols)
    user_id = req["user_id"].to_numpy()
    requests = RequestTable(
        request_id=req["request_id"].to_numpy(),
        user_id=user_id,
        user_bucket=user_buckets(user_id),
        profile=profile.reshape(len(req), len(profile_cols)),
        hist_items=hist.items,
        hist_scenarios=hist.scenarios,
        scenario=req["scenario"].replace_strict(codes, return_dtype=pl.Int64).to_numpy(),
    )
    return requests, profile_cards


def _item_table(items: pl.DataFrame, config: Config, log_dir: Path) -> tuple[ItemTable, int]:
    """The item features indexed by item id and each scenario's pool (from `items`, sorted
    by id with string content types), and the number of content types."""
    (category, ctype, dur), n_types = _features_by_id(items)
    ct_names = sorted(items["content_type"].unique().to_list())
    ids = items["item_id"].to_numpy()
    pools = []
    for sc in config.scenarios:
        allowed = [ct_names.index(c) for c in sc.content_types if c in ct_names]
        pools.append(np.sort(ids[np.isin(ctype[ids], allowed)]))
        if pools[-1].size == 0:
            raise UserError(
                f"{log_dir / 'items.parquet'}: column 'content_type' has no item of scenario "
                f"{sc.name}'s content types ({', '.join(sc.content_types)})"
            )
    return ItemTable(category, ctype, dur, tuple(pools)), n_types


def _examples(frame: pl.DataFrame) -> Examples:
    return Examples(
        frame["row"].to_numpy().astype(np.int64),
        frame["item_id"].to_numpy().astype(np.int64),
        frame["click"].to_numpy().astype(np.int8),
    )
