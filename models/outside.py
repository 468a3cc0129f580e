"""Outside models: recallers built elsewhere, served wherever a zoo model is.

Both ways in give a :class:`models.recaller.Recaller` (its docstring is the protocol; the
guide is docs/outside_models.md):

* a **factory**, named ``package.module:function``: :func:`load_factory` imports the module
  (the current folder importable, as with ``python -m``), calls ``function(context)`` with a
  :class:`ModelContext` (scenarios, items, feature cardinalities, seed and, when the harness
  built one from the logs, the :class:`models.data.Dataset` to train on) and wraps the object
  it returns — anything with ``user_vectors(features)`` and ``pool_vectors(scenario, pool)``
  — in a :class:`FactoryRecaller`, which checks every call's result;
* an **embeddings folder** of precomputed vectors (``user_vectors.parquet`` and
  ``item_vectors.parquet``: id, scenario or null for every scenario, vector):
  :func:`load_embeddings` validates it and serves it as an :class:`EmbeddingRecaller`.

:func:`export_embeddings` writes any recaller's vectors as an embeddings folder; serving the
folder then equals serving the recaller only when its user vectors ignore the click history
(it checks that; see its doc). :func:`load_outside` picks the loader from the name.

Every problem is one :class:`core.errors.UserError` line naming the model, or the file,
column and first bad rows.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from core import keyed
from core.errors import UserError
from core.fileio import write_parquet
from models.data import Dataset, FeatureSpec, ItemTable, user_buckets
from models.recaller import Recaller

USER_FILE = "user_vectors.parquet"
ITEM_FILE = "item_vectors.parquet"
METHODS = ("user_vectors", "pool_vectors")
_NAME = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
SPEC_PATTERN = re.compile(rf"^({_NAME}):({_NAME})$")
PROBE_ROWS = 4  # rows per scenario of the probe batch a factory model is checked on


@dataclass(frozen=True)
class ModelContext:
    """What a factory is given to build its model from.

    `items` holds per item id its category, content type and duration bucket codes and, per
    scenario, the sorted pool of item ids the model must give vectors for; `spec` the
    cardinalities of every feature code; `dataset` the requests and clicks the harness read
    from the log folder (None where there is none), to train on.
    """

    scenario_names: tuple[str, ...]
    items: ItemTable
    spec: FeatureSpec
    seed: int = 0
    dataset: Dataset | None = None

    @classmethod
    def from_dataset(cls, data: Dataset, seed: int) -> ModelContext:
        return cls(tuple(data.scenario_names), data.items, data.spec, seed, data)


def load_outside(name: str, context: ModelContext) -> Recaller:
    """The outside model `name`: an embeddings folder if `name` is an existing folder or a
    path (has a slash), else a ``package.module:function`` factory. Zoo names are the
    caller's to resolve first."""
    if Path(name).is_dir() or "/" in name or os.sep in name:
        return load_embeddings(name, context)
    if ":" not in name:
        raise UserError(
            f"unknown model {name!r}: not a zoo model, an embeddings folder or a "
            "'package.module:function' factory"
        )
    return load_factory(name, context)


# --------------------------------------------------------------------------- factories


def load_factory(spec: str, context: ModelContext) -> FactoryRecaller:
    """Import ``package.module:function``, call ``function(context)`` and wrap the model it
    returns; its vectors for every pool and for a probe batch are checked before use."""
    match = SPEC_PATTERN.match(spec)
    if match is None:
        raise UserError(
            f"model {spec!r}: a factory is named 'package.module:function' (e.g. "
            "mypackage.models:make), relative to the current folder"
        )
    module_name, attr = match.groups()
    module = _import(module_name, spec)
    fn: Any = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
    if fn is None or not callable(fn):
        raise UserError(f"model {spec}: {attr!r} is not a function of {module_name}")
    try:
        model = fn(context)
    except Exception as exc:
        raise UserError(f"model {spec} raised {_describe(exc)}") from None
    missing = [m for m in METHODS if not callable(getattr(model, m, None))]
    if missing:
        raise UserError(
            f"model {spec} returned an object without {' and '.join(missing)} "
            f"({type(model).__name__}; a model needs user_vectors(features) and "
            "pool_vectors(scenario, pool))"
        )
    recaller = FactoryRecaller(spec, model, context)
    recaller.check(context)
    return recaller


