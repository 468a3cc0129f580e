"""Bounds and budgets: every count flag of ``run`` and the studies has an upper limit, and a
combination of in-range values that would not fit in memory is refused in one line, naming
the size and the limit, before any slow work (no logs generated, no model trained).

``--days 1000000000`` used to ask numpy for 109 TiB and die with a traceback."""

from __future__ import annotations

import re

import pytest
import yaml

from abtest.cli.main import main
from abtest.online.user_stats import UserStats
from abtest.online.validity import rerandomise
from core import budget
from core.errors import UserError
from tests.abtest.online.fake_experiment import EXPECTED, fake_experiment
from tests.conftest import tiny_tree

RUN = ["run", "--treatment", "popular", "--control", "random"]
LIMIT = r"invalid count {}: the limit is {}"
TOO_BIG = r"per-user sums .* needs [\d.,]+ [KMGTP]iB \(.*\), more than the limit of"
HUGE = {"n_users": 50_000_000}  # the config's own upper bound: in range on its own

# id -> (command line, world settings, the error line's pattern)
ROWS = {
    "run-days-a-billion": ([*RUN, "--days", "1000000000"], {}, LIMIT.format(1000000000, "3,650")),
    "run-days-one-over": ([*RUN, "--days", "3651"], {}, LIMIT.format(3651, "3,650")),
    "run-bootstrap-over": ([*RUN, "--bootstrap", "100001"], {}, LIMIT.format(100001, "100,000")),
    "run-workers-over": ([*RUN, "--workers", "1025"], {}, LIMIT.format(1025, "1,024")),
    "aa-runs-over": (["aa", "--runs", "100001"], {}, LIMIT.format(100001, "100,000")),
    "coverage-runs-a-billion": (["coverage", "--runs", "1000000000"], {},
                                LIMIT.format(1000000000, "100,000")),
    "power-days-over": (["power", "--days", "3651"], {}, LIMIT.format(3651, "3,650")),
    "aa-days-negative": (["aa", "--days", "-1"], {}, r"invalid count -1: must be >= 1"),
    "run-many-users-many-days": ([*RUN, "--days", "3650"], HUGE, TOO_BIG),
    "run-no-twin-still-too-big": ([*RUN, "--days", "3650", "--no-twin"], HUGE, TOO_BIG),
    "run-every-worker-a-full-copy": ([*RUN, "--workers", "1024"], HUGE, TOO_BIG),
    "aa-many-users-many-days": (["aa", "--days", "3650"], HUGE, TOO_BIG),
    "coverage-many-users-many-days": (["coverage", "--days", "3650"], HUGE, TOO_BIG),
    "power-many-users-many-days": (["power", "--days", "3650"], HUGE, TOO_BIG),
}  # fmt: skip


@pytest.fixture
def where(tmp_path, monkeypatch):
    monkeypatch.setenv("ABTEST_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _config(tmp_path, **world) -> str:
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(tiny_tree(**world), sort_keys=False))
    return str(path)


def _refused(args: list[str], pattern: str, capsys) -> str:
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), err  # not even a stage line
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


@pytest.mark.parametrize("row", list(ROWS))
def test_too_much_is_refused_in_one_line_before_any_work(row, where, capsys):
    args, world, pattern = ROWS[row]
    _refused([*args, "--config", _config(where, **world), "--quiet"], pattern, capsys)
    assert not (where / "cache").exists() and not (where / "reports").exists()


def test_a_small_machine_refuses_what_a_big_one_runs(where, monkeypatch, capsys):
    """The limit is half of this machine's memory: the tiny world on a 256 KiB machine."""
    monkeypatch.setattr(budget, "physical_memory", lambda: 1 << 18)
    line = _refused([*RUN, "--config", _config(where), "--quiet"], TOO_BIG, capsys)
    assert "more than the limit of 128.0 KiB (50% of this machine's memory)" in line
    assert not (where / "cache").exists()


def test_the_big_arrays_check_their_size(monkeypatch):
    with pytest.raises(UserError, match=r"per-user sums \(arms x scenarios x users x days x "):
        UserStats.empty(2, 5, 50_000_000, start_day=7, n_days=3650)
    assert UserStats.empty(2, 1, 3, start_day=0, n_days=2).values.shape == (2, 1, 3, 2, 5)
    monkeypatch.setattr(budget, "physical_memory", lambda: 1 << 16)
    with pytest.raises(UserError, match=r"a re-randomised experiment's per-user sums needs"):
        rerandomise(fake_experiment(), "salt", dict(EXPECTED))


def test_the_largest_counts_are_accepted(where, monkeypatch, capsys):
    """At the limit the flags pass; the run then fails on the budget, not the parser."""
    monkeypatch.setattr(budget, "physical_memory", lambda: 1 << 20)
    args = [*RUN, "--days", "3650", "--bootstrap", "100000", "--workers", "1024"]
    _refused([*args, "--config", _config(where), "--quiet"], TOO_BIG, capsys)
