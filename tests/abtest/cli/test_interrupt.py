"""Ctrl-C during `run`: exit 130, earlier reports intact, no folder that looks complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.conftest import ROOT, tiny_tree


def test_ctrl_c_during_run_leaves_earlier_reports_intact(tmp_path, write_yaml):
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 6})
    cfg = write_yaml(tree)
    env = {**os.environ, "ABTEST_CACHE": str(tmp_path / "cache")}
    base = [sys.executable, "-m", "abtest", "run", "--treatment", "popular", "--control",
            "random", "--config", str(cfg)]  # fmt: skip
    done = tmp_path / "earlier"
    subprocess.run([*base, "--out", str(done), "--quiet"], cwd=ROOT, env=env, check=True,
                   capture_output=True)  # fmt: skip
    before = {p.name: p.read_bytes() for p in done.iterdir()}

    out = tmp_path / "interrupted"
    proc = subprocess.Popen([*base, "--out", str(out)], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    # interrupt once the simulation has started
    seen = ""
    deadline = time.time() + 120
    while "[3/4]" not in seen and time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert not (out / "results.json").exists() and not (out / "report.md").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")] if out.exists() else True
    assert {p.name: p.read_bytes() for p in done.iterdir()} == before
