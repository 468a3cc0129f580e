"""Fetch the Open Bandit Dataset small sample for the tests marked ``realdata``.

The sample (Saito et al., CC BY 4.0; about 25 MB of CSVs) ships inside the pure-Python
``obp==0.4.1`` wheel on the package registry. This downloads that wheel with
``pip download --no-deps`` into ``.cache/wheels`` and extracts ``obp/dataset/obd/**/*.csv``
into ``.cache/obd`` (``<policy>/<campaign>/<campaign>.csv`` and ``item_context.csv``).

Set-up only (``make obd-sample``, which ``make test`` runs first): the product never
downloads anything. Exits 2 with one ``error:`` line when the wheel cannot be fetched or
read; a partial extraction is never left behind (it is extracted into a staging folder
that is renamed into place last).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "obp==0.4.1"
PREFIX = "obp/dataset/obd/"
EXPECTED = tuple(
    f"{policy}/{campaign}/{campaign}.csv"
    for policy in ("random", "bts")
    for campaign in ("all", "men", "women")
)


def extract(wheel: Path, out: Path) -> int:
    """Extract the sample's CSVs from `wheel` into `out` (replaced whole); the file count."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = [n for n in zf.namelist() if n.startswith(PREFIX) and n.endswith(".csv")]
            missing = [e for e in EXPECTED if PREFIX + e not in names]
            if missing:
                raise SystemExit(
                    f"error: {wheel}: no Open Bandit Dataset sample in it "
                    f"(missing {', '.join(missing)})"
                )
            stage = Path(tempfile.mkdtemp(prefix=".obd-", dir=out.parent))
            try:
                for name in names:
                    target = stage / name[len(PREFIX) :]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(name) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst)
                if out.exists():
                    shutil.rmtree(out)
                stage.rename(out)
            finally:
                shutil.rmtree(stage, ignore_errors=True)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SystemExit(f"error: {wheel}: unreadable wheel ({exc})") from None
    return len(names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=".cache", help="cache folder (default: .cache)")
    parser.add_argument("--wheel", help="use this wheel file instead of downloading one")
    args = parser.parse_args(argv)
    cache = Path(args.cache)
    out = cache / "obd"
    if all((out / e).is_file() for e in EXPECTED) and not args.wheel:
        print(f"Open Bandit Dataset sample already in {out}")
        return 0
    if args.wheel:
        wheel = Path(args.wheel)
    else:
        wheels = cache / "wheels"
        wheels.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--only-binary=:all:", WHEEL, "-d", str(wheels)]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        found = sorted(wheels.glob("obp-0.4.1-*.whl"))
        if done.returncode != 0 or not found:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise SystemExit(f"error: cannot download {WHEEL} from the package registry: {last}")
        wheel = found[0]
    out.parent.mkdir(parents=True, exist_ok=True)
    n = extract(wheel, out)
    print(f"extracted {n} CSV files of the Open Bandit Dataset sample into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
