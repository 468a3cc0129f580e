"""One benchmark section's figures and targets, their table, and runs in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field

from benchmarks.worlds import ROOT

RUN_ALL = ROOT / "benchmarks" / "run_all.py"


@dataclass
class Section:
    """One benchmark's figures and the targets checked on them."""

    name: str
    figures: dict = field(default_factory=dict)
    targets: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def target(self, metric: str, value: float, op: str, bound: float | None, note: str = ""):
        ok = None
        if bound is not None:
            ok = bool(value >= bound) if op == ">=" else bool(value <= bound)
        self.targets.append(
            {"metric": metric, "value": value, "target": f"{op} {bound:g}" if bound else "report"}
            | {"ok": ok, "note": note}
        )

    def to_dict(self) -> dict:
        return {"seconds": round(self.seconds, 2), "figures": self.figures, "targets": self.targets}


def print_table(sections: list[Section]) -> None:
    rows = [("section", "metric", "value", "target", "ok")]
    for s in sections:
        for t in s.targets:
            ok = "" if t["ok"] is None else ("yes" if t["ok"] else "NO")
            rows.append((s.name, t["metric"], f"{t['value']:g}", t["target"], ok))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def run_child(args: list[str], quick: bool, env: dict | None = None) -> dict:
    """``run_all.py`` run again in a child process with `args`; its last stdout line (JSON)."""
    cmd = [sys.executable, str(RUN_ALL), *args, *(["--quick"] if quick else [])]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])
