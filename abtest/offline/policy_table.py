"""A target policy given as a table of action probabilities (``replay --policy-table FILE``):
a policy logged elsewhere, or any stochastic slate policy, evaluated off-policy on other logs.

**The table.** A parquet or CSV file with columns ``scenario`` (text), ``item_id`` (integer,
in the log folder's item id space), ``position`` (integer, 0-based) and ``probability`` (in
[0, 1]), and optionally ``request_id``: pi(a | k, x) = the probability of item a at position
k. Rows without a request id (or a table without the column) give the policy at every request
of their scenario; rows with one give it at that request, and a (request, position) slot that
has such rows takes them instead of the scenario's rows (:func:`read_policy_table` checks it
all and names the file, column and first offending rows of the first rule broken).

**Slots that show nothing.** A slot's probabilities may sum to less than 1: they are read as
the distribution of the item the policy shows there *given that it shows one*, and are
renormalised per slot (pi / sum pi). So every estimator targets the same estimand as for a
model: the table policy's expected reward **per exposure** on the logged requests, each
logged slot where the table shows something weighing equally. A logged slot where it shows
nothing (no rows, or only zeros) is not one of its exposures and is left out of every
estimate (``left_out`` in the support block). (Counting the missing mass as "reward 0" instead
would make IPS and DR estimate something else than SNIPS and replay, whose denominators
normalise the mass away.)

**The estimators** (:class:`TableTarget`, the same fields and methods as a model's
:class:`~abtest.offline.targets.Target`): position-wise importance weights
w = pi(a_logged | k, x) / mu(a_logged | k, x) for IPS and SNIPS; DR's
q_target = sum_a pi(a | k, x) q_hat(a, k) with the cross-fitted reward model, summed over the
table's items of the slot only; replay on the uniform slice matches the logged item against a
keyed draw from pi (by request and position). The exact truth on synthetic logs is
sum_a pi(a | k, x) P(click | user, a, k) from the world (and the same for watch time).

**Support.** Per scenario and position the support block reports the share of the table's
(renormalised) mass on items the logs never showed at that position in the evaluated window
with a propensity or in the uniform slice: IPS counts that mass as reward 0 (biased low),
SNIPS and replay estimate the covered part only, DR fills it in from its reward model. A
table whose mass is covered in none of its scenarios is refused (:func:`check_covered`).

:func:`policy_table_from_logs` builds a table from logged behaviour: the empirical
per-(scenario, position) distribution of one policy's logged items (e.g. evaluate the Open
Bandit Dataset's ``bts`` on the ``random`` policy's logs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from abtest.offline.logged import Logged, Slots
from abtest.offline.results import PositionSupport, Support
from abtest.offline.reward import RewardModel
from abtest.offline.targets import Target
from abtest.offline.truth import PerMetric
from core import keyed
from core.errors import UserError
from simulator.logs import UNIFORM

REQUIRED = ("scenario", "item_id", "position", "probability")
OPTIONAL = ("request_id",)
SUM_TOLERANCE = 1e-9  # a slot's probabilities may sum to at most 1 + this
RENORMALISE_BELOW = 1 - 1e-9  # a slot whose mass is below this is renormalised
ROW_CHUNK = 200_000  # per-request rows per chunk of the exact truth


# ---------------------------------------------------------------------------- reading


def _rows(df: pl.DataFrame, mask, column: str, limit: int = 5) -> str:
    """The first offending rows (0-based row numbers of the table) and their values."""
    mask = mask if isinstance(mask, np.ndarray) else mask.fill_null(True).to_numpy()
    idx = np.flatnonzero(mask)
    shown = ", ".join(f"{i} ({df[column][int(i)]!r})" for i in idx[:limit])
    more = f" and {idx.size - limit} more" if idx.size > limit else ""
    return f"first offending rows: {shown}{more}"


def _integers(df: pl.DataFrame, col: str, source: str) -> pl.Series:
    """Column `col` as Int64: integer columns, integral floats, or text of integers."""
    s = df[col]
    kind = s.dtype
    if kind == pl.Null:
        return s.cast(pl.Int64)
    if kind.is_integer():
        out = s.cast(pl.Int64, strict=False)
    elif kind.is_float():
        bad = s.is_not_null() & ~(s.is_finite() & (s == s.round(0)))
        if bad.any():
            raise UserError(f"{source}: column {col!r} must hold integers; {_rows(df, bad, col)}")
        out = s.cast(pl.Int64, strict=False)
    elif kind == pl.String:
        out = s.str.strip_chars().cast(pl.Int64, strict=False)
    else:
        raise UserError(f"{source}: column {col!r} must hold integers, got {kind}")
    lost = out.is_null() & s.is_not_null()
    if lost.any():
        raise UserError(f"{source}: column {col!r} must hold integers; {_rows(df, lost, col)}")
    return out


def _floats(df: pl.DataFrame, col: str, source: str) -> pl.Series:
    s = df[col]
    kind = s.dtype
    if kind == pl.String:
        out = s.str.strip_chars().cast(pl.Float64, strict=False)
        lost = out.is_null() & s.is_not_null()
        if lost.any():
            raise UserError(f"{source}: column {col!r} must hold numbers; {_rows(df, lost, col)}")
        return out
    if kind.is_numeric() or kind == pl.Null:
        return s.cast(pl.Float64)
    raise UserError(f"{source}: column {col!r} must hold numbers, got {kind}")


def _text(df: pl.DataFrame, col: str, source: str) -> pl.Series:
    s = df[col]
    if s.dtype in (pl.String, pl.Categorical, pl.Null) or isinstance(s.dtype, pl.Enum):
        return s.cast(pl.String)
    raise UserError(f"{source}: column {col!r} must hold text, got {s.dtype}")


def _read_file(path: Path) -> pl.DataFrame:
    if not path.exists():
        raise UserError(f"policy table not found: {path}")
    if not path.is_file():
        raise UserError(f"policy table {path} is not a file")
    try:
        if path.suffix.lower() == ".csv":
            return pl.read_csv(path, infer_schema=False)  # every column as text: checked below
        return pl.read_parquet(path)
    except Exception as exc:  # polars raises many kinds for a damaged or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        kind = "CSV" if path.suffix.lower() == ".csv" else "parquet"
        raise UserError(f"{path}: cannot read the policy table as {kind} ({first})") from None


def validate_policy_table(
    df: pl.DataFrame,
    source: str,
    scenarios: set[str] | frozenset[str],
    n_items: int | None = None,
) -> pl.DataFrame:
    """Check a policy table; return it as scenario, request_id (nullable), position, item_id,
    probability with canonical dtypes. `scenarios`: the scenarios in the logs; `n_items`: the
    world's item count on synthetic logs (items are 0..n_items - 1)."""
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise UserError(
            f"{source}: missing column(s) {', '.join(map(repr, missing))} (a policy table has "
            f"{', '.join(REQUIRED)} and optionally request_id; found: "
            f"{', '.join(df.columns) or 'no columns'})"
        )
    if df.height == 0:
        raise UserError(f"{source}: the policy table has no rows")
    out = pl.DataFrame(
        {
            "scenario": _text(df, "scenario", source),
            "request_id": (
                _integers(df, "request_id", source)
                if "request_id" in df.columns
                else pl.Series("request_id", [None] * df.height, dtype=pl.Int64)
            ),
            "position": _integers(df, "position", source),
            "item_id": _integers(df, "item_id", source),
            "probability": _floats(df, "probability", source),
        }
    )
    for col in REQUIRED:
        nulls = out[col].is_null()
        if nulls.any():
            raise UserError(f"{source}: column {col!r} has null values; {_rows(out, nulls, col)}")
    p = out["probability"]
    checks: list[tuple[str, pl.Series, str]] = [
        ("probability", ~p.is_finite(), "must be finite (no NaN or inf)"),
        ("probability", (p < 0) | (p > 1), "must be in [0, 1]"),
        ("position", out["position"] < 0, "must be >= 0"),
        ("scenario", ~out["scenario"].is_in(sorted(scenarios)),
         f"names scenarios that are not in the logs ({', '.join(sorted(scenarios))})"),
    ]  # fmt: skip
    if n_items is not None:
        bad = (out["item_id"] < 0) | (out["item_id"] >= n_items)
        checks.append(("item_id", bad, f"names items that are not in the world (0..{n_items - 1})"))
    for col, bad, rule in checks:
        if bad.any():
            raise UserError(f"{source}: column {col!r} {rule}; {_rows(out, bad, col)}")
    key = ["scenario", "request_id", "position"]
    dup = out.select(pl.struct(*key, "item_id").is_duplicated()).to_series()
    if dup.any():
        what = (
            "scenario, request_id, position" if "request_id" in df.columns else "scenario, position"
        )
        raise UserError(
            f"{source}: column 'item_id': an item appears twice in one slot ({what}): "
            "duplicated rows; "
            f"{_rows(out, dup, 'item_id')}"
        )
    total = out.select(pl.col("probability").sum().over(key)).to_series()
    over = total > 1 + SUM_TOLERANCE
    if over.any():
        i = int(over.arg_true()[0])
        row = out.row(i, named=True)
        where = f"scenario {row['scenario']!r}" + (
            f", request_id {row['request_id']}" if row["request_id"] is not None else ""
        )
        raise UserError(
            f"{source}: column 'probability': the probabilities of one slot must sum to at most "
            f"1, those of {where}, position {row['position']} sum to {total[i]:.6g}; "
            f"{_rows(out, over, 'probability')}"
        )
    return out


