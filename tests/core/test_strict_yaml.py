"""core.strict_yaml: duplicate keys, alias bombs and oversized files are refused in one line."""

from __future__ import annotations

import pytest

from core.config import load_config
from core.errors import UserError
from core.strict_yaml import MAX_ALIASES, MAX_BYTES, load_yaml
from tests.conftest import DEFAULT_YAML


def test_plain_yaml_loads_as_safe_load_does():
    assert load_yaml("a: 1\nb: [x, {c: 2.5}]\nd: 2026-03-02\n", "t") == {
        "a": 1,
        "b": ["x", {"c": 2.5}],
        "d": __import__("datetime").date(2026, 3, 2),
    }


def test_the_default_config_is_strict_yaml():
    load_config(DEFAULT_YAML)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("a: 1\na: 2\n", r"duplicate key 'a' at lines 1 and 2"),
        ("w:\n  n: 1\n  m: 2\n  n: 3\n", r"duplicate key 'n' at lines 2 and 4"),
        ("- {x: 1, x: 1}\n", r"duplicate key 'x'"),
        ("a: 1\n1: 2\n1: 3\n", r"duplicate key 1 at lines 2 and 3"),
        ("a: &x [1]\n" + "".join(f"b{i}: *x\n" for i in range(MAX_ALIASES + 1)), "alias"),
        ("a: [1\n", r"not valid YAML at line"),
        ("a: !!python/object:os.system x\n", r"not valid YAML"),
    ],
)
def test_bad_yaml_is_one_user_error(text, match):
    with pytest.raises(UserError, match=match) as exc:
        load_yaml(text, "cfg.yaml")
    assert "\n" not in str(exc.value) and "cfg.yaml" in str(exc.value)


def test_merge_keys_are_not_duplicates():
    assert load_yaml("base: &b {x: 1, y: 2}\nc:\n  <<: *b\n  y: 3\n", "t")["c"] == {"x": 1, "y": 3}


def test_a_few_aliases_are_fine():
    text = "a: &x [1]\n" + "".join(f"b{i}: *x\n" for i in range(MAX_ALIASES))
    assert len(load_yaml(text, "t")) == MAX_ALIASES + 1


def test_oversized_text_refused_before_parsing():
    with pytest.raises(UserError, match=r"more than the 1,048,576-byte limit"):
        load_yaml("#" * (MAX_BYTES + 1), "big.yaml")


def test_oversized_file_refused_before_reading(tmp_path):
    path = tmp_path / "big.yaml"
    with path.open("wb") as f:
        f.truncate(50 * MAX_BYTES)  # sparse: 50 MiB on paper, nothing on disk
    with pytest.raises(UserError, match=r"big.yaml: 52,428,800 bytes, more than"):
        load_config(path)


def test_control_characters_are_a_user_error():
    with pytest.raises(UserError, match="not valid YAML"):
        load_yaml("\x1f", "c.yaml")
