"""argparse `type=` converters shared by the command-line commands (`abtest.cli.main` and the
`replay` command in `abtest.offline.replay`): a bad value raises ``ArgumentTypeError``, which
argparse turns into the one-line usage error."""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def name_list(text: str, known: Sequence[str], what: str, known_label: str = "known") -> list[str]:
    """Comma-separated names, each one of `known`: ``"a, b"`` -> ``["a", "b"]``."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"{known_label}: {', '.join(known)}"
        )
    return names
