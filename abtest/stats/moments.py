"""Mergeable per-user moments: the aggregate every statistical test works on.

A :class:`Moments` holds a user count, column means and the matrix of centred co-moments,
never event rows, so per-shard or per-day aggregates merge exactly and the same numbers
come out however the data was split.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from abtest.stats.guards import NAN, require


@dataclass(frozen=True, eq=False)
class Moments:
    """n users; column means (k,) and the k x k matrix of co-moments (sums of centred products).

    Exactly mergeable (Chan et al. parallel update), so shards, days or segments can be
    aggregated separately and combined with :meth:`merge` (or ``+``).
    """

    n: int
    mean: np.ndarray
    comoment: np.ndarray

    def __post_init__(self) -> None:
        n = self.n
        require(
            isinstance(n, int | np.integer) and not isinstance(n, bool) and n >= 0,
            "n",
            "an integer >= 0",
            repr(n),
        )
        mean = np.array(self.mean, dtype=float)
        require(
            mean.ndim == 1 and mean.size >= 1,
            "mean",
            "a 1-D array with at least one column",
            f"shape {mean.shape}",
        )
        k = mean.size
        comoment = np.array(self.comoment, dtype=float)
        require(comoment.shape == (k, k), "comoment", f"a {k} x {k} matrix", comoment.shape)
        mean.flags.writeable = False
        comoment.flags.writeable = False
        object.__setattr__(self, "n", int(n))
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "comoment", comoment)

    @property
    def k(self) -> int:
        """Number of columns."""
        return self.mean.size

    @classmethod
    def empty(cls, k: int) -> Moments:
        """No users yet, k columns: the identity of :meth:`merge`."""
        require(isinstance(k, int | np.integer) and k >= 1, "k", "an integer >= 1", repr(k))
        return cls(0, np.zeros(k), np.zeros((k, k)))

    @classmethod
    def from_array(cls, x: np.ndarray) -> Moments:
        """Moments of an (n, k) array: one row per user, one column per quantity."""
        x = np.asarray(x, dtype=float)
        require(
            x.ndim == 2 and x.shape[1] >= 1, "x", "an (n, k) array with k >= 1", f"shape {x.shape}"
        )
        if x.shape[0] == 0:
            return cls.empty(x.shape[1])
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: inf, no warning
            mean = x.mean(axis=0)
            centred = x - mean
            # a plain reduction over users, not BLAS: BLAS rounding depends on the arrays'
            # memory alignment, and the same data must give the same report bit for bit
            comoment = (centred[:, :, None] * centred[:, None, :]).sum(axis=0)
            return cls(x.shape[0], mean, comoment)

    @classmethod
    def from_columns(cls, *cols: np.ndarray) -> Moments:
        """Moments of per-user columns of equal length, e.g. ``(clicks, impressions)``."""
        require(len(cols) >= 1, "columns", "at least one array", len(cols))
        arrays = [np.asarray(c, dtype=float) for c in cols]
        shapes = [a.shape for a in arrays]
        require(
            all(a.ndim == 1 for a in arrays) and len(set(shapes)) == 1,
            "columns",
            "1-D arrays of the same length",
            f"shapes {shapes}",
        )
        return cls.from_array(np.column_stack(arrays))

    def merge(self, other: Moments) -> Moments:
        """The moments of the union of both user sets (exact up to rounding)."""
        require(isinstance(other, Moments), "other", "a Moments", type(other).__name__)
        require(other.k == self.k, "moments", f"of {self.k} columns to merge", f"{other.k}")
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        with np.errstate(over="ignore", invalid="ignore"):  # huge values: inf, no warning
            delta = other.mean - self.mean
            mean = self.mean + delta * (other.n / n)
            outer = np.outer(delta, delta) * (self.n * other.n / n)
            comoment = self.comoment + other.comoment + outer
        return Moments(n, mean, comoment)

    __add__ = merge

    def take(self, columns: Sequence[int]) -> Moments:
        """The moments of a subset of the columns (in the given order)."""
        idx = list(columns)
        require(
            len(idx) >= 1 and all(-self.k <= i < self.k for i in idx),
            "columns",
            f"indices into {self.k} columns",
            idx,
        )
        return Moments(self.n, self.mean[idx], self.comoment[np.ix_(idx, idx)])

    def cov(self) -> np.ndarray:
        """Sample covariance matrix (ddof=1); all NaN when n < 2."""
        if self.n < 2:
            return np.full((self.k, self.k), NAN)
        return self.comoment / (self.n - 1)