def read_policy_table(
    path: str | Path, scenarios: set[str] | frozenset[str], n_items: int | None = None
) -> pl.DataFrame:
    """Read and check the policy table at `path` (parquet, or CSV by its ``.csv`` suffix)."""
    path = Path(path)
    return validate_policy_table(_read_file(path), str(path), scenarios, n_items)


# ---------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class _Rows:
    """One scenario's table rows on its evaluated slots, renormalised per slot."""

    slot: np.ndarray  # compact slot id of each row
    position: np.ndarray
    item: np.ndarray
    p: np.ndarray  # renormalised probability
    slot_req: np.ndarray  # per slot: its request (row of Slots.requests), -1 for a default slot
    n_slots: int


@dataclass(frozen=True)
class TableTarget(Target):
    """A table policy on one scenario's slots: a :class:`Target` whose pi, DR term and truth
    come from the table (``epsilon`` is NaN: not an eps-uniform model)."""

    slot_of: np.ndarray  # per exposure: its slot (-1: the table shows nothing there)
    rows: _Rows
    support: Support

    @property
    def shown(self) -> np.ndarray:
        return self.slot_of >= 0

    def own_choice(self, items: np.ndarray) -> np.ndarray:
        """Per exposure: the logged item is one the table can show at that slot."""
        return self.pi > 0

    def q_target(
        self, qm: RewardModel, fold: np.ndarray, pos: np.ndarray, items: np.ndarray, pool
    ) -> np.ndarray:
        """sum_a pi(a | k, x) q_hat(a, k) per exposure, over the slot's table items only."""
        rows = self.rows
        pairs = np.stack([rows.position, rows.item], axis=1)
        uniq, inv = np.unique(pairs, axis=0, return_inverse=True)
        inv = inv.ravel()
        out = np.zeros(self.slot_of.shape, dtype=np.float64)
        for f in (0, 1):
            q = qm.predict(np.full(uniq.shape[0], f), uniq[:, 0], uniq[:, 1])
            per_slot = np.bincount(rows.slot, weights=rows.p * q[inv], minlength=rows.n_slots)
            m = (fold == f) & self.shown
            out[m] = per_slot[self.slot_of[m]]
        return out

    def truth(self, world, slots: Slots) -> PerMetric:
        """sum_a pi(a | k, x) P(click | user, a, k) (and expected watch time) per exposure."""
        s = slots.scenario
        ex = slots.exposures
        rows = self.rows
        k = slots.k
        ctr = np.zeros(ex.height)
        watch = np.zeros(ex.height)
        # per-request slots: each row's value for its request's user
        r_users = slots.requests["user_id"].to_numpy().astype(np.int64)
        own = rows.slot_req[rows.slot] >= 0
        idx = np.flatnonzero(own)
        slot_ctr = np.zeros(rows.n_slots)
        slot_watch = np.zeros(rows.n_slots)
        for i in range(0, idx.size, ROW_CHUNK):
            j = idx[i : i + ROW_CHUNK]
            users = r_users[rows.slot_req[rows.slot[j]]]
            items = rows.item[j][:, None]
            aff = np.repeat(world.affinity(s, users, items), k, axis=1)  # n x K, one per position
            col = rows.position[j][:, None]
            p = np.take_along_axis(world.click_probability(s, aff), col, axis=1)[:, 0]
            w = world.expected_watch_time(s, np.broadcast_to(items, aff.shape), aff)
            w = np.take_along_axis(w, col, axis=1)[:, 0]
            slot_ctr += np.bincount(rows.slot[j], weights=rows.p[j] * p, minlength=rows.n_slots)
            slot_watch += np.bincount(rows.slot[j], weights=rows.p[j] * w, minlength=rows.n_slots)
        shown = self.shown
        by_request = shown & (rows.slot_req[np.maximum(self.slot_of, 0)] >= 0)
        ctr[by_request] = slot_ctr[self.slot_of[by_request]]
        watch[by_request] = slot_watch[self.slot_of[by_request]]
        # the scenario's slots: one distribution per position, valued for each exposure's user
        default = shown & ~by_request
        if default.any():
            d = ~own
            items, col = np.unique(rows.item[d], return_inverse=True)
            dist = np.zeros((k, items.size))
            dist[rows.position[d], col.ravel()] = rows.p[d]
            ex_users = ex["user_id"].to_numpy().astype(np.int64)
            users, inv = np.unique(ex_users[default], return_inverse=True)
            v_ctr = np.empty((users.size, k))
            v_watch = np.empty((users.size, k))
            step = max(1, 4_000_000 // max(items.size * k, 1))
            for i in range(0, users.size, step):
                aff = world.affinity_matrix(s, users[i : i + step], items)[:, :, None] * np.ones(k)
                grid = np.broadcast_to(items[None, :, None], aff.shape)
                v_ctr[i : i + step] = np.einsum("uak,ka->uk", world.click_probability(s, aff), dist)
                v_watch[i : i + step] = np.einsum(
                    "uak,ka->uk", world.expected_watch_time(s, grid, aff), dist
                )
            pos = ex["position"].to_numpy()[default]
            ctr[default] = v_ctr[inv.ravel(), pos]
            watch[default] = v_watch[inv.ravel(), pos]
        return {"ctr": ctr, "watch_time": watch}


def _find(keys: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The index of each `x` in the sorted unique `keys` (-1 where absent)."""
    if keys.size == 0:
        return np.full(x.shape, -1, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, x), keys.size - 1)
    return np.where(keys[at] == x, at, -1)


@dataclass(frozen=True)
class TablePolicy:
    """A target policy given as a checked table of action probabilities."""

    name: str  # "table:<file stem>"
    source: str  # the file, for messages
    rows: pl.DataFrame  # scenario, request_id (nullable), position, item_id, probability
    pools: tuple[np.ndarray, ...]  # per scenario of the logs: its logged items (Slots.pool)

    @classmethod
    def of(
        cls,
        table: str | Path | pl.DataFrame,
        logged: Logged,
        n_items: int | None = None,
        name: str | None = None,
    ) -> TablePolicy:
        """The policy in the file (or frame) `table`, checked against `logged`'s logs."""
        present = frozenset(logged.logs["scenario"].unique().to_list())
        if isinstance(table, pl.DataFrame):
            source = name or "policy table"
            rows = validate_policy_table(table, source, present, n_items)
        else:
            source = str(table)
            rows = read_policy_table(table, present, n_items)
        pools = tuple(
            np.sort(logged.logs.filter(pl.col("scenario") == s)["item_id"].unique().to_numpy())
            for s in logged.scenarios
        )
        if name is None:
            name = "table" if isinstance(table, pl.DataFrame) else f"table:{Path(table).stem}"
        return cls(name, source, rows, pools)

    @property
    def scenarios(self) -> frozenset[str]:
        return frozenset(self.rows["scenario"].unique().to_list())

    def describe(self) -> str:
        per_request = self.rows["request_id"].is_not_null().any()
        return (
            f"{self.name} ({self.source}): item probabilities per position"
            + (" (per request where given)" if per_request else "")
            + ", renormalised per slot; slots without probabilities left out"
        )

    def _scenario_rows(self, slots: Slots, name: str) -> tuple[_Rows, np.ndarray, np.ndarray]:
        """The scenario's rows on the evaluated slots, each exposure's slot (-1: the table
        shows nothing there) and each slot's raw mass (sum of its probabilities)."""
        k, n_req = slots.k, slots.requests.height
        t = self.rows.filter((pl.col("scenario") == name) & (pl.col("position") < k))
        req = slots.requests.select("request_id", pl.int_range(pl.len()).alias("req"))
        t = t.join(req, on="request_id", how="left")  # request rows: their request; else null
        t = t.filter(pl.col("request_id").is_null() | pl.col("req").is_not_null())
        t = t.with_columns(
            raw=pl.when(pl.col("req").is_null())
            .then(n_req * k + pl.col("position"))
            .otherwise(pl.col("req") * k + pl.col("position"))
        )
        raw = t["raw"].to_numpy()
        keys, slot = np.unique(raw, return_inverse=True)
        slot = slot.ravel()
        p = t["probability"].to_numpy()
        mass = np.bincount(slot, weights=p, minlength=keys.size)
        scale = np.where(mass < RENORMALISE_BELOW, 1 / np.where(mass > 0, mass, 1), 1.0)
        p = np.where(mass[slot] < RENORMALISE_BELOW, p * scale[slot], p)
        slot_req = np.where(keys < n_req * k, keys // k, -1)
        rows = _Rows(
            slot,
            t["position"].to_numpy(),
            t["item_id"].to_numpy(),
            p,
            slot_req,
            keys.size,
        )
        # each exposure's slot: its request's own, else the scenario's at that position
        ex = slots.exposures
        e_req, e_pos = ex["req"].to_numpy(), ex["position"].to_numpy()
        own, dflt = _find(keys, e_req * k + e_pos), _find(keys, n_req * k + e_pos)
        slot_of = np.where(own >= 0, own, dflt)
        empty = mass <= 0  # a slot whose rows are all 0 shows nothing
        slot_of = np.where((slot_of >= 0) & ~np.r_[empty, True][slot_of], slot_of, -1)
        return rows, slot_of, mass

    def target_on(self, slots: Slots, seed: int, uniform: np.ndarray, name: str) -> TableTarget:
        """The table's policy on scenario `name`'s `slots`; `uniform` flags the uniform slice."""
        rows, slot_of, mass = self._scenario_rows(slots, name)
        ex = slots.exposures
        shown = slot_of >= 0
        if not shown.any():
            have = sorted(set(self.rows.filter(pl.col("scenario") == name)["position"].to_list()))
            raise UserError(
                f"{self.source}: scenario {name}: the table shows no item at any logged slot "
                f"(its positions: {', '.join(map(str, have[:10]))}; logged positions "
                f"0..{slots.k - 1})"
            )
        # per row: the probability of the items before it in its slot (by item id), the
        # slot's most probable item (ties: the smaller id)
        before = (
            pl.DataFrame({"slot": rows.slot, "item": rows.item, "p": rows.p})
            .with_row_index("row")
            .sort("slot", "item")
            .with_columns(before=pl.col("p").cum_sum().over("slot") - pl.col("p"))
            .sort("row")["before"]
            .to_numpy()
        )
        best = np.lexsort((rows.item, -rows.p, rows.slot))
        first = np.r_[True, rows.slot[best][1:] != rows.slot[best][:-1]]
        top_item = np.full(rows.n_slots, -1, dtype=np.int64)
        top_item[rows.slot[best][first]] = rows.item[best][first]
        # the logged item's row in its slot
        table = pl.DataFrame(
            {"slot": rows.slot, "item_id": rows.item, "pi": rows.p, "before": before}
        )
        look = pl.DataFrame({"slot": slot_of, "item_id": ex["item_id"].to_numpy()})
        look = look.join(table, on=["slot", "item_id"], how="left", maintain_order="left")
        pi = look["pi"].fill_null(0.0).to_numpy()
        cb = look["before"].fill_null(0.0).to_numpy()
        pos = ex["position"].to_numpy()
        u = keyed.uniform(seed, "ope_table_draw", ex["request_id"].to_numpy(), pos)
        matched = uniform & shown & (pi > 0) & (cb <= u) & (u < cb + pi)
        top_at = np.where(shown, top_item[np.maximum(slot_of, 0)], -1)
        top = np.full((slots.requests.height, slots.k), -1, dtype=np.int64)
        top[ex["req"].to_numpy(), pos] = top_at
        support = self._support(slots, rows, slot_of, mass)
        return TableTarget(top, top_at, pi, matched, float("nan"), slot_of, rows, support)

    @staticmethod
    def _support(slots: Slots, rows: _Rows, slot_of: np.ndarray, mass: np.ndarray) -> Support:
        """Per position: the table's raw mass and its share on items never logged there."""
        ex = slots.exposures
        usable = ex["propensity"].is_not_null() | (ex["policy"] == UNIFORM)
        seen = ex.filter(usable).select("position", "item_id").unique()
        r = pl.DataFrame({"position": rows.position, "item_id": rows.item})
        covered = r.join(
            seen.with_columns(c=pl.lit(True)), on=["position", "item_id"], how="left",
            maintain_order="left",
        )["c"].fill_null(False).to_numpy()  # fmt: skip
        unc_slot = np.bincount(rows.slot, weights=rows.p * ~covered, minlength=rows.n_slots)
        shown = slot_of >= 0
        at = slot_of[shown]
        pos = ex["position"].to_numpy()[shown]
        unc, raw = unc_slot[at], mass[at]
        positions = []
        for p in np.unique(pos).tolist():
            m = pos == p
            positions.append(
                PositionSupport(int(p), int(m.sum()), float(raw[m].mean()), float(unc[m].mean()))
            )
        return Support(
            int(shown.sum()),
            int((~shown).sum()),
            float(raw.mean()),
            float(unc.mean()),
            tuple(positions),
        )


def check_covered(policy: TablePolicy, supports: dict[str, Support]) -> None:
    """Refuse a table none of whose mass, in any evaluated scenario, is on items the logs
    showed at those positions: there is nothing to estimate it from."""
    if supports and all(s.uncovered >= 1 - 1e-12 for s in supports.values()):
        raise UserError(
            f"{policy.source}: none of the table's mass is on items the logs showed at those "
            f"positions (with a propensity or in the uniform slice) in the evaluated window of "
            f"{', '.join(supports)}: there is nothing to estimate it from"
        )


# ---------------------------------------------------------------------------- from logs


def policy_table_from_logs(logs: pl.DataFrame | Logged, policy_name: str) -> pl.DataFrame:
    """The empirical per-(scenario, position) distribution of `policy_name`'s logged items:
    a policy table (scenario, item_id, position, probability) of that policy's behaviour.

    ``random`` also names the uniform slice (``uniform``), as the converters name it."""
    frame = logs.logs if isinstance(logs, Logged) else logs
    names = sorted(frame["policy"].unique().to_list())
    name = policy_name
    if name not in names and name == "random" and UNIFORM in names:
        name = UNIFORM
    if name not in names:
        raise UserError(
            f"no logged rows of policy {policy_name!r}; the logs' policies: {', '.join(names)}"
        )
    counts = (
        frame.filter(pl.col("policy") == name).group_by("scenario", "position", "item_id").len()
    )
    return (
        counts.with_columns(
            probability=pl.col("len") / pl.col("len").sum().over("scenario", "position")
        )
        .select("scenario", "item_id", "position", "probability")
        .sort("scenario", "position", "item_id")
    )
