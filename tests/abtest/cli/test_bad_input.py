"""Bad input to every command: exit status 2, one ``error:`` line, no traceback, no data loss.

Each row of ``ROWS`` builds a bad input in a fresh copy of one tiny generated world (config,
log folder in the cache, a pre-populated output folder), runs ``abtest.cli.main`` in
process and checks: the status is 2; stderr ends with exactly one line ``error: ...``
matching the row's pattern, with at most the command's stage lines (``[1/4] ...``) before it
and never a traceback; and every file that existed before the command keeps its bytes.

Decisions the rows encode (see ``simulator/logs.py``):

* a duplicated (request_id, position) is two exposures in one slot of one page: ambiguous
  (which item was shown?), so it is an error, not something to de-duplicate silently;
* the row order of a log file does not matter (readers sort by time), but one request's
  rows at different timestamps (or for different users, sessions or scenarios) are an error:
  a request is one page served at one instant.

A log folder or checkpoint whose bytes fail verification is a damaged artefact, not bad input
(a cache rebuilds it: ``test_corruption.py``). The rows here re-seal what they break (the
manifest's digests, a checkpoint's sha256 record), so that the readers' own checks are what
they test.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml

from abtest.cli.main import main
from core.config import config_from_dict
from models.checkpoint import record_sha256
from simulator.generation import log_dir_for
from simulator.logfolder import seal
from simulator.logs import read_logs, validate_logs
from tests.conftest import ROOT, tiny_tree

# what a command may print on stderr before failing: stage lines, evaluate's per-model line
STAGE_LINE = re.compile(r"^(\[\d/\d\] |      |generating |note: |\w+ +recall@50 )")
OUT_FILES = (
    "results.json", "report.md", "lift.csv", "replay.json", "replay.md", "offline.json",
    "offline.md", "aa.json", "power.json", "coverage.json",
)  # fmt: skip


# ---------------------------------------------------------------------------- the world


def _tree() -> dict:
    tree = tiny_tree()
    tree["periods"].update({"pre_days": 3, "experiment_days": 1})
    return tree


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One tiny generated world: its config file and a cache holding its log folder."""
    base = tmp_path_factory.mktemp("world")
    cfg = base / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(_tree(), sort_keys=False))
    config = config_from_dict(_tree(), "tiny")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ABTEST_CACHE", str(base / "cache"))
        assert main(["generate", "--config", str(cfg), "--quiet"]) == 0
        log_dir = log_dir_for(config)
        from models.data import load_dataset

        data = load_dataset(log_dir, config)
    return {"base": base, "cfg": cfg, "config": config, "data": data,
            "log_rel": log_dir.relative_to(base / "cache")}  # fmt: skip


@dataclass
class Ctx:
    """A fresh copy of the world for one row, with helpers to break it."""

    tmp: Path
    cfg: Path
    cache: Path
    logs: Path  # the config's generated log folder inside this row's cache
    out: Path  # an output folder already holding earlier outputs
    blocker: Path  # a regular file: any path under it cannot be a folder
    data: object
    config: object
    notes: dict = field(default_factory=dict)

    def write_cfg(self, tree_or_text, name: str = "bad.yaml") -> str:
        path = self.tmp / name
        if isinstance(tree_or_text, bytes):
            path.write_bytes(tree_or_text)
        elif isinstance(tree_or_text, str):
            path.write_text(tree_or_text)
        else:
            path.write_text(yaml.safe_dump(tree_or_text, sort_keys=False))
        return str(path)

    def mutated_cfg(self, mutate: Callable[[dict], None]) -> str:
        tree = _tree()
        mutate(tree)
        return self.write_cfg(tree)

    def log_folder(self, mutate: Callable[[pl.DataFrame], pl.DataFrame] | None = None,
                   name: str = "badlogs") -> Path:  # fmt: skip
        """A copy of the log folder (with its manifest) whose logs.parquet is mutated."""
        folder = self.tmp / name
        shutil.copytree(self.logs, folder)
        if mutate is not None:
            frame = mutate(pl.read_parquet(folder / "logs.parquet"))
            frame.write_parquet(folder / "logs.parquet")
            seal(folder)
        return folder

    def break_cache_logs(self, mutate: Callable[[pl.DataFrame], pl.DataFrame]) -> None:
        """Mutate the config's cached logs in place (what train/evaluate/run read)."""
        path = self.logs / "logs.parquet"
        mutate(pl.read_parquet(path)).write_parquet(path)
        seal(self.logs)

    def checkpoint(self, name: str = "mixed") -> Path:
        """Where `name`'s checkpoint for the config's seed lives in this row's cache."""
        from abtest.pipeline import checkpoint_path
        from models.train import TrainConfig
        from models.zoo import ModelConfig

        path, th = checkpoint_path(
            self.data, ModelConfig(name, self.data.spec), TrainConfig(), self.config.seed
        )
        self.notes["train_hash"] = th
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


