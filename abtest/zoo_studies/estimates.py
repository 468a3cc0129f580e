"""Mean ± standard error over seeds, and paired differences between two models' seeds.

Seeds are training seeds on one world, so two models trained with the same seed on the same
logs are paired: their difference's s.e. comes from the per-seed differences, which removes
what the seed does to both (the validation sample is the same for both).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class MeanSe:
    """A mean over seeds, its standard error (None with one seed) and the per-seed values."""

    mean: float
    se: float | None
    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> MeanSe:
        v = np.asarray(values, dtype=float)
        if v.size == 0 or np.isnan(v).any():
            return cls(float("nan"), None, tuple(map(float, v)))
        se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
        return cls(float(v.mean()), se, tuple(map(float, v)))

    @property
    def known(self) -> bool:
        return self.mean == self.mean

    def interval(self, level: float = 0.95) -> tuple[float, float] | None:
        """The Student-t interval over the seeds (n − 1 df; None without an s.e.). With a few
        seeds the s.e. is itself uncertain: with 3 seeds the 95% interval is ±4.3 s.e., and
        a ±2 s.e. rule would pass a zero difference 18% of the time."""
        if self.se is None:
            return None
        half = float(stats.t.ppf(0.5 + level / 2, len(self.values) - 1)) * self.se
        return self.mean - half, self.mean + half

    def clearly_above_zero(self, level: float = 0.95) -> bool:
        """The `level` t-interval lies above 0 (False without an s.e.)."""
        ci = self.interval(level)
        return ci is not None and ci[0] > 0

    def clearly_below_zero(self, level: float = 0.95) -> bool:
        ci = self.interval(level)
        return ci is not None and ci[1] < 0

    def to_dict(self) -> dict:
        return {"mean": self.mean, "se": self.se, "values": list(self.values)}


def paired_difference(a: MeanSe, b: MeanSe) -> MeanSe:
    """a − b seed by seed (both must come from the same seeds, in the same order)."""
    if len(a.values) != len(b.values):
        raise ValueError(f"paired seeds differ in number: {len(a.values)} vs {len(b.values)}")
    return MeanSe.of([x - y for x, y in zip(a.values, b.values, strict=True)])
