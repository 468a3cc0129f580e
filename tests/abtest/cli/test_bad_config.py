"""Ambiguous or oversized configs, a bad environment and out-of-bound counts, through every
command: exit status 2, one ``error:`` line naming what is wrong, nothing written.

These fail before any world is generated, so each row runs in a fresh empty folder with its
own cache and checks that neither the folder nor the cache gained a file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from abtest.cli.main import main
from core.strict_yaml import MAX_ALIASES
from tests.conftest import DEFAULT_YAML, tiny_tree

RUN = ["run", "--treatment", "popular", "--control", "random"]
COMMANDS = {
    "generate": ["generate"],
    "train": ["train", "--model", "mixed"],
    "evaluate": ["evaluate", "--models", "popular"],
    "run": RUN,
    "aa": ["aa", "--runs", "2"],
    "power": ["power"],
    "replay": ["replay", "--policy", "popular"],
}


def _text(tree: dict) -> str:
    return yaml.safe_dump(tree, sort_keys=False)


def _renamed(name: str, index: int = 1) -> str:
    tree = tiny_tree()
    tree["scenarios"][index]["name"] = name
    return _text(tree)


def _dup_top() -> str:
    return _text(tiny_tree()) + "seed: 7\n"


def _dup_nested() -> str:
    return _text(tiny_tree()).replace("  n_users: 300\n", "  n_users: 300\n  n_users: 400\n", 1)


def _dup_in_scenario() -> str:
    text = _text(tiny_tree())
    return text.replace("  kind: feed\n", "  kind: feed\n  kind: immersive\n", 1)


def _alias_bomb() -> str:
    lines = ["a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    lines += [f"b{i}: &b{i} [*{'a' if i == 0 else f'b{i - 1}'}, *a]" for i in range(MAX_ALIASES)]
    return "\n".join(lines) + "\n"


def _huge(path: Path) -> None:
    with path.open("wb") as f:
        f.truncate(50 << 20)


CONFIG_ROWS: dict[str, tuple[str, Callable[[], str] | Callable[[Path], None], str]] = {
    "duplicate-top-level-key": ("generate", _dup_top, r"duplicate key 'seed' at lines \d+ and \d+"),
    "duplicate-nested-key": ("train", _dup_nested, r"duplicate key 'n_users' at lines \d+ and \d+"),
    "duplicate-key-in-a-scenario": ("run", _dup_in_scenario, r"duplicate key 'kind'"),
    "duplicate-flow-key": ("evaluate", lambda: "world: {n_users: 1, n_users: 2}\n",
                           r"duplicate key 'n_users'"),
    "alias-bomb": ("generate", _alias_bomb, rf"more than {MAX_ALIASES} alias references"),
    "alias-bomb-in-run": ("run", _alias_bomb, r"alias references"),
    "50-MB-config": ("generate", _huge, r"52,428,800 bytes, more than the 1,048,576-byte limit"),
    "50-MB-config-in-aa": ("aa", _huge, r"more than the 1,048,576-byte limit"),
    "scenario-named-overall": ("generate", lambda: _renamed("overall"),
                               r"scenarios\[1\]\.name: 'overall' is reserved"),
    "scenario-named-all": ("run", lambda: _renamed("all", 0),
                           r"scenarios\[0\]\.name: 'all' is reserved"),
    "scenario-named-Overall": ("evaluate", lambda: _renamed("Overall", 2), r"is reserved"),
    "scenario-named-overall-in-power": ("power", lambda: _renamed("overall"), r"is reserved"),
    "python-object-tag": ("generate", lambda: "seed: !!python/object/apply:os.system [ls]\n",
                          r"not valid YAML"),
    "control-character": ("train", lambda: "seed: 1\x07\n", r"not valid YAML"),
    "replay-duplicate-key": ("replay", _dup_top, r"duplicate key 'seed'"),
}  # fmt: skip


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def place(tmp_path, monkeypatch):
    """An empty working folder with its own (empty) cache."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    return work


def _one_error(capsys, args: list[str], pattern: str) -> str:
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    # a command may print its stage lines ("[1/4] ...") before failing, nothing else
    assert lines and lines[-1].startswith("error:"), err
    assert all(re.match(r"\[\d/\d\] ", line) for line in lines[:-1]), err
    assert re.search(pattern, lines[-1]), lines[-1]
    return lines[-1]


@pytest.mark.parametrize("row", list(CONFIG_ROWS))
def test_bad_config_is_one_error_and_writes_nothing(row, place, tmp_path, capsys):
    command, make, pattern = CONFIG_ROWS[row]
    path = tmp_path / "cfg.yaml"
    if make is _huge:
        make(path)
    else:
        path.write_text(make())
    line = _one_error(capsys, [*COMMANDS[command], "--config", str(path)], pattern)
    assert "cfg.yaml" in line
    assert _files(place) == [] and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("command", ["generate", "train", "evaluate", "run", "replay", "aa"])
def test_empty_cache_variable_is_refused_by_every_command(command, place, monkeypatch, capsys):
    cfg = place.parent / "cfg.yaml"
    cfg.write_text(_text(tiny_tree()))
    monkeypatch.setenv("ABTEST_CACHE", "")
    _one_error(capsys, [*COMMANDS[command], "--config", str(cfg)], r"ABTEST_CACHE is set but empty")
    assert _files(place) == []


BOUND_ROWS = {
    "evaluate-seeds-over-limit": (["evaluate", "--seeds", "101"], r"--seeds: .*the limit is 100"),
    "train-epochs-over-limit": (["train", "--model", "mixed", "--epochs", "1001"],
                                r"--epochs: .*the limit is 1,000"),
    "run-epochs-over-limit": ([*RUN, "--epochs", "100000"], r"--epochs: .*the limit is 1,000"),
    "evaluate-epochs-over-limit": (["evaluate", "--epochs", "5000"], r"the limit is 1,000"),
    "seed-over-2^63": (["generate", "--seed", str(2**63)], r"invalid seed"),
}  # fmt: skip


@pytest.mark.parametrize("row", list(BOUND_ROWS))
def test_counts_above_their_limit_are_refused_before_work(row, place, capsys):
    args, pattern = BOUND_ROWS[row]
    _one_error(capsys, [*args, "--config", str(DEFAULT_YAML)], pattern)
    assert _files(place) == []