@pytest.fixture
def ctx(world, tmp_path, monkeypatch) -> Ctx:
    cache = tmp_path / "cache"
    shutil.copytree(world["base"] / "cache", cache)
    monkeypatch.setenv("ABTEST_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)  # default output folders (reports/...) land in tmp
    out = tmp_path / "out"
    out.mkdir()
    for name in OUT_FILES:
        (out / name).write_text(f"earlier {name}\n")
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file\n")
    return Ctx(tmp_path, world["cfg"], cache, cache / world["log_rel"], out, blocker,
               world["data"], world["config"])  # fmt: skip


# ---------------------------------------------------------------------------- helpers


def set_at(col: str, value, rows=(1,), dtype=None) -> Callable[[pl.DataFrame], pl.DataFrame]:
    """Set `col` to `value` on the given rows (row 0 and 1 are one request's slots 0, 1)."""

    def mutate(df: pl.DataFrame) -> pl.DataFrame:
        lit = pl.lit(value, dtype=dtype or df.schema[col])
        hit = pl.int_range(pl.len()).is_in(list(rows))
        return df.with_columns(pl.when(hit).then(lit).otherwise(pl.col(col)).alias(col))

    return mutate


def snapshot(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_main(args: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        rc = main(args)
    except SystemExit as exc:  # argparse reports a bad argument by exiting 2
        rc = exc.code
    return rc, capsys.readouterr().err


def check_error(stderr: str, pattern: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    stray = [line for line in lines[:-1] if not STAGE_LINE.match(line)]
    assert not stray, f"unexpected stderr lines before the error: {stray}"
    assert re.search(pattern, errors[0]), f"{pattern!r} not in {errors[0]!r}"
    return errors[0]


# ---------------------------------------------------------------------------- checkpoints


def _save(ctx: Ctx, path: Path, name: str, *, spec=None, train_hash=None, tamper=False) -> None:
    """A real (untrained) checkpoint of `name`, possibly for another feature spec."""
    from models.checkpoint import FORMAT, save_checkpoint
    from models.towers import build_model
    from models.zoo import ModelConfig

    cfg = ModelConfig(name, spec or ctx.data.spec)
    model = build_model(cfg, ctx.data.items)
    if tamper:  # right record, wrong weights: drop one tensor
        state = model.state_dict()
        state.pop(next(iter(state)))
        payload = {"format": FORMAT, "model_name": name, "model_config": json.dumps(cfg.to_dict()),
                   "train_hash": train_hash, "extra": "{}", "state_dict": state}  # fmt: skip
        torch.save(payload, path)
        record_sha256(path)
        return
    save_checkpoint(path, model, cfg, train_hash or "0" * 16)


def ckpt_not_dict(ctx: Ctx) -> list[str]:
    torch.save([1, 2, 3], ctx.checkpoint())
    record_sha256(ctx.checkpoint())
    return ["train", "--model", "mixed", "--config", str(ctx.cfg), "--quiet"]


def ckpt_other_model(ctx: Ctx) -> list[str]:
    path = ctx.checkpoint("mixed")
    _save(ctx, path, "star", train_hash=ctx.notes["train_hash"])
    return ["train", "--model", "mixed", "--config", str(ctx.cfg), "--quiet"]


def ckpt_other_config(ctx: Ctx) -> list[str]:
    import dataclasses

    path = ctx.checkpoint("mixed")
    other = dataclasses.replace(ctx.data.spec, history_length=7, n_items=123)
    _save(ctx, path, "mixed", spec=other, train_hash=ctx.notes["train_hash"])
    return ["train", "--model", "mixed", "--config", str(ctx.cfg), "--quiet"]


def ckpt_other_data(ctx: Ctx) -> list[str]:
    _save(ctx, ctx.checkpoint("mixed"), "mixed", train_hash="f" * 16)
    return ["train", "--model", "mixed", "--config", str(ctx.cfg), "--quiet"]


def ckpt_bad_weights(ctx: Ctx) -> list[str]:
    path = ctx.checkpoint("mixed")
    _save(ctx, path, "mixed", train_hash=ctx.notes["train_hash"], tamper=True)
    return ["train", "--model", "mixed", "--config", str(ctx.cfg), "--quiet"]


def ckpt_in_evaluate(ctx: Ctx) -> list[str]:
    _save(ctx, ctx.checkpoint("mmoe"), "star", train_hash=ctx.notes["train_hash"])
    return ["evaluate", "--models", "popular,mmoe", "--config", str(ctx.cfg), "--out",
            str(ctx.out), "--quiet"]  # fmt: skip


# ---------------------------------------------------------------------------- rows


@dataclass(frozen=True)
class Row:
    id: str
    build: Callable[[Ctx], list[str]]
    pattern: str


def cfg_row(id_: str, command: list[str], text_or_mutate, pattern: str) -> Row:
    """A bad config given to `command` (which also names an existing output folder)."""

    def build(ctx: Ctx) -> list[str]:
        if callable(text_or_mutate):
            path = ctx.mutated_cfg(text_or_mutate)
        else:
            path = ctx.write_cfg(text_or_mutate)
        args = [a.replace("OUT", str(ctx.out)).replace("LOGS", str(ctx.logs)) for a in command]
        return [*args, "--config", path]

    return Row(id_, build, pattern)


def replay_row(id_: str, mutate, pattern: str, file_only: bool = False) -> Row:
    """`replay` on a copy of the log folder with a mutated logs.parquet."""

    def build(ctx: Ctx) -> list[str]:
        folder = ctx.log_folder(mutate)
        logs = folder / "logs.parquet" if file_only else folder
        return ["replay", "--policy", "popular", "--logs", str(logs), "--config", str(ctx.cfg),
                "--out", str(ctx.out), "--quiet"]  # fmt: skip

    return Row(id_, build, pattern)


def train_logs_row(id_: str, mutate, pattern: str, command: str = "train") -> Row:
    """`train` (or evaluate/run) with the config's cached logs broken in place."""

    def build(ctx: Ctx) -> list[str]:
        mutate(ctx)
        base = ["--config", str(ctx.cfg), "--quiet"]
        if command == "train":
            return ["train", "--model", "popular", *base]
        if command == "evaluate":
            return ["evaluate", "--models", "popular", "--out", str(ctx.out), *base]
        return ["run", "--treatment", "popular", "--control", "random", "--out", str(ctx.out),
                "--no-twin", *base]  # fmt: skip

    return Row(id_, build, pattern)


def _cache_logs(mutate):
    return lambda ctx: ctx.break_cache_logs(mutate)


def _file(name: str, content: bytes | Callable[[bytes], bytes]):
    def apply(ctx: Ctx) -> None:
        path = ctx.logs / name
        path.write_bytes(content(path.read_bytes()) if callable(content) else content)
        seal(ctx.logs)

    return apply


def _table(name: str, mutate):
    def apply(ctx: Ctx) -> None:
        path = ctx.logs / name
        mutate(pl.read_parquet(path)).write_parquet(path)
        seal(ctx.logs)

    return apply


def _truncate(b: bytes) -> bytes:
    return b[: len(b) // 2]


def _del(*keys):
    def mutate(tree: dict) -> None:
        node = tree
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]

    return mutate


def _put(value, *keys):
    def mutate(tree: dict) -> None:
        node = tree
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return mutate


GEN = ["generate", "--out", "LOGS", "--quiet"]
RUN = ["run", "--treatment", "popular", "--control", "random", "--out", "OUT", "--quiet"]
AA = ["aa", "--model", "popular", "--runs", "3", "--out", "OUT", "--quiet"]


def _manifest(ctx: Ctx, text: str) -> Path:
    folder = ctx.log_folder()
    (folder / "manifest.json").write_text(text)
    return folder


def _manifest_cfg(ctx: Ctx) -> Path:
    folder = ctx.log_folder()
    m = json.loads((folder / "manifest.json").read_text())
    m["config"]["world"]["n_users"] = "lots"
    seal(folder, m)
    return folder


def _replay_args(ctx: Ctx, logs, *extra) -> list[str]:
    return ["replay", "--policy", "popular", "--logs", str(logs), "--config", str(ctx.cfg),
            "--out", str(ctx.out), "--quiet", *extra]  # fmt: skip


def _real_logs(ctx: Ctx) -> Path:
    """A log file with no manifest beside it (real logs: no world)."""
    folder = ctx.tmp / "real"
    folder.mkdir()
    shutil.copy(ctx.logs / "logs.parquet", folder / "logs.parquet")
    return folder / "logs.parquet"


def _last_request(**values):
    """Set columns on every row of the log's last request (in the experiment period).

    ``session_id=None`` moves the request into the session of another user's request."""

    def mutate(df: pl.DataFrame) -> pl.DataFrame:
        last = pl.col("request_id") == df["request_id"][-1]
        if values.get("session_id", 0) is None:
            other = df.filter(pl.col("user_id") != df["user_id"][-1])["session_id"][-1]
            values["session_id"] = other
        return df.with_columns(
            pl.when(last).then(pl.lit(v, dtype=df.schema[c])).otherwise(pl.col(c)).alias(c)
            for c, v in values.items()
        )

    return mutate


def _pre_period_only(df: pl.DataFrame) -> pl.DataFrame:
    return df.filter(pl.col("timestamp") < pl.col("timestamp").max() - pl.duration(days=1))


def _report_dir(ctx: Ctx, content: str | None) -> list[str]:
    run = ctx.tmp / "run"
    run.mkdir()
    (run / "report.md").write_text("an earlier report\n")
    if content is not None:
        (run / "results.json").write_text(content)
    return ["report", str(run)]


_EXAMPLE = json.loads((ROOT / "tests" / "fixtures" / "results_example.json").read_text())


def _results(mutate) -> str:
    res = json.loads(json.dumps(_EXAMPLE))
    mutate(res)
    return json.dumps(res)


def _first_scenario_metrics(res: dict) -> None:
    name = next(iter(res["scenarios"]))
    res["scenarios"][name]["metrics"]["ctr"] = [1, 2]


ROWS = [
    # ------------------------------------------------------------ generate: the config
    cfg_row("generate-malformed-yaml", GEN, "world: {n_users: [300\n",
            r"not valid YAML at line \d+, column \d+"),
    cfg_row("generate-empty-config", GEN, "", r"the file is empty"),
    cfg_row("generate-comments-only-config", GEN, "# nothing\n", r"the file is empty"),
    cfg_row("generate-binary-config", GEN, b"\xff\xfe\x00bad", r"cannot read config"),
    cfg_row("generate-top-level-list", GEN, "- 1\n- 2\n", r"<top>: must be a mapping"),
    cfg_row("generate-wrong-type", GEN, _put("many", "world", "n_users"),
            r"world\.n_users: must be an integer, got 'many'"),
    cfg_row("generate-float-for-int", GEN, _put(300.5, "world", "n_users"),
            r"world\.n_users: must be an integer"),
    cfg_row("generate-out-of-range", GEN, lambda t: t["scenarios"][1].update(traffic_share=-0.1),
            r"scenarios\[1\]\.traffic_share: must be > 0, got -0\.1"),
    cfg_row("generate-nan-value", GEN, _put(float("nan"), "traffic", "browse_seconds"),
            r"traffic\.browse_seconds: must be finite"),
    cfg_row("generate-unknown-key", GEN, _put(1, "world", "n_userz"),
            r"world\.n_userz: unknown key"),
    cfg_row("generate-missing-required", GEN, _del("world", "n_items"),
            r"world\.n_items: missing required key"),
    cfg_row("generate-null-section", GEN, _put(None, "leave"), r"leave: must not be empty"),
    cfg_row("generate-shares-not-summing", GEN,
            lambda t: t["scenarios"][0].update(traffic_share=0.9),
            r"scenarios\[\*\]\.traffic_share: must sum to 1"),
    cfg_row("generate-unknown-content-type", GEN,
            lambda t: t["scenarios"][0].update(content_types=["hologram"]),
            r"scenarios\[0\]\.content_types\[0\]: unknown content type 'hologram'"),
    cfg_row("generate-duplicate-scenario", GEN,
            lambda t: t["scenarios"][1].update(name=t["scenarios"][0]["name"]),
            r"scenarios\[1\]\.name: duplicate scenario name"),
    cfg_row("generate-bad-kind", GEN, lambda t: t["scenarios"][0].update(kind="carousel"),
            r"scenarios\[0\]\.kind: must be one of feed, immersive"),
    cfg_row("generate-bad-date", GEN, _put("2026-02-30", "periods", "start_date"),
            r"periods\.start_date: must be a date"),
    Row("generate-missing-config", lambda c: ["generate", "--config", str(c.tmp / "nope.yaml")],
        r"config file not found: .*nope\.yaml"),
    Row("generate-config-is-folder", lambda c: ["generate", "--config", str(c.tmp)],
        r"config path is a directory"),
    Row("generate-negative-seed", lambda c: ["generate", "--config", str(c.cfg), "--seed", "-1"],
        r"invalid seed -1"),
    Row("generate-out-under-a-file",
        lambda c: ["generate", "--config", str(c.cfg), "--out", str(c.blocker / "x"), "--quiet"],
        r"output folder .*blocker/x is not writable"),
    # ------------------------------------------------------------ train: models, logs, checkpoints
    Row("train-unknown-model", lambda c: ["train", "--model", "sas", "--config", str(c.cfg)],
        r"unknown model 'sas'; known models: mixed"),
    Row("train-two-models",
        lambda c: ["train", "--model", "popular,random", "--config", str(c.cfg)],
        r"--model takes one model name"),
    Row("train-checkpoint-not-a-record", ckpt_not_dict, r"not a checkpoint written by this tool"),
    Row("train-checkpoint-of-another-model", ckpt_other_model,
        r"holds model 'star', expected 'mixed'"),
    Row("train-checkpoint-from-another-config", ckpt_other_config,
        r"architecture differs from the requested one"),
    Row("train-checkpoint-from-other-data", ckpt_other_data, r"trained on other data or settings"),
    Row("train-checkpoint-wrong-weights", ckpt_bad_weights, r"weights do not fit the architecture"),
    train_logs_row("train-truncated-logs", _file("logs.parquet", _truncate),
                   r"cannot read .*logs\.parquet as parquet"),
    train_logs_row("train-negative-watch-time", _cache_logs(set_at("watch_time", -3.0)),
                   r"column 'watch_time' must be >= 0; first offending rows: 1 \(-3\.0\)"),
    train_logs_row("train-scenario-not-in-config", _cache_logs(set_at("scenario", "ghost")),
                   r"column 'scenario' has scenarios not in the config"),
    train_logs_row("train-users-truncated", _file("users.parquet", _truncate),
                   r"cannot read .*users\.parquet as parquet"),
    train_logs_row("train-users-duplicate-id",
                   _table("users.parquet", set_at("user_id", 0, rows=(1,))),
                   r"users\.parquet: column 'user_id' is not unique; first offending rows: 0"),
    train_logs_row("train-items-unknown-content-types",
                   _table("items.parquet", lambda d: d.with_columns(content_type=pl.lit("x"))),
                   r"items\.parquet: column 'content_type' has no item of scenario home_feed"),
    train_logs_row("train-items-missing-column",
                   _table("items.parquet", lambda d: d.drop("category")),
                   r"items\.parquet: missing column\(s\) category"),
    train_logs_row("train-items-negative-id",
                   _table("items.parquet", set_at("item_id", -5, rows=(0,))),
                   r"items\.parquet: column 'item_id' must be >= 0"),
    train_logs_row("train-log-item-not-in-items",
                   _cache_logs(set_at("item_id", 10_000_000, rows=(0,))),
                   r"column 'item_id' has items not in .*items\.parquet"),
    train_logs_row("train-users-text-profile",
                   _table("users.parquet", lambda d: d.with_columns(pl.col("age").cast(pl.String))),
                   r"users\.parquet: column 'age' must be integer"),
    cfg_row("train-pre-period-too-short", ["train", "--model", "popular", "--quiet"],
            _put(2, "periods", "pre_days"), r"periods\.pre_days"),
    # ------------------------------------------------------------ evaluate
    Row("evaluate-unknown-model",
        lambda c: ["evaluate", "--models", "mixed,bogus", "--config", str(c.cfg)],
        r"unknown model 'bogus'"),
    Row("evaluate-zero-seeds", lambda c: ["evaluate", "--seeds", "0", "--config", str(c.cfg)],
        r"invalid count 0: must be >= 1"),
    Row("evaluate-bad-index", lambda c: ["evaluate", "--index", "lsh", "--config", str(c.cfg)],
        r"invalid choice: 'lsh'"),
    Row("evaluate-out-under-a-file",
        lambda c: ["evaluate", "--models", "popular", "--config", str(c.cfg), "--out",
                   str(c.blocker / "o"), "--quiet"],
        r"output folder .*blocker/o is not writable"),
    Row("evaluate-checkpoint-of-another-model", ckpt_in_evaluate,
        r"holds model 'star', expected 'mmoe'"),
    train_logs_row("evaluate-propensity-above-one", _cache_logs(set_at("propensity", 1.5)),
                   r"column 'propensity' must be in \(0, 1\]", command="evaluate"),
    cfg_row("evaluate-wrong-type", ["evaluate", "--out", "OUT", "--quiet"],
            _put("yes", "world", "latent_dim"), r"world\.latent_dim: must be an integer"),
    # ------------------------------------------------------------ run
    cfg_row("run-malformed-yaml", RUN, "scenarios: [\n  - {name: a\n",
            r"not valid YAML at line \d+"),
    cfg_row("run-out-of-range-alpha", RUN, _put(1.5, "experiment", "alpha"),
            r"experiment\.alpha: must be < 1, got 1\.5"),
    cfg_row("run-allocation-over-one", RUN,
            _put({"control": 0.7, "treatment": 0.7}, "experiment", "allocation"),
            r"experiment\.allocation: shares must sum to at most 1"),
    cfg_row("run-allocation-unknown-arms", RUN,
            _put({"a": 0.5, "b": 0.5}, "experiment", "allocation"),
            r"experiment\.allocation: must give shares for exactly 'control' and 'treatment'"),
    Row("run-two-models-in-one-arm",
        lambda c: ["run", "--treatment", "sass,mixed", "--control", "popular"],
        r"one model name expected"),
    Row("run-unknown-model", lambda c: ["run", "--treatment", "sas", "--control", "popular"],
        r"unknown model 'sas'"),
    Row("run-zero-days",
        lambda c: ["run", "--treatment", "popular", "--control", "random", "--days", "0"],
        r"invalid count 0"),
    Row("run-zero-epochs",
        lambda c: ["run", "--treatment", "sass", "--control", "mixed", "--epochs", "0"],
        r"argument --epochs: invalid count 0: must be >= 1"),
    Row("train-fractional-epochs",
        lambda c: ["train", "--model", "mixed", "--epochs", "2.5", "--config", str(c.cfg)],
        r"argument --epochs: invalid count '2\.5': must be an integer"),
    Row("run-bad-correction", lambda c: ["run", "--treatment", "popular", "--control", "random",
                                         "--correction", "bonferroni"], r"invalid choice"),
    Row("run-fixed-sessions-without-replay",
        lambda c: ["run", "--treatment", "popular", "--control", "random", "--fixed-sessions",
                   "--config", str(c.cfg), "--out", str(c.out)],
        r"--fixed-sessions needs --replay"),
    Row("run-out-under-a-file",
        lambda c: ["run", "--treatment", "popular", "--control", "random", "--config",
                   str(c.cfg), "--out", str(c.blocker / "run"), "--quiet"],
        r"output folder .*blocker/run is not writable"),
    Row("run-replay-missing",
        lambda c: ["run", "--treatment", "popular", "--control", "random", "--config",
                   str(c.cfg), "--out", str(c.out), "--replay", str(c.tmp / "nope"), "--quiet",
                   "--no-twin"],
        r"log file not found: .*nope"),
    Row("run-replay-scenario-not-in-config",
        lambda c: ["run", "--treatment", "popular", "--control", "random", "--config",
                   str(c.cfg), "--out", str(c.out), "--no-twin", "--quiet", "--replay",
                   str(c.log_folder(set_at("scenario", "ghost", rows=(0, 1, 2))))],
        r"column 'scenario' has scenarios not in the config .*first offending rows: 0 \('ghost'\)"),
    Row("run-replay-truncated-parquet",
        lambda c: ["run", "--treatment", "popular", "--control", "random", "--config",
                   str(c.cfg), "--out", str(c.out), "--no-twin", "--quiet", "--replay",
                   str(_truncated_copy(c))],
        r"cannot read .*logs\.parquet as parquet"),
    Row("run-replay-user-not-in-world",
        lambda c: ["run", "--treatment", "popular", "--control", "random", "--config",
                   str(c.cfg), "--out", str(c.out), "--no-twin", "--quiet", "--replay",
                   str(c.log_folder(_last_request(user_id=10**6)))],
        r"user_id 1000000 is not a user of this world"),
    Row("run-replay-session-of-two-users",
        lambda c: ["run", "--treatment", "popular", "--control", "random", "--config",
                   str(c.cfg), "--out", str(c.out), "--no-twin", "--quiet", "--replay",
                   str(c.log_folder(_last_request(session_id=None)))],
        r"session_id \d+ has rows of more than one user"),
    train_logs_row("run-logs-missing-column", _cache_logs(lambda d: d.drop("policy")),
                   r"missing column\(s\) policy", command="run"),
    # ------------------------------------------------------------ replay
    Row("replay-unknown-estimator",
        lambda c: _replay_args(c, c.logs, "--estimators", "ips,magic"),
        r"unknown estimator 'magic'; known: replay, ips, snips, dr"),
    Row("replay-zero-clip", lambda c: _replay_args(c, c.logs, "--clip", "0"),
        r"invalid clip 0\.0: must be > 0"),
    Row("replay-nan-clip", lambda c: _replay_args(c, c.logs, "--clip", "nan"),
        r"invalid clip nan"),
    Row("replay-unknown-policy", lambda c: ["replay", "--policy", "oracle", "--logs", "x"],
        r"unknown model 'oracle'"),
    Row("replay-logs-missing", lambda c: _replay_args(c, c.tmp / "nowhere"),
        r"log folder not found: .*nowhere"),
    Row("replay-out-under-a-file",
        lambda c: ["replay", "--policy", "popular", "--logs", str(c.logs), "--config",
                   str(c.cfg), "--out", str(c.blocker / "r"), "--quiet"],
        r"output folder .*blocker/r is not writable"),
    replay_row("replay-missing-column", lambda d: d.drop("propensity"),
               r"missing column\(s\) propensity"),
    replay_row("replay-extra-column", lambda d: d.with_columns(pl.lit(1).alias("dwell")),
               r"unexpected column\(s\) dwell"),
    replay_row("replay-empty-log", lambda d: d.head(0), r"the log has no rows"),
    replay_row("replay-click-as-float", lambda d: d.with_columns(pl.col("click").cast(pl.Float64)),
               r"column 'click' must be integer, got Float64"),
    replay_row("replay-click-not-binary", set_at("click", 2), r"column 'click' must be 0 or 1"),
    replay_row("replay-timestamp-as-text",
               lambda d: d.with_columns(pl.col("timestamp").cast(pl.String)),
               r"column 'timestamp' must be a datetime"),
    replay_row("replay-watch-time-as-text",
               lambda d: d.with_columns(pl.col("watch_time").cast(pl.String)),
               r"column 'watch_time' must be numeric"),
    replay_row("replay-watch-time-nan", set_at("watch_time", float("nan")),
               r"column 'watch_time' must be finite \(no NaN or inf\); first offending rows: 1"),
    replay_row("replay-watch-time-inf", set_at("watch_time", float("inf")),
               r"column 'watch_time' must be finite"),
    replay_row("replay-negative-watch-time", set_at("watch_time", -1.0, rows=(4,)),
               r"column 'watch_time' must be >= 0; first offending rows: 4 \(-1\.0\)"),
    replay_row("replay-propensity-zero", set_at("propensity", 0.0),
               r"column 'propensity' must be in \(0, 1\]"),
    replay_row("replay-propensity-above-one", set_at("propensity", 1.0001),
               r"column 'propensity' must be in \(0, 1\]"),
    replay_row("replay-propensity-nan", set_at("propensity", float("nan")),
               r"column 'propensity' must be finite"),
    replay_row("replay-negative-position", set_at("position", -1),
               r"column 'position' must be >= 0"),
    replay_row("replay-null-user", set_at("user_id", None),
               r"column 'user_id' has null values; first offending rows: 1"),
    replay_row("replay-user-id-overflow",
               lambda d: d.with_columns(pl.col("user_id").cast(pl.UInt64)).pipe(
                   set_at("user_id", 2**64 - 1, dtype=pl.UInt64)),
               r"column 'user_id' has values out of range for Int64"),
    replay_row("replay-duplicate-slot", set_at("position", 0),
               r"\(request_id, position\) is not unique"),
    replay_row("replay-request-at-two-times",
               lambda d: d.with_columns(
                   pl.when(pl.int_range(pl.len()) == 1)
                   .then(pl.col("timestamp") + pl.duration(seconds=1))
                   .otherwise(pl.col("timestamp"))),
               r"column 'timestamp' differs between rows of one request_id"),
    replay_row("replay-request-for-two-users", lambda d: d.pipe(set_at("user_id", 10**6)),
               r"column 'user_id' differs between rows of one request_id"),
    replay_row("replay-user-not-in-world", _last_request(user_id=10**6),
               r"column 'user_id': user_id 1000000 .*is not a user of this world"),
    replay_row("replay-scenario-not-in-config", set_at("scenario", "ghost"),
               r"column 'scenario' has scenarios not in the config"),
    replay_row("replay-no-experiment-period", _pre_period_only,
               r"no logged exposures at or after"),
    Row("replay-truncated-parquet", lambda c: _replay_args(c, _truncated_copy(c)),
        r"cannot read .*logs\.parquet as parquet"),
    Row("replay-empty-parquet-file",
        lambda c: _replay_args(c, _bytes_copy(c, b"")), r"cannot read .*logs\.parquet as parquet"),
    Row("replay-csv-named-parquet",
        lambda c: _replay_args(c, _bytes_copy(c, b"request_id,click\n1,0\n")),
        r"cannot read .*logs\.parquet as parquet"),
    Row("replay-manifest-not-json", lambda c: _replay_args(c, _manifest(c, "{")),
        r"manifest\.json: unreadable manifest"),
    Row("replay-manifest-a-list", lambda c: _replay_args(c, _manifest(c, "[1, 2]")),
        r"manifest\.json: unreadable manifest"),
    Row("replay-manifest-bad-config", lambda c: _replay_args(c, _manifest_cfg(c)),
        r"world\.n_users: must be an integer"),
    Row("replay-real-logs-learned-model",
        lambda c: ["replay", "--policy", "mixed", "--logs", str(_real_logs(c)), "--config",
                   str(c.cfg), "--out", str(c.out), "--quiet"],
        r"model 'mixed' needs a log folder's users and items"),
    replay_row("replay-log-item-not-in-items", set_at("item_id", 10_000_000, rows=(0,)),
               r"column 'item_id' has items not in .*items\.parquet"),
    # ------------------------------------------------------------ aa / coverage / power
    cfg_row("aa-bad-config", AA, _put(0, "world", "n_users"), r"world\.n_users: must be >= 2"),
    cfg_row("aa-allocation-unknown-arms", AA,
            _put({"a": 0.5, "b": 0.5}, "experiment", "allocation"),
            r"experiment\.allocation: must give shares for exactly 'control' and 'treatment'"),
    Row("aa-zero-runs", lambda c: ["aa", "--runs", "0", "--config", str(c.cfg)],
        r"invalid count 0"),
    Row("aa-out-under-a-file",
        lambda c: ["aa", "--model", "popular", "--config", str(c.cfg), "--out",
                   str(c.blocker / "aa"), "--quiet"],
        r"output folder .*blocker/aa is not writable"),
    cfg_row("coverage-bad-config", ["coverage", "--treatment", "popular", "--control", "random",
                                    "--out", "OUT", "--quiet"], "[", r"not valid YAML"),
    Row("power-zero-lift", lambda c: ["power", "--lift", "0", "--config", str(c.cfg)],
        r"invalid lift 0\.0"),
    # ------------------------------------------------------------ report
    Row("report-no-results", lambda c: _report_dir(c, None), r"has no results\.json: not a run"),
    Row("report-missing-folder", lambda c: ["report", str(c.tmp / "gone")], r"does not exist"),
    Row("report-folder-is-a-file", lambda c: ["report", str(c.blocker)], r"is not a folder"),
    Row("report-results-not-json", lambda c: _report_dir(c, "{\"treatment\": "),
        r"results\.json is not valid JSON: .* at line 1 column \d+"),
    Row("report-results-a-list", lambda c: _report_dir(c, "[]"), r"must be a JSON object"),
    Row("report-results-missing-key",
        lambda c: _report_dir(c, _results(lambda r: r.pop("scenarios"))),
        r"missing required key 'scenarios'"),
    Row("report-results-no-scenarios",
        lambda c: _report_dir(c, _results(lambda r: r.update(scenarios={}))),
        r"'scenarios' must be a non-empty object"),
    Row("report-results-metric-not-object",
        lambda c: _report_dir(c, _results(_first_scenario_metrics)),
        r"metrics\.ctr' must be an object"),
]  # fmt: skip


def _truncated_copy(ctx: Ctx) -> Path:
    return _bytes_copy(ctx, _truncate((ctx.logs / "logs.parquet").read_bytes()))


def _bytes_copy(ctx: Ctx, content: bytes) -> Path:
    folder = ctx.log_folder(name="broken")
    (folder / "logs.parquet").write_bytes(content)
    seal(folder)
    return folder / "logs.parquet"


def test_the_table_covers_every_command():
    commands = {}
    for row in ROWS:
        commands[row.id.split("-")[0]] = commands.get(row.id.split("-")[0], 0) + 1
    assert len(ROWS) >= 40 and len({r.id for r in ROWS}) == len(ROWS)
    assert set(commands) >= {"generate", "train", "evaluate", "run", "replay", "aa", "report"}


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_exits_2_with_one_error_line(row: Row, ctx: Ctx, capsys):
    args = row.build(ctx)
    before = snapshot(ctx.tmp)
    rc, stderr = run_main(args, capsys)
    assert rc == 2, f"exit {rc}; stderr: {stderr}"
    check_error(stderr, row.pattern)
    after = snapshot(ctx.tmp)
    changed = [p for p, h in before.items() if after.get(p) != h]
    assert not changed, f"files changed or removed by a failed command: {changed}"


# ---------------------------------------------------------------------------- end to end


SUBPROCESS_ROWS = [
    "generate-malformed-yaml", "train-checkpoint-from-another-config", "replay-truncated-parquet",
    "report-results-not-json",
]  # fmt: skip


@pytest.mark.parametrize("row_id", SUBPROCESS_ROWS)
def test_bad_input_end_to_end_has_no_traceback(row_id: str, ctx: Ctx):
    row = next(r for r in ROWS if r.id == row_id)
    args = row.build(ctx)
    before = snapshot(ctx.tmp)
    env = {**os.environ, "ABTEST_CACHE": str(ctx.cache), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "abtest", *args], cwd=ctx.tmp, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    check_error(proc.stderr, row.pattern)
    assert proc.stdout == ""
    after = snapshot(ctx.tmp)
    assert all(after.get(p) == h for p, h in before.items())


# ---------------------------------------------------------------------------- not errors


def test_row_order_of_a_log_does_not_matter(world):
    """Rows out of time order in the file are fine: the reader sorts them."""
    logs = read_logs(world["base"] / "cache" / world["log_rel"])
    shuffled = logs.sample(fraction=1.0, shuffle=True, seed=1)
    assert not shuffled.equals(logs)
    assert validate_logs(shuffled).equals(logs)
