"""scenarios.yaml: the default config's requirements, every validation rule, file and CLI errors."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import math
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from abtest.cli.main import main
from core.config import Config, ConfigError, config_from_dict, load_config
from core.errors import UserError
from tests.conftest import DEFAULT_YAML, FAST, ROOT, default_tree

_DEFAULT = default_tree()


def _tree() -> dict:
    """A fresh copy of `default_tree()` (parsed once: YAML parsing dominates these tests)."""
    return copy.deepcopy(_DEFAULT)


# --- the default config ------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_config() -> Config:
    return load_config(DEFAULT_YAML)


def test_default_config_loads(default_config):
    assert default_config.world.n_users == 8000
    assert default_config.scenario_names[0] == "home_feed"
    assert math.isclose(sum(s.traffic_share for s in default_config.scenarios), 1.0)
    assert default_config == config_from_dict(_tree())


def test_default_config_meets_product_requirements(default_config):
    scenarios = default_config.scenarios
    assert len(scenarios) >= 5
    major = [s.traffic_share for s in scenarios if s.traffic_share >= 0.2]
    assert len(major) >= 2
    assert sum(major) >= 0.70
    minor = [s.name for s in scenarios if s.traffic_share <= 0.05]
    assert len(minor) >= 2
    assert {"feed", "immersive"} <= {s.kind for s in scenarios}
    overlapping = [
        (a.name, b.name)
        for a, b in itertools.combinations(scenarios, 2)
        if set(a.content_types) & set(b.content_types)
    ]
    assert overlapping, "no two scenarios share a content type"
    for s in scenarios:
        assert set(s.content_types) <= set(default_config.world.content_types)


# --- fingerprint -------------------------------------------------------------------------


def _leaf_paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaf_paths(v, (*prefix, k))
    elif isinstance(node, list) and node and isinstance(node[0], dict):
        for i, v in enumerate(node):
            yield from _leaf_paths(v, (*prefix, i))
    else:
        yield prefix


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def _set(tree, path, value):
    _get(tree, path[:-1])[path[-1]] = value


def _changed(value):
    """A different value of the same kind that keeps the config valid (where it matters)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 0.999 if value else 0.001
    if isinstance(value, str):
        return value + "x" if not value[:1].isdigit() else "2026-03-03"
    if isinstance(value, list):
        return list(reversed(value))
    raise AssertionError(f"unexpected leaf {value!r}")


def test_fingerprint_stable_for_the_same_tree():
    a, b = config_from_dict(_tree()), config_from_dict(_tree())
    assert a is not b
    assert a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 16
    assert a.fingerprint() == a.fingerprint()
    # Top-level key order in the file is irrelevant (dataclass field order is fixed).
    tree = _tree()
    shuffled = dict(reversed(list(tree.items())))
    assert config_from_dict(shuffled).fingerprint() == a.fingerprint()


def test_fingerprint_changes_when_any_value_changes():
    base = config_from_dict(_tree()).fingerprint()
    paths = list(_leaf_paths(_tree()))
    assert len(paths) > 60
    seen = {base}
    for path in paths:
        tree = _tree()
        _set(tree, path, _changed(_get(tree, path)))
        try:
            cfg = config_from_dict(tree)
        except ConfigError:
            continue  # e.g. a share that no longer sums to 1: not a config to fingerprint
        fp = cfg.fingerprint()
        assert fp not in seen, f"changing {path} did not change the fingerprint"
        seen.add(fp)
    assert len(seen) > 50


def test_with_seed_changes_fingerprint():
    cfg = config_from_dict(_tree())
    reseeded = cfg.with_seed(cfg.seed + 1)
    assert reseeded.seed == cfg.seed + 1
    assert reseeded.fingerprint() != cfg.fingerprint()
    assert reseeded.with_seed(cfg.seed).fingerprint() == cfg.fingerprint()
    assert reseeded.world == cfg.world


def test_fingerprint_sees_mapping_order_the_world_depends_on():
    tree = _tree()
    tree["world"]["content_types"] = dict(reversed(list(tree["world"]["content_types"].items())))
    assert config_from_dict(tree).fingerprint() != config_from_dict(_tree()).fingerprint()


# --- bad configs (Open Bandit Pipeline style table) ---------------------------------------


def _put(*path_and_value):
    *path, value = path_and_value

    def mutate(tree):
        _set(tree, tuple(path), value)

    return mutate


