"""The parameters of a world fitted from a log folder (issue 17): one fixed family.

:class:`FittedParams` is plain data (numpy arrays, strings, floats; no objects), written by
:mod:`simulator.response_fit` and served by :class:`simulator.fitted_world.FittedWorld`.

Shapes: U users, I items, S scenarios, d factors, K = max slate size, C content types,
F profile features. The family:

    affinity(s, u, i) = (scenario_transform[s] @ user_factors[u]) . item_factors[i]
                        + item_bias[i]
    P(click | s, u, i, k) = sigmoid(affinity + scenario_base[s]) * position_bias[s, k]

completion (watched share) ~ Beta with mean sigmoid(completion[c, 0] + completion[c, 1] *
affinity) and concentration completion[c, 2] for the item's content type c; immersive
exposures autoplay for min(duration, skip_seconds * Exp(1)); a user continues after a page
with P = sigmoid(leave[s, 0] + leave[s, 1] * CTR + leave[s, 2] * mean watched fraction), at
most ``max_pages`` pages, the next one ``watch + 2 + think_seconds[s] * Exp(1)`` seconds later.
The synthetic world is inside this family up to its unit-vector normalisation (its affinity
is scale * cos(pref_us, view_is) + quality_i). Ids are the log folder's dense user_id /
item_id codes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

KINDS = ("feed", "immersive")

# Fields that are tuples of strings (they go into JSON, not into the npz).
STRING_FIELDS = ("scenario_names", "scenario_kinds", "content_type_names", "profile_names")
# Scalar fields (JSON too).
SCALAR_FIELDS = ("skip_seconds", "max_pages", "sessions_per_user_day")


@dataclass(frozen=True)
class FittedParams:
    """A fitted world's parameters (see the module docstring for the family)."""

    scenario_names: tuple[str, ...]  # S, in the log folder's order
    scenario_kinds: tuple[str, ...]  # S, "feed" or "immersive"
    slate_sizes: np.ndarray  # S int64
    traffic_share: np.ndarray  # S float64, > 0, sums to 1 (share of sessions)
    pools: tuple[np.ndarray, ...]  # S sorted int64 item ids (items logged in s)
    user_factors: np.ndarray  # U x d float64
    scenario_transform: np.ndarray  # S x d x d: x_us = scenario_transform[s] @ u_u
    item_factors: np.ndarray  # I x d
    item_bias: np.ndarray  # I
    scenario_base: np.ndarray  # S  (base logit)
    position_bias: np.ndarray  # S x K, theta[s, 0] = 1, NaN beyond slate size
    content_type: np.ndarray  # I int64 code into content_type_names
    content_type_names: tuple[str, ...]  # C
    duration: np.ndarray  # I float64 seconds
    completion: np.ndarray  # C x 3: intercept, slope (on affinity), concentration
    skip_seconds: float  # immersive autoplay skip mean (seconds)
    leave: np.ndarray  # S x 3: intercept, click_weight, watch_weight
    max_pages: int
    think_seconds: np.ndarray  # S: mean browse seconds between pages (beyond watching and 2 s)
    activity: np.ndarray  # U float64, mean 1 (relative sessions per day)
    sessions_per_user_day: float
    profile: np.ndarray  # U x F int64 (from users.parquet, 0..card-1)
    profile_names: tuple[str, ...]
    category: np.ndarray  # I int64

    # ------------------------------------------------------------------ sizes

    @property
    def n_users(self) -> int:
        return int(self.user_factors.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_factors.shape[0])

    @property
    def n_scenarios(self) -> int:
        return len(self.scenario_names)

    @property
    def dim(self) -> int:
        return int(self.user_factors.shape[1])

    def shapes(self) -> dict[str, list[int]]:
        """{array field: shape} of every array (pools as pool_<s>), for the artefact's JSON."""
        out: dict[str, list[int]] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "pools":
                for s, pool in enumerate(v):
                    out[f"pool_{s}"] = list(np.shape(pool))
            elif isinstance(v, np.ndarray):
                out[f.name] = list(v.shape)
        return out

    # ------------------------------------------------------------------ validation

    def check(self) -> FittedParams:
        """Validate shapes, dtypes, finiteness and ranges; raise ValueError naming the field.

        Returns self so that ``params.check()`` chains.
        """
        u, i, s = self.n_users, self.n_items, self.n_scenarios

        def fail(name: str, why: str) -> None:
            raise ValueError(f"FittedParams.{name}: {why}")

        def arr(name: str, shape: tuple[int | None, ...], kind: str) -> np.ndarray:
            v = getattr(self, name)
            if not isinstance(v, np.ndarray):
                fail(name, f"expected a numpy array, got {type(v).__name__}")
            if v.ndim != len(shape) or any(
                want is not None and got != want for got, want in zip(v.shape, shape, strict=False)
            ):
                want = "x".join("?" if w is None else str(w) for w in shape)
                fail(name, f"shape {v.shape}, expected {want}")
            if kind == "int" and not np.issubdtype(v.dtype, np.integer):
                fail(name, f"dtype {v.dtype}, expected integers")
            if kind == "float" and not np.issubdtype(v.dtype, np.floating):
                fail(name, f"dtype {v.dtype}, expected floats")
            return v

        def finite(name: str, v: np.ndarray) -> None:
            if not np.all(np.isfinite(v)):
                fail(name, "has NaN or infinite values")

        for name in STRING_FIELDS:
            v = getattr(self, name)
            if not isinstance(v, tuple) or not all(isinstance(x, str) for x in v):
                fail(name, "expected a tuple of strings")
        if s == 0:
            fail("scenario_names", "no scenarios")
        if len(set(self.scenario_names)) != s:
            fail("scenario_names", "duplicate names")
        if any(not n.strip() for n in self.scenario_names):
            fail("scenario_names", "empty name")
        if len(self.scenario_kinds) != s:
            fail("scenario_kinds", f"{len(self.scenario_kinds)} kinds for {s} scenarios")
        bad = [k for k in self.scenario_kinds if k not in KINDS]
        if bad:
            fail("scenario_kinds", f"unknown kind {bad[0]!r} (expected feed or immersive)")
        if len(set(self.profile_names)) != len(self.profile_names):
            fail("profile_names", "duplicate names")
        if any(not n.strip() for n in self.profile_names):
            fail("profile_names", "empty name")
        c = len(self.content_type_names)
        if c == 0:
            fail("content_type_names", "no content types")
        if len(set(self.content_type_names)) != c or any(
            not n.strip() for n in self.content_type_names
        ):
            fail("content_type_names", "names must be distinct and non-empty")

        if u == 0 or i == 0:
            fail("user_factors" if u == 0 else "item_factors", "empty")
        uf = arr("user_factors", (u, None), "float")
        finite("user_factors", uf)
        d = uf.shape[1]
        finite("item_factors", arr("item_factors", (i, d), "float"))
        finite("scenario_transform", arr("scenario_transform", (s, d, d), "float"))
        finite("item_bias", arr("item_bias", (i,), "float"))
        finite("scenario_base", arr("scenario_base", (s,), "float"))

        sizes = arr("slate_sizes", (s,), "int")
        if np.any(sizes < 1):
            fail("slate_sizes", "slate sizes must be >= 1")
        share = arr("traffic_share", (s,), "float")
        finite("traffic_share", share)
        if np.any(share <= 0) or abs(share.sum() - 1.0) > 1e-6:
            fail("traffic_share", f"shares must be > 0 and sum to 1 (sum {share.sum():.6g})")

        if not isinstance(self.pools, tuple) or len(self.pools) != s:
            fail("pools", f"expected a tuple of {s} arrays")
        for k, pool in enumerate(self.pools):
            name = f"pools[{k}]"
            if not isinstance(pool, np.ndarray) or pool.ndim != 1:
                fail(name, "expected a 1-d numpy array")
            if not np.issubdtype(pool.dtype, np.integer):
                fail(name, f"dtype {pool.dtype}, expected integers")
            if pool.size < int(sizes[k]):
                fail(name, f"{pool.size} items, fewer than the slate size {int(sizes[k])}")
            if np.any(pool < 0) or np.any(pool >= i):
                fail(name, f"item ids outside 0..{i - 1}")
            if np.any(np.diff(pool) <= 0):
                fail(name, "must be sorted without duplicates")

        kmax = int(sizes.max())
        theta = arr("position_bias", (s, None), "float")
        if theta.shape[1] < kmax:
            fail("position_bias", f"{theta.shape[1]} columns, fewer than the largest slate {kmax}")
        for k in range(s):
            row = theta[k, : int(sizes[k])]
            if not np.all(np.isfinite(row)) or np.any(row < 0) or np.any(row > 1):
                fail("position_bias", f"row {k} must be finite and within [0, 1] in its slate")
            if row[0] != 1.0:
                fail("position_bias", f"row {k} must start with 1 (got {row[0]!r})")

        ct = arr("content_type", (i,), "int")
        if np.any(ct < 0) or np.any(ct >= c):
            fail("content_type", f"codes outside 0..{c - 1}")
        dur = arr("duration", (i,), "float")
        if not np.all(np.isfinite(dur)) or np.any(dur <= 0):
            fail("duration", "durations must be finite and > 0")
        comp = arr("completion", (c, 3), "float")
        finite("completion", comp)
        if np.any(comp[:, 2] <= 0):
            fail("completion", "concentration (column 2) must be > 0")
        if not np.isfinite(self.skip_seconds) or self.skip_seconds <= 0:
            fail("skip_seconds", f"must be finite and > 0 (got {self.skip_seconds!r})")
        finite("leave", arr("leave", (s, 3), "float"))
        if isinstance(self.max_pages, bool) or not isinstance(self.max_pages, int | np.integer):
            fail("max_pages", "expected an integer")
        if self.max_pages < 1:
            fail("max_pages", f"must be >= 1 (got {self.max_pages})")
        think = arr("think_seconds", (s,), "float")
        if not np.all(np.isfinite(think)) or np.any(think < 0):
            fail("think_seconds", "must be finite and >= 0")
        act = arr("activity", (u,), "float")
        if not np.all(np.isfinite(act)) or np.any(act < 0) or act.sum() <= 0:
            fail("activity", "must be finite, >= 0 and not all 0")
        spud = self.sessions_per_user_day
        if not np.isfinite(spud) or spud <= 0:
            fail("sessions_per_user_day", f"must be finite and > 0 (got {spud!r})")
        prof = arr("profile", (u, len(self.profile_names)), "int")
        if np.any(prof < 0):
            fail("profile", "codes must be >= 0")
        cat = arr("category", (i,), "int")
        if np.any(cat < 0):
            fail("category", "codes must be >= 0")
        return self
