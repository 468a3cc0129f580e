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