def _delete(*path):
    def mutate(tree):
        del _get(tree, path[:-1])[path[-1]]

    return mutate


def _both(*mutations):
    def mutate(tree):
        for m in mutations:
            m(tree)

    return mutate


NAN = yaml.safe_load(".nan")
INF = yaml.safe_load(".inf")

# (id, mutation of default_tree(), regex the ConfigError message must match)
invalid_configs: list[tuple[str, Callable[[dict], None], str]] = [
    ("unknown top-level key", _put("wrold", {}), r"wrold: unknown key \(known keys: world, "),
    ("unknown nested key", _put("world", "n_user", 10), r"world\.n_user: unknown key \(known"),
    ("missing required key", _delete("world", "n_users"), r"world\.n_users: missing required"),
    (
        "missing required scenario key",
        _delete("scenarios", 2, "kind"),
        r"scenarios\[2\]\.kind: missing required key",
    ),
    (
        "string for int",
        _put("world", "n_users", "8000"),
        r"world\.n_users: must be an integer, got '8000'",
    ),
    (
        "list for mapping",
        _put("world", "completion", [1, 2]),
        r"world\.completion: must be a mapping, got \[1, 2\]",
    ),
    (
        "bool for number",
        _put("traffic", "browse_seconds", True),
        r"traffic\.browse_seconds: must be a number, got True",
    ),
    (
        "bool for int",
        _put("world", "latent_dim", False),
        r"world\.latent_dim: must be an integer, got False",
    ),
    (
        "float for int",
        _put("world", "n_users", 10.5),
        r"world\.n_users: must be an integer, got 10\.5",
    ),
    ("negative n_users", _put("world", "n_users", -5), r"world\.n_users: must be >= 2, got -5"),
    ("negative seed", _put("seed", -1), r"^invalid config <config>: seed: must be >= 0, got -1$"),
    (
        "shared_interest > 1",
        _put("scenarios", 1, "shared_interest", 1.5),
        r"scenarios\[1\]\.shared_interest: must be <= 1, got 1\.5",
    ),
    (
        "negative epsilon",
        _put("logging_policy", "epsilon", -0.1),
        r"logging_policy\.epsilon: must be >= 0, got -0\.1",
    ),
    (
        "diurnal_amplitude 1",
        _put("traffic", "diurnal_amplitude", 1.0),
        r"traffic\.diurnal_amplitude: must be < 1, got 1\.0",
    ),
    ("alpha 1", _put("experiment", "alpha", 1), r"experiment\.alpha: must be < 1, got 1\.0"),
    (
        "profile cardinality 1",
        _put("world", "profile_features", "age", 1),
        r"world\.profile_features\.age: must be >= 2, got 1",
    ),
    ("nan", _put("world", "quality_sd", NAN), r"world\.quality_sd: must be finite, got nan"),
    (
        "inf",
        _put("world", "affinity_scale", INF),
        r"world\.affinity_scale: must be finite, got inf",
    ),
    ("nan for int", _put("world", "n_items", NAN), r"world\.n_items: must be an integer, got nan"),
    (
        "traffic shares sum",
        _put("scenarios", 0, "traffic_share", 0.5),
        r"scenarios\[\*\]\.traffic_share: must sum to 1, got 1\.02",
    ),
    (
        "traffic_share 0",
        _put("scenarios", 4, "traffic_share", 0),
        r"scenarios\[4\]\.traffic_share: must be > 0, got 0\.0",
    ),
    (
        "duplicate scenario name",
        _put("scenarios", 3, "name", "home_feed"),
        r"scenarios\[3\]\.name: duplicate scenario name 'home_feed'",
    ),
    (
        "unknown content type",
        _put("scenarios", 2, "content_types", ["image_text", "podcast"]),
        r"scenarios\[2\]\.content_types\[1\]: unknown content type 'podcast' "
        r"\(world\.content_types: short_video, ",
    ),
    (
        "content type twice",
        _put("scenarios", 0, "content_types", ["live", "live"]),
        r"scenarios\[0\]\.content_types: lists a content type twice: 'live'",
    ),
    (
        "content_types not a list",
        _put("scenarios", 0, "content_types", "live"),
        r"scenarios\[0\]\.content_types: must be a non-empty list, got 'live'",
    ),
    (
        "unknown kind",
        _put("scenarios", 0, "kind", "carousel"),
        r"scenarios\[0\]\.kind: must be one of feed, immersive, got 'carousel'",
    ),
    (
        "empty scenario list",
        _put("scenarios", []),
        r"scenarios: must be a non-empty list, got \[\]",
    ),
    (
        "scenario is null",
        _put("scenarios", 1, None),
        r"scenarios\[1\]: must be a mapping, got None",
    ),
    (
        "null value",
        _put("world", "latent_dim", None),
        r"world\.latent_dim: must not be empty \(null\)",
    ),
    (
        "empty name",
        _put("scenarios", 0, "name", " "),
        r"scenarios\[0\]\.name: must be a non-empty string, got ' '",
    ),
    (
        "allocation > 1",
        _put("experiment", "allocation", {"control": 0.6, "treatment": 0.6}),
        r"experiment\.allocation: shares must sum to at most 1, got 1\.2",
    ),
    (
        "allocation 0",
        _put("experiment", "allocation", "treatment", 0),
        r"experiment\.allocation\.treatment: must be > 0, got 0\.0",
    ),
    (
        "bad start_date",
        _put("periods", "start_date", "2026-02-30"),
        r"periods\.start_date: must be a date YYYY-MM-DD, got '2026-02-30'",
    ),
    (
        "content type shares",
        _put("world", "content_types", "live", "share", 0.2),
        r"world\.content_types\[\*\]\.share: must sum to 1, got 1\.1",
    ),
    (
        "content type key not text",
        _put("world", "content_types", 7, {"share": 0.1, "mean_duration": 5}),
        r"world\.content_types: keys must be non-empty strings, got 7",
    ),
    (
        "slate larger than pool",
        _both(_put("logging_policy", "tier_size", 10), _put("scenarios", 1, "slate_size", 200)),
        r"scenarios\[1\]\.slate_size: slate_size 200 x logging_policy\.tier_size 10 = 2000 "
        r"needs a larger item pool \(about 1650 items\)",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "pattern"),
    [pytest.param(m, p, id=i) for i, m, p in invalid_configs],
)
def test_invalid_config(mutate, pattern):
    tree = _tree()
    mutate(tree)
    with pytest.raises(ConfigError, match=pattern) as info:
        config_from_dict(tree)
    assert info.value.problems
    assert str(info.value).startswith("invalid config <config>: ")
    assert "\n" not in str(info.value)


