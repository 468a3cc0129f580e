"""Fitting a world from logs (``python -m abtest calibrate``) at 1x and 4x the log size.

    .venv/bin/python benchmarks/bench_calibrate.py [--quick] [--scales 1,4] [--out PATH]

The same users, items and days with `scale` times the sessions per user-day (so `scale` times
the logged exposures): the logs are generated once per scale (cached under ``.cache/logs``),
then each fit runs in its own child process, measured with ``wait4`` (wall seconds, peak
RSS). Reported: seconds and peak RSS per scale, the exposures fitted, and the ratios of the
largest scale to 1x: time per exposure (the fit is minibatch SGD over the exposures, so the
target is linear scaling, <= 1.25) and peak RSS against exposure growth.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_import import timed_child  # noqa: E402
from benchmarks.section import Section, print_table  # noqa: E402
from benchmarks.worlds import make_config  # noqa: E402

PER_EXPOSURE_TARGET = 1.25  # time per fitted exposure at the largest scale / at 1x


def _logs(quick: bool, scale: float) -> tuple[Path, int]:
    """The pre-period logs at `scale` times the traffic, and their exposures."""
    import polars as pl

    from abtest.pipeline import ensure_logs

    folder = ensure_logs(make_config(quick, traffic_scale=scale), progress=False)
    rows = pl.scan_parquet(folder / "logs.parquet").select(pl.len()).collect().item()
    return folder, int(rows)


def bench_calibrate(quick: bool, scales: tuple[float, ...] = (1.0, 4.0), epochs: int = 30):
    """Fit a world at each log scale in a child process; see the module doc."""
    sec = Section("calibrate")
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-calibrate-") as tmp:
        for scale in scales:
            t0 = time.perf_counter()
            folder, rows = _logs(quick, scale)
            gen_s = time.perf_counter() - t0
            out = Path(tmp) / f"world-{scale:g}x"
            args = [sys.executable, "-m", "abtest", "calibrate", "--logs", str(folder)]
            args += ["--out", str(out), "--epochs", str(epochs), "--quiet"]
            fit = timed_child(args)
            body = json.loads((out / "world.json").read_text())
            diag = json.loads((out / "diagnostics.json").read_text())
            runs[f"{scale:g}x"] = {
                "logged_exposures": rows,
                "train_rows": diag["click"]["training"]["train_rows"],
                "logs_seconds": round(gen_s, 1),
                "fit_seconds": fit["seconds"],
                "peak_rss_mb": fit["peak_rss_mb"],
                "users": body["shapes"]["user_factors"][0],
            }
            print(f"{scale:g}x: {rows:,} exposures, {fit['seconds']} s, "
                  f"{fit['peak_rss_mb']} MB", file=sys.stderr)  # fmt: skip
    base, top = runs[f"{scales[0]:g}x"], runs[f"{scales[-1]:g}x"]
    growth = top["train_rows"] / base["train_rows"]
    per_row = (top["fit_seconds"] / top["train_rows"]) / (base["fit_seconds"] / base["train_rows"])
    sec.figures = {
        "world": "quick (2,000 users, 3 pre-period days)" if quick else "default scenarios.yaml",
        "epochs": epochs,
        "runs": runs,
        "cpus": os.cpu_count(),
    }
    sec.target(
        f"fit time per exposure, {scales[-1]:g}x / {scales[0]:g}x",
        round(per_row, 2),
        "<=",
        PER_EXPOSURE_TARGET,
        f"{growth:.2f}x the training exposures",
    )
    sec.target(
        f"peak RSS growth, {scales[-1]:g}x / {scales[0]:g}x",
        round(top["peak_rss_mb"] / base["peak_rss_mb"], 2),
        "<=",
        None,
        f"{top['peak_rss_mb']:.0f} vs {base['peak_rss_mb']:.0f} MB for {growth:.2f}x the rows",
    )
    return sec


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the 2,000-user world")
    parser.add_argument("--scales", default="1,4", help="traffic multiples (1,4)")
    parser.add_argument("--epochs", type=int, default=30, help="click-model epochs (30)")
    parser.add_argument("--out", type=Path, help="write the section's figures as JSON here")
    args = parser.parse_args(argv)
    scales = tuple(float(x) for x in args.scales.split(","))
    t0 = time.perf_counter()
    sec = bench_calibrate(args.quick, scales, args.epochs)
    sec.seconds = time.perf_counter() - t0
    print_table([sec])
    if args.out:
        args.out.write_text(json.dumps({"calibrate": sec.to_dict()}, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
