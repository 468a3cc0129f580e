"""User → bucket → arm: a stable, documented hash and layered bucket allocations.

Every user id is hashed with a layer's *salt* to a 64-bit value ``h`` and then to a bucket
in ``[0, N_BUCKETS)`` (``N_BUCKETS = 10_000``); a :class:`Layer` gives each arm a
contiguous range of buckets. Layers with different salts assign independently, so
experiments can overlap; a layer with the same salt reproduces the same assignment in
every run, process, machine and version. The hash is defined here and nowhere else:
it does not use Python's ``hash()`` (randomised per process), polars/pandas hashing
(not stable across versions) or the simulator's random streams, and it must never change
(doing so silently reassigns every user of every running experiment).

The hash, exactly (all arithmetic modulo 2**64; ``le64(b)`` reads 8 bytes as a
little-endian unsigned integer; strings are encoded as UTF-8)::

    G = 0x9E3779B97F4A7C15                       # 2**64 / golden ratio

    def mix(z):                                  # splitmix64 finaliser (Stafford Mix13)
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
        return z ^ (z >> 31)

    # integer ids (any numpy int dtype, Python ints in [-2**63, 2**64)): the id is taken
    # as its 64-bit two's-complement pattern, i.e. x = id % 2**64 (so int64 -1 and
    # uint64 2**64-1 are the same user)
    key = le64(blake2b(salt.encode(), digest_size=8).digest())
    h   = mix(key ^ ((x * G) % 2**64))

    # string ids
    h   = le64(blake2b((salt + "\\x1f" + id).encode(), digest_size=8).digest())

    bucket = (h * N_BUCKETS) >> 64               # exact integer multiply-shift

The integer id ``5`` and the string id ``"5"`` are different users (hash them the same
way throughout a system). For a fixed salt the integer hash is a bijection of the 64-bit
ids, so distinct integer ids never collide in ``h``. ``bucket = floor(h · 10000 / 2**64)``
uses the top bits of ``h``; each bucket receives either ⌊2**64/10000⌋ or ⌈2**64/10000⌉
of the 2**64 hash values, a relative bias below 6e-16 (negligible). The salt must not
contain the separator ``"\\x1f"`` (so ``(salt, id)`` pairs cannot be confused).

Allocation rounding: with shares ``s_1..s_k`` (in the mapping's order) and cumulative sums
``c_i = s_1 + … + s_i``, arm ``i`` owns ``[e_{i-1}, e_i)`` where ``e_0 = 0`` and
``e_i = floor(c_i · N_BUCKETS + 0.5)`` (cumulative round-half-up). The ranges therefore
tile ``[0, e_k)`` without gaps or overlaps, each arm is within one bucket of its exact
share, and buckets ``[e_k, N_BUCKETS)`` are the holdout.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from core.errors import UserError

__all__ = ["N_BUCKETS", "SEPARATOR", "Layer", "buckets", "hash64"]

N_BUCKETS = 10_000
SEPARATOR = "\x1f"

_MASK64 = (1 << 64) - 1
_G = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)

Ids = npt.ArrayLike | Iterable[Any]


def _check_salt(salt: object) -> str:
    if not isinstance(salt, str):
        raise UserError(f"salt must be a string, got {type(salt).__name__} {salt!r}")
    if SEPARATOR in salt:
        raise UserError(f"salt must not contain the separator '\\x1f', got {salt!r}")
    return salt


def _salt_key(salt: str) -> np.uint64:
    digest = hashlib.blake2b(salt.encode("utf-8"), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _ints_from_objects(values: np.ndarray) -> np.ndarray:
    out = np.empty(values.shape[0], dtype=np.uint64)
    for i, v in enumerate(values.tolist()):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise UserError(
                f"user ids must be all integers or all strings; element {i} is "
                f"{type(v).__name__} {v!r}"
            )
        v = int(v)
        if not -(1 << 63) <= v <= _MASK64:
            raise UserError(f"integer user id {v} at element {i} is outside [-2**63, 2**64)")
        out[i] = v & _MASK64
    return out


def _classify(ids: Ids) -> np.ndarray | list[str]:
    """Integer ids as a uint64 array (two's complement), or string ids as a list of str."""
    if isinstance(ids, str | bytes):
        raise UserError(f"user ids must be a sequence, got a single {type(ids).__name__}")
    if isinstance(ids, np.ndarray):
        arr = ids
    else:
        if not hasattr(ids, "__len__"):
            ids = list(ids)  # a generator or other one-shot iterable
        if isinstance(ids, list | tuple) and all(isinstance(v, str) for v in ids) and ids:
            return list(ids)  # the common case of string ids: skip the numpy round trip
        arr = np.asarray(ids)
        if arr.dtype.kind not in "iu" and arr.ndim == 1 and arr.size > 0:
            # np.asarray silently coerces mixed lists ([-1, 2**64 - 1] → float64,
            # [1, "a"] → str): look at the original elements instead
            obj = np.empty(arr.shape[0], dtype=object)
            obj[:] = list(ids)
            arr = obj
    if arr.ndim != 1:
        raise UserError(f"user ids must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        return np.empty(0, dtype=np.uint64)
    kind = arr.dtype.kind
    if kind in "iu":
        return arr.astype(np.uint64, copy=False)  # wraps negatives modulo 2**64
    if kind == "U":
        return [str(v) for v in arr.tolist()]
    if kind == "O":
        values = arr.tolist()
        if all(isinstance(v, str) for v in values):
            return values
        return _ints_from_objects(arr)
    raise UserError(
        f"user ids must be integers or strings, got an array of dtype {arr.dtype} "
        f"(first value {arr[0]!r})"
    )


def hash64(ids: Ids, salt: str) -> np.ndarray:
    """The documented 64-bit hash of each ``(salt, id)`` as a ``uint64`` array."""
    salt = _check_salt(salt)
    values = _classify(ids)
    if isinstance(values, np.ndarray):
        return _mix(_salt_key(salt) ^ (values * _G))
    # blake2b(salt + SEPARATOR + id): hash the common prefix once, copy its state per id
    prefix = hashlib.blake2b((salt + SEPARATOR).encode("utf-8"), digest_size=8)

    def digest(v: str) -> bytes:
        h = prefix.copy()
        h.update(v.encode("utf-8"))
        return h.digest()

    digests = b"".join(map(digest, values))
    return np.frombuffer(digests, dtype="<u8").astype(np.uint64)


def _to_buckets(h: np.ndarray) -> np.ndarray:
    """``(h * N_BUCKETS) >> 64`` exactly, without 128-bit integers."""
    n = np.uint64(N_BUCKETS)
    hi = (h >> np.uint64(32)) * n  # < 2**46
    lo = (h & _LOW32) * n  # < 2**46
    return ((hi + (lo >> np.uint64(32))) >> np.uint64(32)).astype(np.int64)


def buckets(ids: Ids, salt: str) -> np.ndarray:
    """Bucket in ``[0, N_BUCKETS)`` of each id under ``salt``, as an ``int64`` array."""
    return _to_buckets(hash64(ids, salt))


def _allocation_ranges(allocation: Mapping[str, float]) -> dict[str, tuple[int, int]]:
    if not isinstance(allocation, Mapping):
        raise UserError(
            f"allocation must be a mapping of arm name to share, got {type(allocation).__name__}"
        )
    if not allocation:
        raise UserError("allocation is empty: give at least one arm and its share")
    total = 0.0
    for arm, share in allocation.items():
        if not isinstance(arm, str) or not arm:
            raise UserError(f"allocation arm names must be non-empty strings, got {arm!r}")
        if isinstance(share, bool) or not isinstance(share, numbers.Real):
            raise UserError(f"allocation[{arm!r}] must be a number, got {share!r}")
        if not math.isfinite(share) or share <= 0:
            raise UserError(f"allocation[{arm!r}] must be a finite share > 0, got {share!r}")
        total += float(share)
    if total > 1 + 1e-9:
        raise UserError(f"allocation shares must sum to at most 1, got {total:.6g}")
    ranges: dict[str, tuple[int, int]] = {}
    cum = 0.0
    start = 0
    for arm, share in allocation.items():
        cum += float(share)
        end = min(math.floor(cum * N_BUCKETS + 0.5), N_BUCKETS)
        if end <= start:
            raise UserError(
                f"allocation[{arm!r}] = {share!r} rounds to 0 of {N_BUCKETS} buckets "
                f"(smallest share is {1 / N_BUCKETS:g})"
            )
        ranges[arm] = (start, end)
        start = end
    return ranges


@dataclass(frozen=True, eq=False)
class Layer:
    """One assignment layer: a salt and the arms' shares of its buckets.

    Arms own contiguous bucket ranges in the mapping's order; buckets past the last arm are
    the holdout (arm index -1, arm name ``None``). Two layers are equal when their salts and
    their allocations (in order) are equal.
    """

    salt: str
    allocation: Mapping[str, float]
    _ranges: dict[str, tuple[int, int]] = field(init=False, repr=False)
    _ends: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        _check_salt(self.salt)
        ranges = _allocation_ranges(self.allocation)
        object.__setattr__(self, "allocation", MappingProxyType(dict(self.allocation)))
        object.__setattr__(self, "_ranges", ranges)
        object.__setattr__(self, "_ends", np.array([e for _, e in ranges.values()], np.int64))

    def _key(self) -> tuple[str, tuple[tuple[str, float], ...]]:
        return self.salt, tuple(self.allocation.items())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Layer):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Layer(salt={self.salt!r}, allocation={dict(self.allocation)!r})"

    @property
    def arms(self) -> tuple[str, ...]:
        """Arm names in allocation order (``arm_index`` indexes this tuple)."""
        return tuple(self._ranges)

    @property
    def ranges(self) -> dict[str, tuple[int, int]]:
        """Half-open bucket range ``[start, end)`` of each arm."""
        return dict(self._ranges)

    @property
    def holdout(self) -> tuple[int, int]:
        """Half-open bucket range of the holdout (empty when the shares sum to 1)."""
        return int(self._ends[-1]), N_BUCKETS

    def buckets(self, ids: Ids) -> np.ndarray:
        """Bucket in ``[0, N_BUCKETS)`` of each id under this layer's salt (``int64``)."""
        return buckets(ids, self.salt)

    def arm_index(self, ids: Ids) -> np.ndarray:
        """Index into :attr:`arms` of each id's arm, -1 for the holdout (``int64``)."""
        idx = np.searchsorted(self._ends, self.buckets(ids), side="right").astype(np.int64)
        idx[idx == len(self._ends)] = -1
        return idx

    def arm_of(self, ids: Ids) -> list[str | None]:
        """Arm name of each id, ``None`` for the holdout."""
        names: tuple[str | None, ...] = (*self.arms, None)  # index -1 → None
        return [names[i] for i in self.arm_index(ids).tolist()]