@contextlib.contextmanager
def _cwd_importable() -> Iterator[None]:
    """The current folder on sys.path while importing, as ``python -m`` puts it there."""
    cwd = os.getcwd()
    present = any(os.path.abspath(p or os.curdir) == cwd for p in sys.path)
    if not present:
        sys.path.insert(0, cwd)
    try:
        yield
    finally:
        if not present:
            with contextlib.suppress(ValueError):
                sys.path.remove(cwd)


def _import(module_name: str, spec: str):
    try:
        with _cwd_importable():
            return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            where = "" if missing == module_name else f" (no module {missing!r})"
            raise UserError(
                f"cannot import module {module_name!r} for model {spec}{where}: run from the "
                "folder that holds it or add it to PYTHONPATH"
            ) from None
        raise UserError(f"model {spec}: importing {module_name} raised {_describe(exc)}") from None
    except Exception as exc:  # the module itself failed: syntax error, its own imports, ...
        raise UserError(f"model {spec}: importing {module_name} raised {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    """``Type: first line of the message`` of an exception."""
    text = str(exc).strip()
    if isinstance(exc, KeyError) and exc.args:
        text = repr(exc.args[0])
    first = text.splitlines()[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _read_only(x: np.ndarray) -> np.ndarray:
    view = np.asarray(x).view()
    view.flags.writeable = False
    return view


class FactoryRecaller(Recaller):
    """A factory's model, its every call checked: B (or N) rows of finite numbers, one D
    for users and items in every scenario; any problem or exception is a UserError naming
    the model (its spec, also its :attr:`name`)."""

    def __init__(self, spec: str, model: Any, context: ModelContext):
        super().__init__(context.items)
        self.name, self.model = spec, model
        self.scenario_names = tuple(context.scenario_names)  # not the context: no dataset kept
        self.dim: int | None = None
        self._dim_from = ""

    def user_vectors(self, f: dict[str, np.ndarray]) -> np.ndarray:
        n = int(np.asarray(f["scenario"]).shape[0])
        out = self._call("user_vectors", {k: _read_only(v) for k, v in f.items()})
        return self._check(out, "user_vectors", f"for {n} requests", n)

    def pool_vectors(self, scenario: int, pool: np.ndarray) -> np.ndarray:
        n = int(np.asarray(pool).shape[0])
        out = self._call("pool_vectors", int(scenario), _read_only(pool))
        where = f"for the {n} pool items of scenario {self.scenario_names[scenario]!r}"
        return self._check(out, "pool_vectors", where, n)

    def _call(self, method: str, *args):
        try:
            return getattr(self.model, method)(*args)
        except Exception as exc:
            raise UserError(f"model {self.name}: {method} raised {_describe(exc)}") from None

    def _check(self, out: Any, method: str, where: str, n: int) -> np.ndarray:
        head = f"model {self.name}: {method}"
        try:
            raw = np.asarray(out)
        except Exception as exc:
            raise UserError(
                f"{head} returned a {type(out).__name__} that is not an array ({_describe(exc)})"
            ) from None
        if raw.dtype.kind not in "fiu":
            raise UserError(f"{head} returned {raw.dtype} values, not numbers, {where}")
        if raw.ndim != 2 or raw.shape[0] != n:
            raise UserError(f"{head} returned shape {raw.shape} {where} (wanted {n} x D)")
        if raw.shape[1] == 0:
            raise UserError(f"{head} returned vectors of 0 dimensions {where}")
        with np.errstate(over="ignore", invalid="ignore"):  # too large for float32 -> inf
            x = np.ascontiguousarray(raw, dtype=np.float32)
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            raise UserError(
                f"{head} returned NaN or infinite values (or too large for float32) {where}; "
                f"first bad rows: {_first(bad)}"
            )
        if self.dim is None:
            self.dim, self._dim_from = x.shape[1], f"{method} {where}"
        elif x.shape[1] != self.dim:
            raise UserError(
                f"{head} returned {x.shape[1]} dimensions {where} but {self._dim_from} "
                f"returned {self.dim}: users and items need one D"
            )
        return x

    def check(self, context: ModelContext) -> None:
        """Every scenario's pool vectors (cached for serving) and a probe batch of user
        vectors, each twice: shapes, values, one D, the same result in both calls."""
        names = self.scenario_names
        pools = [self.item_vectors(s) for s in range(len(names))]
        pool, vecs = pools[-1]
        again = self.pool_vectors(len(names) - 1, pool)
        if not _same_bits(again, vecs):
            raise UserError(
                f"model {self.name}: pool_vectors is not deterministic (two calls for scenario "
                f"{names[-1]!r} gave different vectors)"
            )
        probe = probe_features(context)
        first, second = self.user_vectors(probe), self.user_vectors(probe)
        if not _same_bits(first, second):
            raise UserError(
                f"model {self.name}: user_vectors is not deterministic (two calls on the same "
                "rows gave different vectors)"
            )


def probe_features(context: ModelContext) -> dict[str, np.ndarray]:
    """A small batch of user features to check a model on: up to PROBE_ROWS requests of
    each scenario from the dataset, else synthetic rows (user 0, profile codes 0, empty
    history) in every scenario."""
    data = context.dataset
    if data is not None and len(data.requests) > 0:
        req = data.requests
        rows = np.concatenate(
            [
                np.flatnonzero(req.scenario == s)[:PROBE_ROWS]
                for s in range(context.spec.n_scenarios)
            ]
        )
        return {
            "user_id": req.user_id[rows],
            "user_bucket": req.user_bucket[rows],
            "profile": req.profile[rows],
            "hist_items": req.hist_items[rows],
            "hist_scenarios": req.hist_scenarios[rows],
            "scenario": req.scenario[rows],
        }
    profile = np.zeros((1, len(context.spec.profile_cards)), dtype=np.int64)
    scenarios = range(len(context.scenario_names))
    return user_rows(np.zeros(1, np.int64), profile, scenarios, context.spec.history_length)


def user_rows(
    user_id: np.ndarray, profile: np.ndarray, scenarios: Sequence[int], history_length: int
) -> dict[str, np.ndarray]:
    """User features for every user in every listed scenario (user-major, U x S rows) with
    an empty click history: ``profile`` is U x F, row u for ``user_id[u]``."""
    user_id = np.asarray(user_id, dtype=np.int64)
    scen = np.asarray(list(scenarios), dtype=np.int64)
    n_s = scen.size
    profile = np.asarray(profile, dtype=np.int64).reshape(user_id.size, -1)
    n = user_id.size * n_s
    empty = np.full((n, history_length), -1, dtype=np.int64)
    uid = np.repeat(user_id, n_s)
    return {
        "user_id": uid,
        "user_bucket": user_buckets(uid),
        "profile": np.repeat(profile, n_s, axis=0),
        "hist_items": empty,
        "hist_scenarios": empty.copy(),
        "scenario": np.tile(scen, user_id.size),
    }


# --------------------------------------------------------------------- embeddings folder


@dataclass(frozen=True)
class VectorTable:
    """One embeddings file: its vectors and, per scenario code (-1 = null, every scenario),
    its ids sorted with the row of each, for vectorised lookups."""

    path: Path
    id_col: str
    vectors: np.ndarray  # M x D float32
    keys: dict[int, tuple[np.ndarray, np.ndarray]]  # code -> (sorted ids, their rows)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def rows(self, ids: np.ndarray, scenario: int) -> np.ndarray:
        """The row of each id's vector in `scenario`: its scenario's row, else its null-scenario
        row, else -1."""
        out = np.full(ids.shape[0], -1, dtype=np.int64)
        for code in (scenario, -1):
            if code not in self.keys:
                continue
            todo = np.flatnonzero(out < 0)
            if todo.size == 0:
                break
            sorted_ids, row = self.keys[code]
            q = ids[todo]
            pos = np.minimum(np.searchsorted(sorted_ids, q), sorted_ids.size - 1)
            out[todo] = np.where(sorted_ids[pos] == q, row[pos], -1)
        return out


class EmbeddingRecaller(Recaller):
    """Precomputed vectors from an embeddings folder (see :func:`load_embeddings`)."""

    def __init__(self, name: str, users: VectorTable, items: VectorTable, context: ModelContext):
        super().__init__(context.items)
        self.name, self.users, self.item_table = name, users, items
        self.scenario_names = context.scenario_names

    def user_vectors(self, f: dict[str, np.ndarray]) -> np.ndarray:
        ids = np.asarray(f["user_id"], dtype=np.int64)
        scen = np.asarray(f["scenario"], dtype=np.int64)
        rows = self._rows(self.users, ids, scen)
        if (rows < 0).any():
            i = int(np.argmax(rows < 0))
            name = self.scenario_names[int(scen[i])]
            raise UserError(
                f"{self.users.path}: no vector for user_id {int(ids[i])} in scenario {name!r} "
                f"(neither a {name!r} row nor a null-scenario row); {int((rows < 0).sum())} of "
                f"{ids.size} requests lack one"
            )
        return self.users.vectors[rows]

    def pool_vectors(self, scenario: int, pool: np.ndarray) -> np.ndarray:
        pool = np.asarray(pool, dtype=np.int64)
        rows = self.item_table.rows(pool, scenario)
        if (rows < 0).any():
            name = self.scenario_names[scenario]
            missing = pool[rows < 0]
            raise UserError(
                f"{self.item_table.path}: scenario {name!r} has pool items without a vector "
                f"(neither a {name!r} row nor a null-scenario row): {missing.size} of "
                f"{pool.size}; first missing item_id: {_listed(missing)}"
            )
        return self.item_table.vectors[rows]

    @staticmethod
    def _rows(table: VectorTable, ids: np.ndarray, scen: np.ndarray) -> np.ndarray:
        if scen.size == 0 or (scen == scen[0]).all():  # serving: one scenario per batch
            return table.rows(ids, int(scen[0]) if scen.size else -1)
        rows = np.empty(ids.size, dtype=np.int64)
        for s in np.unique(scen).tolist():
            mask = scen == s
            rows[mask] = table.rows(ids[mask], s)
        return rows


def load_embeddings(folder: str | Path, context: ModelContext) -> EmbeddingRecaller:
    """The embeddings folder `folder` as a recaller, every pool's vectors checked up front.

    ``user_vectors.parquet`` (user_id, scenario, vector) and ``item_vectors.parquet``
    (item_id, scenario, vector): integer ids as in the log folder, scenario a name of
    `context` or null (every scenario; a row of the scenario wins over it), vector a list
    of numbers, one length in both files. Its name is ``embeddings:<folder name>``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(
            f"{folder}: embeddings folder not found (it holds {USER_FILE}, {ITEM_FILE})"
        )
    names = tuple(context.scenario_names)
    users = read_vector_table(folder / USER_FILE, "user_id", names)
    items = read_vector_table(folder / ITEM_FILE, "item_id", names)
    if users.dim != items.dim:
        raise UserError(
            f"{folder}: column 'vector' has {users.dim} dimensions in {USER_FILE} but "
            f"{items.dim} in {ITEM_FILE}: users and items need one D"
        )
    recaller = EmbeddingRecaller(f"embeddings:{folder.resolve().name}", users, items, context)
    for s in range(len(names)):
        recaller.item_vectors(s)  # every pool covered, now rather than mid-experiment
    return recaller


def read_vector_table(path: Path, id_col: str, names: tuple[str, ...]) -> VectorTable:
    """One embeddings file, validated (see :func:`load_embeddings`)."""
    if not path.is_file():
        raise UserError(
            f"{path}: file not found (an embeddings folder holds {USER_FILE} and {ITEM_FILE})"
        )
    try:
        df = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a corrupt file
        raise UserError(f"cannot read {path} as parquet: {_describe(exc)}") from None
    missing = [c for c in (id_col, "scenario", "vector") if c not in df.columns]
    if missing:
        raise UserError(
            f"{path}: missing column {', '.join(map(repr, missing))} (an embeddings file has "
            f"{id_col}, scenario, vector)"
        )
    if df.height == 0:
        raise UserError(f"{path}: no rows")
    ids = df[id_col]
    if not ids.dtype.is_integer():
        raise UserError(f"{path}: column {id_col!r} must hold integer ids, got {ids.dtype}")
    _no_nulls(path, id_col, ids.is_null())
    try:
        id_arr = ids.cast(pl.Int64).to_numpy()
    except Exception:  # UInt64 beyond int64
        raise UserError(f"{path}: column {id_col!r} has ids beyond int64") from None
    codes = _scenario_codes(path, df["scenario"], names)
    vectors = _vector_matrix(path, df["vector"])
    dup = pl.DataFrame({"id": id_arr, "code": codes}).is_duplicated().to_numpy()
    if dup.any():
        shown = ", ".join(
            f"{i} ({id_col} {id_arr[i]}, scenario {_scenario(codes[i], names)})"
            for i in np.flatnonzero(dup)[:5]
        )
        raise UserError(
            f"{path}: duplicated ({id_col}, scenario) rows: one vector per id and scenario; "
            f"first bad rows: {shown}"
        )
    keys = {}
    for code in np.unique(codes).tolist():
        rows = np.flatnonzero(codes == code)
        order = np.argsort(id_arr[rows], kind="stable")
        keys[code] = (id_arr[rows][order], rows[order])
    return VectorTable(path, id_col, vectors, keys)


def _no_nulls(path: Path, column: str, null: pl.Series) -> None:
    if null.any():
        raise UserError(
            f"{path}: column {column!r} has nulls; first bad rows: {_first(null.to_numpy())}"
        )


def _scenario_codes(path: Path, col: pl.Series, names: tuple[str, ...]) -> np.ndarray:
    """Scenario codes of the rows, -1 for null (every scenario)."""
    if col.dtype == pl.Null:
        return np.full(col.len(), -1, dtype=np.int64)
    if col.dtype not in (pl.String, pl.Categorical) and not isinstance(col.dtype, pl.Enum):
        raise UserError(
            f"{path}: column 'scenario' must hold scenario names or nulls, got {col.dtype}"
        )
    col = col.cast(pl.String)
    null = col.is_null().to_numpy()
    codes = col.replace_strict(
        {n: i for i, n in enumerate(names)}, default=-2, return_dtype=pl.Int64
    ).to_numpy()
    codes = np.where(null, -1, codes)
    unknown = codes == -2
    if unknown.any():
        shown = ", ".join(f"{i} ({col[int(i)]!r})" for i in np.flatnonzero(unknown)[:5])
        raise UserError(
            f"{path}: column 'scenario' has scenarios not in the config (known: "
            f"{', '.join(names)}; null = all); first bad rows: {shown}"
        )
    return codes


def _vector_matrix(path: Path, col: pl.Series) -> np.ndarray:
    """The M x D float32 matrix of a list column, every row the same length and finite."""
    head = f"{path}: column 'vector'"
    dtype = col.dtype
    if isinstance(dtype, pl.Array):
        col, dtype = col.cast(pl.List(dtype.inner)), pl.List(dtype.inner)
    if not isinstance(dtype, pl.List) or not dtype.inner.is_numeric():
        raise UserError(f"{head} must hold lists of numbers, got {dtype}")
    _no_nulls(path, "vector", col.is_null())
    lengths = col.list.len().to_numpy()
    if lengths[0] == 0:
        raise UserError(f"{head} has empty vectors; first bad rows: {_first(lengths == 0)}")
    other = lengths != lengths[0]
    if other.any():
        shown = ", ".join(f"{i} ({lengths[i]})" for i in np.flatnonzero(other)[:5])
        raise UserError(
            f"{head} has vectors of different lengths: row 0 has {lengths[0]}, first rows "
            f"with another length: {shown}"
        )
    values = col.explode()
    null = values.is_null().to_numpy()
    if null.any():
        raise UserError(
            f"{head} has null values inside vectors; first bad rows: "
            f"{_listed(np.unique(np.flatnonzero(null) // lengths[0]))}"
        )
    dim = int(lengths[0])
    with np.errstate(over="ignore", invalid="ignore"):
        vectors = values.to_numpy().astype(np.float32).reshape(col.len(), dim)
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        raise UserError(
            f"{head} has NaN or infinite values (or too large for float32); first bad rows: "
            f"{_first(bad)}"
        )
    return vectors


def _first(mask: np.ndarray, k: int = 5) -> str:
    return _listed(np.flatnonzero(mask), k)


def _listed(values: np.ndarray, k: int = 5) -> str:
    shown = ", ".join(str(int(v)) for v in values[:k])
    return shown + (", ..." if values.size > k else "")


def _scenario(code: int, names: tuple[str, ...]) -> str:
    return "null" if code < 0 else repr(names[code])


# ------------------------------------------------------------------------------- export


def export_embeddings(
    recaller: Recaller,
    folder: str | Path,
    users: dict[str, np.ndarray],
    scenario_names: Sequence[str],
    *,
    check_history: bool = True,
) -> Path:
    """Write `recaller`'s vectors as the embeddings folder `folder` (each file atomically).

    Items: every scenario's pool (``recaller.item_vectors``). Users: the rows of user
    features `users` (e.g. :func:`user_rows`: every user in every scenario), one vector per
    (user_id, scenario); rows repeating a pair must agree. An id whose vectors are
    bit-identical in all scenarios is written once, with a null scenario. Vectors are
    float32, so loading the folder gives back the same bits.

    An embeddings folder holds one vector per user and scenario, so serving it equals
    serving `recaller` only when the user vectors ignore the click history (and depend on a
    row alone). With `check_history` the user vectors are recomputed with an empty and a
    keyed random history and must not change (else a UserError); without it, the vectors of
    the given rows' histories are stored (a snapshot, not the model).
    """
    names = tuple(scenario_names)
    n_scen = len(names)
    ids, codes, vecs = [], [], []
    for s in range(n_scen):
        pool, v = recaller.item_vectors(s)
        ids.append(np.asarray(pool, dtype=np.int64))
        codes.append(np.full(len(pool), s, dtype=np.int64))
        vecs.append(np.asarray(v, dtype=np.float32))
    items = _merge_rows(
        np.concatenate(ids),
        np.concatenate(codes),
        np.concatenate(vecs),
        n_scen,
        "item_id",
        names,
        recaller.name,
    )
    user_id = np.asarray(users["user_id"], dtype=np.int64)
    scen = np.asarray(users["scenario"], dtype=np.int64)
    uvecs = np.ascontiguousarray(recaller.user_vectors(users), dtype=np.float32)
    if uvecs.ndim != 2 or uvecs.shape[0] != user_id.size:
        raise UserError(
            f"model {recaller.name}: user_vectors returned shape {uvecs.shape} "
            f"for {user_id.size} rows"
        )
    if uvecs.shape[1] != items[2].shape[1]:
        raise UserError(
            f"model {recaller.name}: user vectors have {uvecs.shape[1]} "
            f"dimensions, item vectors {items[2].shape[1]}"
        )
    if check_history:
        _check_history_free(recaller, users, uvecs, names)
    user_table = _merge_rows(user_id, scen, uvecs, n_scen, "user_id", names, recaller.name)
    folder = Path(folder)
    item_frame = _frame("item_id", *items, names)
    user_frame = _frame("user_id", *user_table, names)
    write_parquet(folder / ITEM_FILE, item_frame)
    write_parquet(folder / USER_FILE, user_frame)
    return folder


def _check_history_free(
    recaller: Recaller, users: dict[str, np.ndarray], vecs: np.ndarray, names: tuple[str, ...]
) -> None:
    hist = np.asarray(users["hist_items"])
    n, h = hist.shape
    if h == 0 or n == 0:
        return
    every = np.unique(np.concatenate(recaller.items.pools))
    r, c = np.arange(n)[:, None], np.arange(h)[None, :]
    random_items = every[keyed.hash64(0, "history_probe", r, c) % np.uint64(every.size)]
    random_scen = keyed.hash64(0, "history_probe_scenario", r, c) % np.uint64(len(names))
    empty = np.full((n, h), -1, dtype=np.int64)
    for items, scen in ((empty, empty), (random_items, random_scen)):
        probe = {
            **users,
            "hist_items": items.astype(np.int64),
            "hist_scenarios": scen.astype(np.int64),
        }
        other = np.ascontiguousarray(recaller.user_vectors(probe), dtype=np.float32)
        changed = (other.view(np.uint32) != vecs.view(np.uint32)).any(axis=1)
        if changed.any():
            i = int(np.argmax(changed))
            raise UserError(
                f"model {recaller.name}: its user vectors change with the click history (user_id "
                f"{int(users['user_id'][i])} in scenario {names[int(users['scenario'][i])]!r}), "
                "so an embeddings folder (one vector per user and scenario) cannot reproduce it; "
                "export with check_history=False to store the given rows' vectors anyway"
            )


def _merge_rows(ids, codes, vecs, n_scen, id_col, names, model):
    """Rows sorted by (id, scenario), repeats dropped (they must agree bit for bit), and an
    id whose vectors are identical in all `n_scen` scenarios merged into one null row."""
    order = np.lexsort((codes, ids))
    ids, codes, vecs = ids[order], codes[order], np.ascontiguousarray(vecs[order])
    bits = vecs.view(np.uint32)
    same_key = (ids[1:] == ids[:-1]) & (codes[1:] == codes[:-1])
    clash = same_key & (bits[1:] != bits[:-1]).any(axis=1)
    if clash.any():
        i = int(np.argmax(clash))
        raise UserError(
            f"model {model}: two different vectors for {id_col} {ids[i]} in scenario "
            f"{names[codes[i]]!r} (rows with different histories?): one vector per id and scenario"
        )
    keep = np.r_[True, ~same_key]
    ids, codes, vecs, bits = ids[keep], codes[keep].copy(), vecs[keep], bits[keep]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    counts = np.diff(np.r_[starts, ids.size])
    first = np.repeat(starts, counts)
    equal = (bits == bits[first]).all(axis=1)
    merged = np.logical_and.reduceat(equal, starts) & (counts == n_scen)
    codes[starts[merged]] = -1
    drop = np.repeat(merged, counts) & (np.arange(ids.size) != first)
    return ids[~drop], codes[~drop], vecs[~drop]


def _frame(id_col: str, ids, codes, vecs, names: tuple[str, ...]) -> pl.DataFrame:
    scenario = pl.Series("scenario", codes).replace_strict(
        list(range(len(names))), list(names), default=None, return_dtype=pl.String
    )
    vector = pl.Series("vector", np.ascontiguousarray(vecs, dtype=np.float32))
    return pl.DataFrame(
        [pl.Series(id_col, ids, dtype=pl.Int64), scenario, vector.cast(pl.List(pl.Float32))]
    )


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(
        (np.ascontiguousarray(a).view(np.uint32) == np.ascontiguousarray(b).view(np.uint32)).all()
    )
