"""Section ``import``: ``python -m abtest import kuairand`` on a large synthetic KuaiRand log.

    .venv/bin/python benchmarks/bench_import.py [--rows 10000000] [--keep DIR] [--out JSON]

Writes a seeded KuaiRand-format folder (``log_standard_bench.csv`` with the columns of
KuaiRand's ``log_standard_*.csv``, and the ``is_rand == 1`` rows, about 1%, in
``log_random_bench.csv``; a few thousand users, about 50k videos, 5 tabs) in a temporary
folder, then times, each in its own child process so that the peak RSS is the job's own
(``os.wait4``'s ``ru_maxrss``):

* ``import``: ``python -m abtest import kuairand SRC --out DIR --quiet``;
* ``plain``: ``polars.scan_csv(...).sink_parquet(...)`` of the same CSV files (every column,
  inferred types), the floor of reading the data at all.

Reported: rows/s and peak RSS of both, and the ratios import / plain of time and RSS.
Target: the import's peak RSS < 2 GB (at 10 million rows). :func:`bench_import` returns the
:class:`benchmarks.section.Section`; run as a script it prints the table and, with ``--out``,
writes the section as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.section import Section, print_table  # noqa: E402

KUAIRAND_HEADER = (
    "user_id", "video_id", "date", "hourmin", "time_ms", "is_click", "is_like", "is_follow",
    "is_comment", "is_forward", "is_hate", "long_view", "play_time_ms", "duration_ms",
    "profile_stay_time", "comment_stay_time", "is_profile_enter", "is_rand", "tab",
)  # fmt: skip
RSS_TARGET_MB = 2048.0
START_MS = 1_650_556_800_000  # 2022-04-21 16:00 UTC, KuaiRand's first day in Beijing time
DAYS = 17
TAB_WEIGHTS = {0: 0.05, 1: 0.62, 2: 0.13, 3: 0.02, 4: 0.18}
CHUNK_ROWS = 1_000_000


def write_kuairand(
    folder: Path,
    rows: int,
    *,
    users: int = 5_000,
    videos: int = 50_000,
    random_share: float = 0.01,
    seed: int = 16,
) -> dict[str, int]:
    """A seeded KuaiRand-format folder of `rows` interactions; its files' row counts.

    Written in chunks of a million rows (the generator's memory stays flat): user and video
    ids are sparse (drawn from larger ranges, as in KuaiRand), each video has one duration,
    times are spread over 17 days, ``is_rand == 1`` rows go to ``log_random_bench.csv``.
    """
    import polars as pl

    rng = np.random.default_rng(seed)
    user_ids = np.sort(rng.choice(27_285, size=users, replace=False))
    video_ids = np.sort(rng.choice(10_000_000, size=videos, replace=False))
    duration = rng.integers(3_000, 300_000, size=videos)
    popularity = 1.0 / (np.arange(videos) + 20.0) ** 0.9  # a long tail over the pool
    popularity /= popularity.sum()
    rng.shuffle(popularity)
    activity = rng.lognormal(0.0, 1.0, size=users)
    activity /= activity.sum()
    tabs = np.array(list(TAB_WEIGHTS), dtype=np.int64)
    tab_p = np.array(list(TAB_WEIGHTS.values()))

    folder.mkdir(parents=True, exist_ok=True)
    paths = {0: folder / "log_standard_bench.csv", 1: folder / "log_random_bench.csv"}
    counts = {p.name: 0 for p in paths.values()}
    handles = {k: p.open("wb") for k, p in paths.items()}
    try:
        done = 0
        while done < rows:
            n = min(CHUNK_ROWS, rows - done)
            done += n
            u = rng.choice(users, size=n, p=activity)
            is_rand = (rng.random(n) < random_share).astype(np.int64)
            v = np.where(
                is_rand == 1,
                rng.integers(0, videos, size=n),  # the random log: uniform over the pool
                rng.choice(videos, size=n, p=popularity),
            )
            t = START_MS + rng.integers(0, DAYS * 86_400_000, size=n)
            local = t + 8 * 3_600_000  # Beijing time for date and hourmin
            day = local // 86_400_000 - START_MS // 86_400_000
            minute = (local // 60_000) % 1440
            click = (rng.random(n) < 0.35).astype(np.int64)
            dur = duration[v]
            play = np.where(
                click == 1, (dur * rng.random(n) * 1.5).astype(np.int64), rng.integers(0, 3000, n)
            )
            zeros = np.zeros(n, dtype=np.int64)
            frame = pl.DataFrame(
                {
                    "user_id": user_ids[u],
                    "video_id": video_ids[v],
                    "date": 20220421 + day,
                    "hourmin": (minute // 60) * 100 + minute % 60,
                    "time_ms": t,
                    "is_click": click,
                    "is_like": (rng.random(n) < 0.02).astype(np.int64),
                    "is_follow": zeros,
                    "is_comment": zeros,
                    "is_forward": zeros,
                    "is_hate": zeros,
                    "long_view": (play > 0.8 * dur).astype(np.int64),
                    "play_time_ms": play,
                    "duration_ms": dur,
                    "profile_stay_time": zeros,
                    "comment_stay_time": zeros,
                    "is_profile_enter": zeros,
                    "is_rand": is_rand,
                    "tab": rng.choice(tabs, size=n, p=tab_p),
                }
            )
            for flag, handle in handles.items():
                part = frame.filter(pl.col("is_rand") == flag)
                part.write_csv(handle, include_header=handle.tell() == 0)
                counts[paths[flag].name] += part.height
    finally:
        for handle in handles.values():
            handle.close()
    return counts


def _plain_child(src: str, out: str) -> None:
    """The baseline: every CSV of `src` read lazily and written as parquet (streaming)."""
    import polars as pl

    for i, path in enumerate(sorted(Path(src).glob("log_*.csv"))):
        pl.scan_csv(path).sink_parquet(Path(out) / f"plain-{i}.parquet")


def timed_child(args: list[str]) -> dict:
    """Run `args` as a child process: wall seconds, peak RSS (MB) and exit status."""
    env = dict(os.environ, POLARS_MAX_THREADS=os.environ.get("POLARS_MAX_THREADS", ""))
    if not env["POLARS_MAX_THREADS"]:
        del env["POLARS_MAX_THREADS"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {err.strip()[-2000:]}")
    return {
        "seconds": round(wall, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),
        "stdout": out,
    }


def bench_import(rows: int, keep: Path | None = None) -> Section:
    """Generate `rows` KuaiRand interactions, then time the import and the plain polars pass."""
    sec = Section("import")
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        base = keep or Path(tmp)
        src = base / "kuairand"
        t0 = time.perf_counter()
        counts = write_kuairand(src, rows)
        gen_s = time.perf_counter() - t0
        csv_mb = sum(p.stat().st_size for p in src.glob("*.csv")) / 2**20
        print(
            f"generated {rows:,} rows ({csv_mb:,.0f} MB of CSV) in {gen_s:.0f} s", file=sys.stderr
        )

        py = sys.executable
        out = base / "imported"
        imp = timed_child(
            [py, "-m", "abtest", "import", "kuairand", str(src), "--out", str(out), "--quiet"]
        )
        print(f"import: {imp['seconds']} s, {imp['peak_rss_mb']} MB", file=sys.stderr)
        plain_dir = base / "plain"
        plain_dir.mkdir(exist_ok=True)
        code = (
            "import sys; from benchmarks.bench_import import _plain_child; "
            "_plain_child(sys.argv[1], sys.argv[2])"
        )
        plain = timed_child([py, "-c", code, str(src), str(plain_dir)])
        print(f"plain polars: {plain['seconds']} s, {plain['peak_rss_mb']} MB", file=sys.stderr)
        manifest = json.loads((out / "manifest.json").read_text())

    t_ratio = imp["seconds"] / plain["seconds"]
    rss_ratio = imp["peak_rss_mb"] / plain["peak_rss_mb"]
    sec.figures = {
        "rows": rows,
        "files": counts,
        "csv_mb": round(csv_mb, 1),
        "generate_seconds": round(gen_s, 1),
        "imported": manifest["rows"] | {"scenarios": manifest["scenarios"]},
        "import": {k: v for k, v in imp.items() if k != "stdout"}
        | {"rows_per_second": round(rows / imp["seconds"])},
        "plain_polars": {k: v for k, v in plain.items() if k != "stdout"}
        | {"rows_per_second": round(rows / plain["seconds"])},
        "polars_max_threads": os.environ.get("POLARS_MAX_THREADS", "default"),
        "cpus": os.cpu_count(),
    }
    sec.target(
        "import peak RSS (MB)",
        imp["peak_rss_mb"],
        "<=",
        RSS_TARGET_MB,
        f"{rows:,} rows; target at 10M rows",
    )
    sec.target("import rows/s", round(rows / imp["seconds"]), ">=", None)
    sec.target("import time / plain polars time", round(t_ratio, 2), "<=", None)
    sec.target(
        "import peak RSS / plain polars peak RSS",
        round(rss_ratio, 2),
        "<=",
        None,
        f"{imp['peak_rss_mb']:.0f} vs {plain['peak_rss_mb']:.0f} MB",
    )
    return sec


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="interactions (10M)")
    parser.add_argument("--keep", type=Path, help="generate and import in DIR (kept)")
    parser.add_argument("--out", type=Path, help="write the section's figures as JSON here")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    sec = bench_import(args.rows, args.keep)
    sec.seconds = time.perf_counter() - t0
    print_table([sec])
    if args.out:
        args.out.write_text(json.dumps({"import": sec.to_dict()}, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
