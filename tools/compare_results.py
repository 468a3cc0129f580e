"""Compare two result files (results.json, replay.json, aa.json) for equality of content.

The proof that a refactoring changed nothing: two runs of the same command, one before and
one after, must give identical results once what legitimately differs between two runs is
removed — the ``created`` timestamp, paths (the ``command`` line, ``--out`` folders,
checkpoint paths) and wall-clock timings. Everything else, every statistic to the last
digit written, must match.

    python tools/compare_results.py [--rtol R] A/results.json B/results.json

Prints the sha256 of both files and of their normalised contents; exits 1 on a difference
(listing the first differing keys).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

# keys whose values differ between two runs of the same seed by nature, not by result
VOLATILE = {
    "created",
    "command",
    "path",
    "total_seconds",
    "wall_seconds",
    "twin_wall_seconds",
    "requests_per_second",
    "p50_ms",
    "p99_ms",
}


def normalise(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: normalise(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [normalise(v) for v in obj]
    return obj


def differences(a: Any, b: Any, where: str = "$", rtol: float = 0.0) -> list[str]:
    """Where `a` and `b` differ (floats within `rtol` relative count as equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{where}.{k}: only in one file" for k in sorted(set(a) ^ set(b))]
        if list(a) != list(b) and not out:
            out.append(f"{where}: key order differs")
        for k in a.keys() & b.keys():
            out += differences(a[k], b[k], f"{where}.{k}", rtol)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{where}[{i}]", rtol)
        ]
    if isinstance(a, float) and isinstance(b, float) and rtol > 0:
        return [] if abs(a - b) <= rtol * max(abs(a), abs(b)) else [f"{where}: {a!r} != {b!r}"]
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def main(argv: list[str]) -> int:
    rtol = 0.0
    if len(argv) == 4 and argv[0] == "--rtol":
        rtol, argv = float(argv[1]), argv[2:]
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    docs = []
    for name in argv:
        raw = Path(name).read_bytes()
        doc = normalise(json.loads(raw))
        docs.append(doc)
        print(f"{name}: file sha256 {hashlib.sha256(raw).hexdigest()}, normalised {_digest(doc)}")
    exact = differences(*docs)
    diff = differences(*docs, rtol=rtol) if rtol else exact
    if exact and not diff:
        print(f"{len(exact)} floats differ, all within {rtol:g} relative")
    if diff:
        print(f"DIFFERENT ({len(diff)} places), first: " + "; ".join(diff[:10]))
        return 1
    print(
        "identical after removing timestamps, paths and timings"
        + (f" (floats to {rtol:g} relative)" if exact else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