def test_invalid_config_table_is_large_enough():
    assert len(invalid_configs) >= 18
    assert len({i for i, _, _ in invalid_configs}) == len(invalid_configs)


def test_top_level_list_is_reported():
    with pytest.raises(ConfigError, match=r"<top>: must be a mapping, got \[1, 2\]"):
        config_from_dict([1, 2])


def test_all_problems_are_reported_together():
    tree = _tree()
    tree["world"]["n_user"] = 10
    tree["world"]["n_users"] = -5
    tree["scenarios"][0]["kind"] = "carousel"
    tree["experiment"]["alpha"] = 2
    with pytest.raises(ConfigError) as info:
        config_from_dict(tree, "my.yaml")
    err = info.value
    assert err.source == "my.yaml"
    assert len(err.problems) == 4
    expected = (
        "world.n_user: unknown key",
        "world.n_users: must be >= 2, got -5",
        "scenarios[0].kind: must be one of",
        "experiment.alpha: must be < 1, got 2.0",
    )
    for want, got in zip(expected, err.problems, strict=True):
        assert got.startswith(want)
        assert got in str(err)


def test_all_cross_check_problems_are_reported_together():
    tree = _tree()
    tree["scenarios"][0]["traffic_share"] = 0.5
    tree["scenarios"][3]["name"] = "home_feed"
    tree["periods"]["start_date"] = "soon"
    tree["experiment"]["allocation"] = {"a": 0.9, "b": 0.9}
    with pytest.raises(ConfigError) as info:
        config_from_dict(tree)
    paths = [p.split(":")[0] for p in info.value.problems]
    assert paths == [
        "scenarios[3].name",
        "scenarios[*].traffic_share",
        "experiment.allocation",
        "periods.start_date",
    ]


def test_many_problems_are_summarised_but_all_kept():
    tree = _tree()
    for i in range(10):
        tree["world"][f"bogus_{i}"] = i
    with pytest.raises(ConfigError, match=r"; \.\.\. and 2 more$") as info:
        config_from_dict(tree)
    assert len(info.value.problems) == 10
    assert info.value.problems[-1].startswith("world.bogus_9: unknown key")
    assert "bogus_9" not in str(info.value)


