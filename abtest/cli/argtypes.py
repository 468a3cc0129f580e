"""Every argparse ``type=`` converter of the command line: a bad value raises
``ArgumentTypeError``, which argparse turns into the one-line usage error."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence

from abtest.offline.estimators import ESTIMATORS


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


def seed(text: str) -> int:
    """A seed: an integer in [0, 2^63)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: must be an integer") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"invalid seed {value}: must be in [0, 2^63)")
    return value


def positive(text: str) -> int:
    """A count >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: must be an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {value}: must be >= 1")
    return value


def count(maximum: int) -> Callable[[str], int]:
    """A count in [1, `maximum`]: an upper bound keeps every flag's work finite and checked
    before anything runs (``--days 1000000000`` would ask for petabytes)."""

    def convert(text: str) -> int:
        value = positive(text)
        if value > maximum:
            raise argparse.ArgumentTypeError(f"invalid count {value}: the limit is {maximum:,}")
        return value

    convert.__name__ = f"count<={maximum}"
    return convert


# Upper bounds of the count flags (the config's own values have theirs in core.config).
DAYS = count(3650)  # as periods.experiment_days
EPOCHS = count(1000)
SEEDS = count(100)
RUNS = count(100_000)  # re-randomisations: seconds each on the default world
RESAMPLES = count(100_000)  # bootstrap draws per lift
WORKERS = count(1024)


def lift(text: str) -> float:
    """A relative lift in (0, 10), e.g. 0.02."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid lift {text!r}: a number such as 0.02") from None
    if not 0 < value < 10:
        raise argparse.ArgumentTypeError(f"invalid lift {value}: must be in (0, 10), e.g. 0.02")
    return value


def fractions(what: str, open_interval: bool, most: int = 10) -> Callable[[str], list[float]]:
    """Comma-separated distinct numbers in [0, 1] (in (0, 1) if `open_interval`), at most
    `most` of them, returned sorted: ``"0.5, 0"`` -> ``[0.0, 0.5]``."""
    interval = "(0, 1)" if open_interval else "[0, 1]"

    def convert(text: str) -> list[float]:
        parts = [p.strip() for p in text.split(",") if p.strip()]
        if not parts:
            raise argparse.ArgumentTypeError(f"no {what} given: comma-separated numbers")
        values = []
        for part in parts:
            try:
                value = float(part)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"invalid {what} {part!r}: must be a number in {interval}"
                ) from None
            inside = 0 < value < 1 if open_interval else 0 <= value <= 1
            if not inside:  # NaN too
                raise argparse.ArgumentTypeError(f"invalid {what} {part}: must be in {interval}")
            values.append(value + 0.0)  # -0 as 0
        if len(set(values)) < len(values):
            raise argparse.ArgumentTypeError(f"a {what} is given twice in {text!r}")
        if len(values) > most:
            raise argparse.ArgumentTypeError(f"{len(values)} values of {what}: the limit is {most}")
        return sorted(values)

    convert.__name__ = f"{what} list"
    return convert


# The SASS map's grid: systematic shifts in [0, 1], traffic shares in (0, 1).
SHIFT_LIST = fractions("systematic shift", open_interval=False)
SHARE_LIST = fractions("traffic share", open_interval=True)


def model_names(text: str) -> list[str]:
    """Comma-separated model names: of the zoo, or outside models (a factory
    ``package.module:function`` or an embeddings folder's path)."""
    from models.zoo import MODEL_NAMES, OUTSIDE_HELP, outside_kind

    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in MODEL_NAMES and outside_kind(n) is None]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown model {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"known models: {', '.join(MODEL_NAMES)}; {OUTSIDE_HELP}"
        )
    return names


def model_name(text: str) -> str:
    """Exactly one model name (a comma is refused with "one model name expected")."""
    (name,) = model_names(text) if "," not in text else (None,)
    if name is None:
        raise argparse.ArgumentTypeError(f"one model name expected, got {text!r}")
    return name


def one_model(text: str) -> str:
    """Exactly one model name, taken verbatim (the `replay` command's check: no stripping)."""
    from models.zoo import MODEL_NAMES, OUTSIDE_HELP, outside_kind

    if text not in MODEL_NAMES and outside_kind(text) is None:
        raise argparse.ArgumentTypeError(
            f"unknown model {text!r}; known models: {', '.join(MODEL_NAMES)}; {OUTSIDE_HELP}"
        )
    return text


def estimator_list(text: str) -> list[str]:
    """Comma-separated off-policy estimator names (replay, ips, snips, dr)."""
    return name_list(text, ESTIMATORS, "estimator")


def clip_value(text: str) -> float:
    """An importance-weight clip: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid clip {text!r}: must be a number") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"invalid clip {value}: must be > 0")
    return value


def pre_fraction(text: str) -> float:
    """A fraction in (0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid fraction {text!r}: e.g. 0.5") from None
    if not 0 < value < 1:  # NaN too
        raise argparse.ArgumentTypeError(f"invalid fraction {text}: must be in (0, 1)")
    return value


def minutes(text: str) -> float:
    """A duration in minutes, > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid minutes {text!r}: e.g. 30") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"invalid minutes {text}: must be > 0")
    return value
