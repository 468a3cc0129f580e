"""YAML for configs, read strictly: `yaml.safe_load` semantics plus three refusals.

* a mapping that repeats a key (PyYAML keeps the last one silently, so a typo'd duplicate
  section would quietly replace the first) — the error names the key and both lines;
* more than :data:`MAX_ALIASES` alias references (`*name`), which can make a small file
  expand into an exponentially large tree ("billion laughs");
* a text longer than :data:`MAX_BYTES` (a config is a few kilobytes; a huge file would take
  minutes and gigabytes to parse before any validation could complain).

Imports only PyYAML and :mod:`core.errors`.
"""

from __future__ import annotations

from typing import Any

import yaml

from core.errors import UserError

MAX_BYTES = 1 << 20  # 1 MiB; the default scenarios.yaml is about 7 kB
MAX_ALIASES = 100


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys and counts alias references."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(
                    f"more than {MAX_ALIASES} alias references (*name) at line {mark.line + 1}"
                )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden
                continue
            key = self.construct_object(key_node, deep=True)
            mark = key_node.start_mark
            try:
                first = seen.setdefault(key, mark)
            except TypeError:  # an unhashable key: let the base class report it
                continue
            if first is not mark:
                raise yaml.YAMLError(
                    f"duplicate key {key!r} at lines {first.line + 1} and {mark.line + 1}"
                )
        return super().construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping
)


def load_yaml(text: str, source: str) -> Any:
    """Parse `text` (from `source`, for messages) strictly; one-line `UserError` if bad."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > MAX_BYTES:
        raise UserError(
            f"invalid config {source}: {size:,} bytes, more than the {MAX_BYTES:,}-byte limit "
            "for a config file"
        )
    loader = None
    try:
        loader = _StrictLoader(text)  # the reader checks the characters here already
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"invalid config {source}: not valid YAML{where}: {problem}") from None
    finally:
        if loader is not None:
            loader.dispose()
