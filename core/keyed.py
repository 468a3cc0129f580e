"""Counter-based randomness keyed by identity, not by draw order.

Every random draw in the simulator is a pure function of integers naming what it is for:
``uniform(seed, "click", request_id, position)``. The integers are mixed with the
splitmix64 finaliser (Steele et al. 2014; the same mixer as `numpy`'s SeedSequence
helpers and Java's SplittableRandom), vectorised over numpy arrays with broadcasting.
So the same seed gives the same events whatever the batch size, the shard layout or the
number of workers, and two arms of an experiment see common random numbers for the same
user and slot.
"""

from __future__ import annotations

import functools
import hashlib

import numpy as np
from scipy import special

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_M53 = 2.0**-53


def component_key(name: str) -> int:
    """A stable 64-bit integer for a component name (blake2b, independent of PYTHONHASHSEED)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


def _mix(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


@functools.lru_cache(maxsize=1024)
def _prefix(seed: int, component: str) -> np.uint64:
    with np.errstate(over="ignore"):
        h = _mix(np.asarray(np.uint64(seed % 2**64) + _GOLDEN, dtype=np.uint64))
        return _mix(h ^ np.uint64(component_key(component)))[()]


def hash64(seed: int, component: str, *keys) -> np.ndarray:
    """uint64 hash of (seed, component, *keys); keys are ints or int arrays (broadcast)."""
    h = _prefix(seed, component)
    with np.errstate(over="ignore"):
        for k in keys:
            arr = np.asarray(k)
            if arr.dtype.kind not in "iub":
                raise TypeError(f"keys must be integers, got dtype {arr.dtype}")
            h = _mix((h + _GOLDEN) ^ arr.astype(np.int64).view(np.uint64))
    return h


def uniform(seed: int, component: str, *keys) -> np.ndarray:
    """Uniform(0, 1) draws, open at both ends, one per broadcast key."""
    h = hash64(seed, component, *keys)
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * _TWO_POW_M53


def normal(seed: int, component: str, *keys) -> np.ndarray:
    """Standard normal draws by inversion of keyed uniforms."""
    return special.ndtri(uniform(seed, component, *keys))


def exponential(seed: int, component: str, *keys) -> np.ndarray:
    """Exponential(1) draws by inversion."""
    return -np.log(uniform(seed, component, *keys))


def gumbel(seed: int, component: str, *keys) -> np.ndarray:
    """Standard Gumbel draws by inversion (for Gumbel-top-k sampling)."""
    return -np.log(-np.log(uniform(seed, component, *keys)))


def beta(seed: int, component: str, a, b, *keys) -> np.ndarray:
    """Beta(a, b) draws by inversion of the regularised incomplete beta function."""
    return special.betaincinv(a, b, uniform(seed, component, *keys))
