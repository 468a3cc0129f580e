"""replay.md and replay_days.png (abtest/offline/render.py), read from the typed results."""

from __future__ import annotations

import json

from abtest.offline.render import format_markdown, write_outputs
from abtest.offline.results import from_json
from abtest.offline.run import run_offline
from simulator.converters import read_kuairand_dir
from tests.abtest.offline.conftest import write_logs
from tests.conftest import FIXTURES


def test_markdown_and_plot(replayed):
    run, out = replayed
    md = (out / "replay.md").read_text()
    assert "## home_feed — CTR" in md and "| ips |" in md
    png = (out / "replay_days.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert md == format_markdown(run)
    assert md.startswith("# Offline replay: popular vs random\n")
    assert "true lift" in md and "## home_feed — watch time per exposure (s)" in md


def test_the_outputs_depend_on_the_results_alone(replayed, tmp_path):
    """Rendering a run read back from replay.json writes the same three files."""
    _, out = replayed
    again = from_json(json.loads((out / "replay.json").read_text()))
    paths = write_outputs(tmp_path, again)
    assert sorted(paths) == ["replay.json", "replay.md", "replay_days.png"]
    for name in paths:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_estimators_that_did_not_run_are_said_so(tmp_path):
    logs, _, _ = read_kuairand_dir(FIXTURES / "kuairand")
    run = run_offline(None, "popular", "random", write_logs(tmp_path / "kr", logs), ["ips"])
    md = format_markdown(run)
    assert "| ips | not computed | | | | |" in md
    assert "exact —." in md and "true lift" not in md  # no world: no truth