# --- files -------------------------------------------------------------------------------


def test_load_config_reads_a_valid_file(write_yaml):
    path = write_yaml(_tree())
    assert load_config(path) == load_config(DEFAULT_YAML)
    assert load_config(str(path)).fingerprint() == load_config(DEFAULT_YAML).fingerprint()


def test_load_config_names_the_file_in_config_errors(write_yaml):
    tree = _tree()
    tree["world"]["n_users"] = -5
    path = write_yaml(tree)
    with pytest.raises(ConfigError, match=rf"invalid config {path}: world\.n_users: must be >= 2"):
        load_config(path)


def _text_file(text: str | bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / "cfg.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
        return path

    return make


bad_files: list[tuple[str, Callable[[Path], Path], str]] = [
    ("missing file", lambda tmp: tmp / "nope.yaml", r"^config file not found: .*nope\.yaml$"),
    ("empty file", _text_file(""), r"^invalid config .*cfg\.yaml: the file is empty$"),
    ("only comments", _text_file("# nothing here\n"), r"the file is empty$"),
    (
        "malformed yaml",
        _text_file("seed: 1\nworld: [unclosed\nscenarios: []\n"),
        r"^invalid config .*cfg\.yaml: not valid YAML at line 3, column 10: expected ',' or ']'",
    ),
    (
        "bad indentation",
        _text_file("seed: 1\nworld:\n  n_users: 5\n   n_items: 3\n"),
        r"not valid YAML at line 4, column 11: mapping values are not allowed here$",
    ),
    (
        "top level is a list",
        _text_file("- seed: 1\n- world: {}\n"),
        r"^invalid config .*cfg\.yaml: <top>: must be a mapping, got \[\{'seed': 1\}",
    ),
    ("top level is a scalar", _text_file("42\n"), r"<top>: must be a mapping, got 42$"),
    ("directory", lambda tmp: tmp, r"^config path is a directory, not a file: "),
    (
        "not utf-8",
        _text_file(b"\xff\xfe\x00seed"),
        r"^cannot read config .*cfg\.yaml: 'utf-8' codec",
    ),
]


@pytest.mark.parametrize(("make", "pattern"), [pytest.param(m, p, id=i) for i, m, p in bad_files])
def test_load_config_bad_file(tmp_path, make, pattern):
    path = make(tmp_path)
    with pytest.raises(UserError, match=pattern) as info:
        load_config(path)
    assert "\n" not in str(info.value)


# --- CLI ---------------------------------------------------------------------------------

SENTINEL = b"PAR1 not really parquet, but it must survive a failed run PAR1"


@pytest.fixture
def out_dir(tmp_path) -> Path:
    out = tmp_path / "out"
    out.mkdir()
    (out / "logs.parquet").write_bytes(SENTINEL)
    return out


def _bad_value_config(tmp: Path) -> Path:
    tree = _tree()
    tree["world"]["n_users"] = -5
    path = tmp / "bad.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def _malformed_config(tmp: Path) -> Path:
    path = tmp / "broken.yaml"
    path.write_text("seed: 1\nworld: [unclosed\n")
    return path


# (id, argv after `generate` given (tmp_path, out), regex on the single stderr line)
cli_failures: list[tuple[str, Callable[[Path, Path], list[str]], str]] = [
    (
        "malformed yaml",
        lambda tmp, out: ["--config", str(_malformed_config(tmp)), "--out", str(out)],
        r"^error: invalid config .*broken\.yaml: not valid YAML at line 3, column 1: ",
    ),
    (
        "bad value",
        lambda tmp, out: ["--config", str(_bad_value_config(tmp)), "--out", str(out)],
        r"^error: invalid config .*bad\.yaml: world\.n_users: must be >= 2, got -5$",
    ),
    (
        "missing file",
        lambda tmp, out: ["--config", str(tmp / "nope.yaml"), "--out", str(out)],
        r"^error: config file not found: .*nope\.yaml$",
    ),
    (
        "bad seed",
        lambda tmp, out: ["--seed", "abc", "--out", str(out)],
        r"^error: python -m abtest generate: argument --seed: invalid seed 'abc': "
        r"must be an integer \(see --help\)$",
    ),
    (
        "unknown option",
        lambda tmp, out: ["--out", str(out), "--bogus"],
        r"^error: python -m abtest: unrecognized arguments: --bogus \(see --help\)$",
    ),
]


def _check_failure(code: int, stdout: str, stderr: str, pattern: str, out: Path) -> None:
    assert code == 2, stderr
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert stderr.endswith("\n")
    assert lines[0].startswith("error: ")
    assert_match(pattern, lines[0])
    assert stdout == ""
    assert sorted(p.name for p in out.iterdir()) == ["logs.parquet"]
    assert (out / "logs.parquet").read_bytes() == SENTINEL


def assert_match(pattern: str, text: str) -> None:
    assert re.search(pattern, text), f"{text!r} does not match {pattern!r}"


@pytest.mark.parametrize(
    ("argv", "pattern"), [pytest.param(a, p, id=i) for i, a, p in cli_failures]
)
def test_cli_subprocess_fails_cleanly(tmp_path, out_dir, argv, pattern):
    proc = subprocess.run(
        [sys.executable, "-m", "abtest", "generate", *argv(tmp_path, out_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    _check_failure(proc.returncode, proc.stdout, proc.stderr, pattern, out_dir)


@pytest.mark.parametrize(
    ("argv", "pattern"), [pytest.param(a, p, id=i) for i, a, p in cli_failures]
)
def test_cli_main_fails_cleanly(tmp_path, out_dir, capsys, monkeypatch, argv, pattern):
    monkeypatch.chdir(ROOT)
    try:
        code = main(["generate", *argv(tmp_path, out_dir)])
    except SystemExit as exc:  # argparse errors exit from inside parse_args
        code = exc.code
    captured = capsys.readouterr()
    _check_failure(code, captured.out, captured.err, pattern, out_dir)


def test_unquoted_yaml_date_is_accepted(write_yaml):
    from core.config import load_config

    path = write_yaml(default_tree())
    text = path.read_text().replace("start_date: '2026-03-02'", "start_date: 2026-03-02")
    assert "start_date: 2026-03-02" in text
    path.write_text(text)
    assert load_config(path).periods.start_date == "2026-03-02"


# ---------------------------------------------------------------- properties (hypothesis)
# config_from_dict on mutated trees builds a valid Config or raises ConfigError, never another
# exception


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def _mutate(tree, data) -> None:
    """One random change somewhere in the tree: replace, scale, delete or add a key."""
    node = tree
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and data.draw(st.booleans()):
            node = child
            continue
        op = data.draw(st.sampled_from(["replace", "scale", "delete", "add"]))
        if op == "replace":
            node[key] = data.draw(VALUES)
        elif op == "scale" and isinstance(child, int | float) and not isinstance(child, bool):
            node[key] = child * data.draw(st.sampled_from([-1, 0, 0.5, 2, 1e6, 1e300]))
        elif op == "delete":
            del node[key]
        elif isinstance(node, dict):
            node[data.draw(st.text(min_size=1, max_size=6))] = data.draw(VALUES)
        else:
            node.append(data.draw(VALUES))
        return


@pytest.mark.usefixtures("no_warnings")
@FAST
@given(st.data())
def test_mutated_configs_build_or_raise_config_error(data):
    tree = default_tree()
    for _ in range(data.draw(st.integers(1, 3))):
        _mutate(tree, data)
    try:
        cfg = config_from_dict(tree, "mutated")
    except ConfigError as exc:
        assert exc.problems and str(exc).startswith("invalid config mutated: ")
        assert all(":" in p for p in exc.problems)  # each problem names its key path
        return
    assert isinstance(cfg, Config)
    assert len(cfg.fingerprint()) == 16  # a valid config serialises (caches key on it)
    assert set(cfg.experiment.allocation) == {"control", "treatment"}


@pytest.mark.usefixtures("no_warnings")
@FAST
@given(st.one_of(st.text(max_size=200), VALUES.map(repr)))
def test_any_config_text_loads_or_raises_user_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "c.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path)
    except UserError as exc:
        assert str(exc) and "\n" not in str(exc).strip()


@pytest.mark.parametrize("name", ["overall", "all", "Overall", " all "])
def test_reserved_scenario_names_are_refused(name):
    tree = default_tree()
    tree["scenarios"][1]["name"] = name
    with pytest.raises(ConfigError, match=r"scenarios\[1\]\.name.*reserved for the report"):
        config_from_dict(tree, "cfg")


def test_duplicate_section_in_a_config_file_is_refused(tmp_path):
    text = DEFAULT_YAML.read_text() + "\nseed: 7\n"
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=r"duplicate key 'seed' at lines \d+ and \d+"):
        load_config(path)
