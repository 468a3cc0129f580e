"""``python -m abtest import``: the summary of a good import, and bad input of every kind.

Each row of ``BAD`` builds a broken source (from the fixtures) in a fresh folder, runs
``abtest.cli.main`` in process and checks: exit status 2; stderr ends with exactly one line
``error: ...`` matching the row's pattern (stage lines before it, never a traceback); and no
file under the row's folder was created or changed (``--out`` is not created, an existing
one keeps its bytes, no staging folder is left).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from abtest.cli.main import main
from simulator.logfolder import problems, read_manifest
from tests.conftest import FIXTURES

KUAIRAND = FIXTURES / "kuairand"
STANDARD = "log_standard_4_22_to_5_08_pure.csv"
OBD = FIXTURES / "obd"
STAGE_LINE = re.compile(r"^(\[\d/\d\] |writing )")
TABLE = """uid,vid,ts,clicked,req,pos,watch,prop
a,10,2024-05-01T12:00:00Z,1,r1,0,3.5,0.5
a,11,2024-05-01T12:00:00Z,0,r1,1,0.0,0.5
b,10,2024-05-01T13:00:00Z,0,r2,0,1.0,0.25
b,12,2024-05-01T13:40:00Z,1,r3,0,8.0,1.0
"""
TABLE_MAP = (
    "user_id=uid,item_id=vid,timestamp=ts,click=clicked,request_id=req,position=pos,"
    "watch_time=watch,propensity=prop"
)


def run_main(args: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse reports a bad argument by exiting 2
        rc = exc.code
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def check_error(stderr: str, pattern: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    stray = [line for line in lines[:-1] if not STAGE_LINE.match(line)]
    assert not stray, f"unexpected stderr lines before the error: {stray}"
    assert re.search(pattern, errors[0]), f"{pattern!r} not in {errors[0]!r}"
    return errors[0]


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
        for p in sorted(root.rglob("*"))
    }


# ---------------------------------------------------------------------------- sources


def _set(frame: pl.DataFrame, column: str, value: str, row: int) -> pl.DataFrame:
    """`frame` (text columns) with `column` set to `value` in `row`."""
    return frame.with_columns(
        pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(column).alias(column)
    )


def kuairand(tmp: Path, mutate: Callable[[pl.DataFrame], pl.DataFrame] | None = None) -> Path:
    src = tmp / "kuairand"
    shutil.copytree(KUAIRAND, src)
    if mutate is not None:
        raw = pl.read_csv(src / STANDARD, infer_schema=False)
        mutate(raw).write_csv(src / STANDARD)
    return src


def obd(tmp: Path, mutate: Callable[[pl.DataFrame], pl.DataFrame] | None = None) -> Path:
    src = tmp / "obd"
    shutil.copytree(OBD, src)
    if mutate is not None:
        path = src / "random" / "all" / "all.csv"
        mutate(pl.read_csv(path, infer_schema=False)).write_csv(path)
    return src


def table(tmp: Path, text: str = TABLE, name: str = "logs.csv") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def table_with(column: str, value: str, row: int = 1) -> Callable[[Path], Path]:
    def build(tmp: Path) -> Path:
        frame = pl.read_csv(table(tmp, name="orig.csv"), infer_schema=False)
        path = tmp / "logs.csv"
        _set(frame, column, value, row).write_csv(path)
        (tmp / "orig.csv").unlink()
        return path

    return build


@dataclass
class Bad:
    id: str
    args: Callable[[Path, str], list[str]]  # (row folder, --out) -> command line
    pattern: str
    out: Callable[[Path], Path] | None = None  # prepares --out (default: tmp/out, absent)


def _kr(mutate=None, *extra: str):
    return lambda tmp, out: ["import", "kuairand", str(kuairand(tmp, mutate)), "--out", out, *extra]


def _obd(mutate=None, *extra: str):
    return lambda tmp, out: ["import", "obd", str(obd(tmp, mutate)), "--out", out, *extra]


def _table(build: Callable[[Path], Path] = table, mapping: str = TABLE_MAP, *extra: str):
    return lambda tmp, out: [
        "import",
        "table",
        str(build(tmp)),
        "--out",
        out,
        "--map",
        mapping,
        *extra,
    ]


def _existing_folder(tmp: Path) -> Path:
    out = tmp / "out"
    out.mkdir()
    (out / "thesis.tex").write_text("not a log")
    return out


def _imported_folder(tmp: Path) -> Path:
    out = tmp / "out"
    assert main(["import", "obd", str(OBD), "--out", str(out), "--quiet"]) == 0
    return out


def _file(tmp: Path) -> Path:
    out = tmp / "out"
    out.write_text("a file")
    return out


BAD = [
    # missing sources
    Bad(
        "kuairand-folder-missing",
        lambda tmp, out: ["import", "kuairand", str(tmp / "nope"), "--out", out],
        "KuaiRand folder not found: .*nope",
    ),
    Bad(
        "kuairand-no-logs",
        lambda tmp, out: ["import", "kuairand", str(tmp), "--out", out],
        r"no KuaiRand log files \(log_\*\.csv\) in",
    ),
    Bad(
        "obd-no-logs",
        lambda tmp, out: ["import", "obd", str(KUAIRAND), "--out", out],
        "no Open Bandit Dataset logs in .*kuairand",
    ),
    Bad("table-file-missing", _table(lambda tmp: tmp / "nope.csv"), "table file not found"),
    # missing or unknown columns
    Bad(
        "kuairand-missing-column",
        _kr(lambda f: f.drop("tab")),
        rf"{STANDARD}: not a KuaiRand log CSV, missing column\(s\) tab$",
    ),
    Bad(
        "obd-missing-column",
        _obd(lambda f: f.drop("click")),
        r"all\.csv: not a Open Bandit Dataset CSV, missing column\(s\) click$",
    ),
    Bad(
        "table-map-names-absent-column",
        _table(mapping="user_id=user,item_id=vid"),
        r"logs\.csv: no column 'user' \(mapped to user_id by --map\); its columns: uid, ",
    ),
    Bad(
        "table-map-unknown-key",
        _table(mapping="userid=uid"),
        r"--map: unknown column 'userid'; ours: request_id, session_id",
    ),
    Bad(
        "table-required-column-missing",
        _table(mapping="user_id=uid,item_id=vid,timestamp=ts"),
        r"logs\.csv: missing column\(s\) click \(name the source's with --map click=COLUMN\)",
    ),
    # bad values
    Bad(
        "kuairand-unparsable-tab",
        _kr(lambda f: _set(f, "tab", "feed", 2)),
        r"cannot parse .*: column 'tab' must be an integer; first offending rows: 2 \('feed'\)$",
    ),
    Bad(
        "kuairand-click-not-binary",
        _kr(lambda f: _set(f, "is_click", "2", 3)),
        r"column 'is_click' must be 0 or 1; first offending rows: 3 \(2\)$",
    ),
    Bad(
        "kuairand-negative-watch-time",
        _kr(lambda f: _set(f, "play_time_ms", "-1200", 4)),
        r"column 'play_time_ms' must be >= 0; first offending rows: 4 \(-1200\.0\)$",
    ),
    Bad(
        "kuairand-unknown-tab",
        _kr(None, "--tabs", "0,9"),
        r"--tabs: no tab 9 in the KuaiRand logs of .*; its tabs: 1 \(18 rows\), 0 \(14 rows\)",
    ),
    Bad(
        "obd-zero-propensity",
        _obd(lambda f: _set(f, "propensity_score", "0.0", 5)),
        r"all\.csv: column 'propensity_score' must be in \(0, 1\]; first offending rows: 5 "
        r"\(0\.0\)$",
    ),
    Bad(
        "obd-propensity-above-one",
        _obd(lambda f: _set(f, "propensity_score", "1.5", 0)),
        r"column 'propensity_score' must be in \(0, 1\]; first offending rows: 0 \(1\.5\)$",
    ),
    Bad(
        "obd-unparsable-timestamp",
        _obd(lambda f: _set(f, "timestamp", "24/11/2019", 2)),
        r"all\.csv: column 'timestamp' cannot be parsed \(expected e\.g\. '2019-11-24 "
        r"00:00:17\.604458\+00:00'\); first offending rows: 2 \('24/11/2019'\)$",
    ),
    Bad(
        "table-duplicate-slot",
        _table(table_with("pos", "0", 1)),
        r"logs\.csv: \(request_id, position\) is not unique; first offending rows: 0 \(0\), 1 "
        r"\(0\)",
    ),
    Bad(
        "table-click-not-binary",
        _table(table_with("clicked", "2", 2)),
        r"logs\.csv: column 'click' must be 0 or 1; first offending rows: 2 \(2\) \(--map ",
    ),
    Bad(
        "table-click-text",
        _table(table_with("clicked", "yes", 3)),
        r"logs\.csv: column 'click' \(source column 'clicked'\) must be an integer; first "
        r"offending rows: 3 \('yes'\)$",
    ),
    Bad(
        "table-negative-watch-time",
        _table(table_with("watch", "-2", 0)),
        r"column 'watch_time' must be >= 0; first offending rows: 0 \(-2\.0\)",
    ),
    Bad(
        "table-propensity-above-one",
        _table(table_with("prop", "1.2", 3)),
        r"column 'propensity' must be in \(0, 1\]; first offending rows: 3 \(1\.2\)",
    ),
    Bad(
        "table-propensity-zero",
        _table(table_with("prop", "0", 2)),
        r"column 'propensity' must be in \(0, 1\]; first offending rows: 2 \(0\.0\)",
    ),
    Bad(
        "table-unparsable-timestamp",
        _table(table_with("ts", "yesterday", 3)),
        r"column 'timestamp' \(source column 'ts'\) cannot be parsed as a time .*first "
        r"offending rows: 3 \('yesterday'\)$",
    ),
    Bad(
        "table-epoch-in-another-unit",
        _table(
            lambda tmp: table(
                tmp,
                TABLE.replace("2024-05-01T12:00:00Z", "1714564800000")
                .replace("2024-05-01T13:00:00Z", "1714568400000")
                .replace("2024-05-01T13:40:00Z", "1714570800000"),
            )
        ),
        r"column 'timestamp' \(source column 'ts'\) holds epoch times outside 1970-2200 in "
        r"--time-unit s \(another unit\?\); first offending rows: 0 \('1714564800000'\)",
    ),
    Bad(
        "table-request-of-two-users",
        _table(table_with("uid", "b", 1)),
        r"column 'user_id' differs between rows of one request_id; first offending rows: 0",
    ),
    # empty and foreign files
    Bad("kuairand-empty-log", _kr(lambda f: f.head(0)), rf"{STANDARD}: the log has no rows$"),
    Bad(
        "kuairand-zero-byte-log",
        lambda tmp, out: (
            (kuairand(tmp) / STANDARD).write_bytes(b""),
            ["import", "kuairand", str(tmp / "kuairand"), "--out", out],
        )[1],
        rf"cannot read .*{STANDARD} as a KuaiRand log CSV",
    ),
    Bad(
        "table-empty",
        _table(lambda tmp: table(tmp, TABLE.splitlines()[0] + "\n")),
        r"logs\.csv: the table has no rows$",
    ),
    Bad(
        "table-not-csv-or-parquet",
        _table(lambda tmp: table(tmp, "{}", "logs.json")),
        r"logs\.json: not a CSV or parquet file",
    ),
    Bad(
        "table-corrupt-parquet",
        _table(lambda tmp: table(tmp, "PAR1 garbage", "logs.parquet")),
        r"cannot read .*logs\.parquet as parquet",
    ),
    # output folders and options
    Bad(
        "out-not-a-log-folder",
        _kr(),
        "output folder .* is not empty and is not a log folder",
        out=_existing_folder,
    ),
    Bad("out-is-a-file", _kr(), "output folder .* is a file, not a folder", out=_file),
    Bad(
        "out-holds-the-source",
        lambda tmp, out: ["import", "kuairand", str(kuairand(tmp)), "--out", str(tmp)],
        "output folder .* holds the source",
    ),
    Bad(
        "failed-over-an-imported-folder",
        _kr(lambda f: _set(f, "is_click", "7", 0)),
        "'is_click' must be 0 or 1",
        out=_imported_folder,
    ),
    Bad(
        "option-of-another-format",
        _obd(None, "--tabs", "1"),
        "--tabs applies to the kuairand format only, not obd",
    ),
    Bad(
        "session-gap-for-obd",
        _obd(None, "--session-gap", "10"),
        "--session-gap applies to the kuairand and table formats only, not obd",
    ),
    Bad(
        "pre-fraction-out-of-range",
        _kr(None, "--pre-fraction", "1"),
        r"argument --pre-fraction: invalid fraction 1: must be in \(0, 1\)",
    ),
    Bad(
        "unknown-format",
        lambda tmp, out: ["import", "csv", str(tmp), "--out", out],
        "argument FORMAT: invalid choice: 'csv'",
    ),
]


@pytest.mark.parametrize("row", BAD, ids=[r.id for r in BAD])
def test_bad_input(row: Bad, tmp_path, capsys, no_warnings):
    out = row.out(tmp_path) if row.out else tmp_path / "out"
    args = row.args(tmp_path, str(out))
    before = snapshot(tmp_path)
    rc, stdout, stderr = run_main(args, capsys)
    assert rc == 2, stderr
    check_error(stderr, row.pattern)
    assert stdout == ""
    assert snapshot(tmp_path) == before


def test_import_prints_a_summary(tmp_path, capsys):
    out = tmp_path / "out"
    rc, stdout, stderr = run_main(
        [
            "import",
            "kuairand",
            str(KUAIRAND),
            "--out",
            str(out),
            "--tabs",
            "1,0",
            "--pre-fraction",
            "0.8",
        ],
        capsys,
    )
    assert rc == 0, stderr
    assert problems(out) == []
    assert read_manifest(out)["pre_fraction"] == 0.8
    assert "imported 32 rows (32 requests)" in stdout
    assert re.search(r"tab1 +18 +56\.2%", stdout) and re.search(r"tab0 +14 +43\.8%", stdout)
    assert "policies: standard" in stdout and "time: 2022-04-22" in stdout
    assert stderr.startswith("[1/4] reading ")
    rc, stdout, stderr = run_main(
        ["import", "obd", str(OBD), "--out", str(out), "--quiet", "--campaigns", "all"], capsys
    )
    assert rc == 0 and stderr == ""
    assert read_manifest(out)["scenarios"] == ["all"]


def test_import_table_with_a_yaml_mapping(tmp_path, capsys):
    src = table(tmp_path)
    mapping = tmp_path / "map.yaml"
    mapping.write_text(
        "\n".join(f"{k}: {v}" for k, v in (p.split("=") for p in TABLE_MAP.split(",")))
    )
    out = tmp_path / "out"
    rc, stdout, stderr = run_main(
        [
            "import",
            "table",
            str(src),
            "--map",
            str(mapping),
            "--out",
            str(out),
            "--quiet",
            "--session-gap",
            "60",
        ],
        capsys,
    )
    assert rc == 0, stderr
    assert "imported 4 rows (3 requests) of 2 users and 3 items" in stdout
    m = read_manifest(out)
    assert m["session_gap_minutes"] == 60 and m["policies"] == {"logged": 4}
