"""Multiple-testing corrections across a family of p-values: Benjamini-Hochberg and Holm."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from abtest.stats.guards import NAN, require


def adjust_p_values(
    p: Sequence[float] | np.ndarray, method: Literal["bh", "holm"] = "bh"
) -> np.ndarray:
    """Adjusted p-values (Benjamini-Hochberg FDR or Holm FWER) in the input order.

    NaN entries (tests that could not be computed) stay NaN and are not counted in the
    family size.
    """
    require(method in ("bh", "holm"), "method", "'bh' or 'holm'", repr(method))
    p = np.array(p, dtype=float)
    require(p.ndim == 1, "p", "a 1-D sequence", f"shape {p.shape}")
    ok = ~np.isnan(p)
    bad = p[ok][(p[ok] < 0) | (p[ok] > 1)]
    require(bad.size == 0, "p", "p-values in [0, 1] or NaN", bad[:3].tolist())
    out = np.full(p.shape, NAN)
    q = p[ok]
    m = q.size
    if m == 0:
        return out
    order = np.argsort(q, kind="stable")
    ranked = q[order]
    i = np.arange(1, m + 1)
    if method == "bh":
        adjusted = np.minimum.accumulate((ranked * m / i)[::-1])[::-1]
    else:
        adjusted = np.maximum.accumulate(ranked * (m - i + 1))
    result = np.empty(m)
    result[order] = np.clip(adjusted, 0.0, 1.0)
    out[ok] = result
    return out
