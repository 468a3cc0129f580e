"""The ``replay`` command (abtest/cli/replay.py) on a tiny synthetic world's logs."""

from __future__ import annotations

import json

import pytest

from abtest.cli.replay import add_parsers as add_replay_parser
from core.config import config_from_dict
from core.errors import UserError
from simulator.generation import generate
from tests.abtest.offline.conftest import overlap_tree


@pytest.fixture(scope="module")
def log_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("replay")
    generate(config_from_dict(overlap_tree(), "tiny"), root / "logs", progress=False)
    return root / "logs"


def _cli(argv: list[str]) -> int:
    """The replay sub-command alone, wired as abtest.cli.main wires it."""
    from abtest.cli.parents import Parser

    parser = Parser(prog="python -m abtest")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    add_replay_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}")
        return 2


def test_cli_replay(log_dir, tmp_path, write_yaml, capsys):
    cfg_path = write_yaml(overlap_tree())
    out = tmp_path / "rep"
    argv = ["replay", "--policy", "random", "--logs", str(log_dir)]
    argv += ["--config", str(cfg_path), "--estimators", "ips,dr", "--out", str(out), "--quiet"]
    assert _cli(argv) == 0
    assert "| dr |" in capsys.readouterr().out
    saved = json.loads((out / "replay.json").read_text())
    assert saved["settings"]["estimators"] == ["ips", "dr"]
    for bad, msg in [(["--estimators", "ips,nope"], "unknown estimator"), (["--clip", "-3"], "")]:
        with pytest.raises(SystemExit) as exc:
            _cli([*argv, *bad])
        assert exc.value.code == 2 and msg in capsys.readouterr().err
    assert _cli([*argv[:4], "/nonexistent", *argv[5:]]) == 2
    assert "log folder not found" in capsys.readouterr().out


# ---------------------------------------------------------------------------- --policy-table

HEADER = "scenario,item_id,position,probability\n"
TABLE = HEADER + "home_feed,3,0,0.5\nhome_feed,4,0,0.5\nhome_feed,5,1,0.8\n"


def _table_argv(log_dir, cfg_path, table, out) -> list[str]:
    argv = ["replay", "--policy-table", str(table), "--logs", str(log_dir)]
    return [*argv, "--config", str(cfg_path), "--estimators", "ips,snips,dr", "--out", str(out),
            "--quiet"]  # fmt: skip


def test_cli_replay_of_a_policy_table(log_dir, tmp_path, write_yaml, capsys):
    """A table policy against a model baseline: named table:<stem>, with its lift and its
    support block; --policy and --policy-table are one choice, and one is needed."""
    cfg_path = write_yaml(overlap_tree())
    table = tmp_path / "fixed.csv"
    table.write_text(TABLE)
    out = tmp_path / "rep"
    argv = _table_argv(log_dir, cfg_path, table, out)
    assert _cli([*argv, "--baseline", "random"]) == 0
    md = capsys.readouterr().out
    assert md.startswith("# Offline replay: table:fixed vs random") and "Support: " in md
    saved = json.loads((out / "replay.json").read_text())
    assert saved["policy"] == "table:fixed" and saved["baseline"] == "random"
    sc = saved["scenarios"]["home_feed"]
    assert list(saved["scenarios"]) == ["home_feed"] and "dr" in sc["lift"]
    assert sc["support"]["left_out"] > 0  # positions 2.. show nothing: left out
    assert sc["support"]["positions"][1]["mass"] == pytest.approx(0.8)
    neither = [a for a in argv if a not in ("--policy-table", str(table))]
    for args in ([*argv, "--policy", "random"], neither):
        with pytest.raises(SystemExit) as exc:
            _cli(args)
        assert exc.value.code == 2 and "--policy" in capsys.readouterr().err


BAD_TABLES = [
    ("over.csv", HEADER + "home_feed,3,0,1.5\n", "'probability' must be in [0, 1]"),
    ("sum.csv", HEADER + "home_feed,3,0,0.6\nhome_feed,4,0,0.6\n", "sum to 1.2"),
    ("cols.csv", "scenario,item_id,position\nhome_feed,3,0\n", "missing column(s) 'probab"),
    ("scen.csv", HEADER + "moon,3,0,0.5\n", "names scenarios that are not in the logs"),
    ("neg.csv", HEADER + "home_feed,3,-1,0.5\n", "'position' must be >= 0"),
    ("nan.csv", HEADER + "home_feed,3,0,nan\n", "'probability' must be finite"),
    ("null.csv", HEADER + "home_feed,3,0,\n", "'probability' has null values"),
    ("dup.csv", HEADER + "home_feed,3,0,0.2\nhome_feed,3,0,0.2\n", "appears twice"),
    ("int.csv", HEADER + "home_feed,x3,0,0.2\n", "'item_id' must hold integers"),
    ("world.csv", HEADER + "home_feed,100,0,0.2\n", "not in the world (0..99)"),
    ("empty.csv", HEADER, "the policy table has no rows"),
    ("bad.parquet", "not a parquet file", "cannot read the policy table as parquet"),
    ("missing.csv", None, "policy table not found"),
]


@pytest.mark.parametrize(("name", "text", "match"), BAD_TABLES, ids=[b[0] for b in BAD_TABLES])
def test_cli_replay_refuses_a_bad_policy_table(
    log_dir, tmp_path, write_yaml, capsys, name, text, match
):
    """Exit 2, one ``error:`` line naming the file, and no output folder."""
    cfg_path = write_yaml(overlap_tree())
    table = tmp_path / name
    if text is not None:
        table.write_text(text)
    out = tmp_path / "rep"
    assert _cli(_table_argv(log_dir, cfg_path, table, out)) == 2
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(table) in lines[0]
    assert match in lines[0], lines[0]
    assert not out.exists()
