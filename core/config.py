"""Typed, validated configuration: `scenarios.yaml` parsed into frozen dataclasses.

Every field declares its type and allowed range in its dataclass metadata; one generic
builder walks the YAML tree, so every problem is reported with its key path and the bad
value (``scenarios[2].traffic_share: must be > 0, got -0.1``). All problems found are
collected and raised together in one :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.errors import UserError
from core.strict_yaml import MAX_BYTES, load_yaml

# names the report and results.json use for their own rows and families
RESERVED_SCENARIO_NAMES = ("overall", "all")


class ConfigError(UserError):
    """A config file that cannot be used; `problems` lists each problem with its key path."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        shown = "; ".join(problems[:8])
        more = f"; ... and {len(problems) - 8} more" if len(problems) > 8 else ""
        super().__init__(f"invalid config {source}: {shown}{more}")


def _f(default: Any = dataclasses.MISSING, *, ge=None, gt=None, le=None, lt=None, doc=""):
    """A dataclass field with a numeric range check."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "doc": doc}
    if isinstance(default, dict | list):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, kw_only=True)
class ContentType:
    share: float = _f(gt=0, le=1)
    mean_duration: float = _f(gt=0, le=86_400)


@dataclass(frozen=True, kw_only=True)
class Completion:
    intercept: float = _f(-0.5, ge=-10, le=10)
    slope: float = _f(0.35, ge=0, le=10)
    concentration: float = _f(4.0, gt=0, le=1000)


@dataclass(frozen=True, kw_only=True)
class WorldConfig:
    n_users: int = _f(ge=2, le=50_000_000)
    n_items: int = _f(ge=2, le=10_000_000)
    latent_dim: int = _f(16, ge=2, le=512)
    n_categories: int = _f(20, ge=1, le=100_000)
    category_spread: float = _f(0.7, ge=0, le=10)
    affinity_scale: float = _f(6.0, gt=0, le=100)
    quality_sd: float = _f(0.5, ge=0, le=10)
    activity_sigma: float = _f(1.0, ge=0, le=5)
    profile_features: dict[str, int] = _f({"age": 6, "gender": 2}, ge=2, le=10_000)
    profile_signal: float = _f(2.0, ge=0, le=100)
    history_length: int = _f(20, ge=0, le=1000)  # 0: no click-history feature
    content_types: dict[str, ContentType] = _f()
    duration_sigma: float = _f(0.6, ge=0, le=5)
    completion: Completion = field(default_factory=Completion)
    skip_seconds: float = _f(2.0, gt=0, le=3600)


@dataclass(frozen=True, kw_only=True)
class TrafficConfig:
    sessions_per_user_day: float = _f(0.5, gt=0, le=1000)
    diurnal_amplitude: float = _f(0.6, ge=0, lt=1)
    diurnal_peak_hour: float = _f(21.0, ge=0, lt=24)
    browse_seconds: float = _f(6.0, gt=0, le=3600)


@dataclass(frozen=True, kw_only=True)
class LeaveConfig:
    intercept: float = _f(-0.2, ge=-20, le=20)
    click_weight: float = _f(3.0, ge=0, le=100)
    watch_weight: float = _f(1.5, ge=0, le=100)
    max_pages: int = _f(12, ge=1, le=1000)


@dataclass(frozen=True, kw_only=True)
class ScenarioConfig:
    name: str = _f()
    kind: Literal["feed", "immersive"] = _f()
    traffic_share: float = _f(gt=0, le=1)
    content_types: tuple[str, ...] = _f()
    slate_size: int = _f(10, ge=1, le=200)
    base_logit: float = _f(-3.0, ge=-20, le=20)
    position_decay: float = _f(0.3, ge=0, le=10)
    shared_interest: float = _f(0.7, ge=0, le=1)
    systematic_shift: float = _f(0.0, ge=0, le=1)  # share of the scenario-specific taste
    item_view_shift: float = _f(0.2, ge=0, le=1)


@dataclass(frozen=True, kw_only=True)
class PeriodsConfig:
    start_date: str = _f("2026-03-02")
    pre_days: int = _f(7, ge=1, le=3650)
    experiment_days: int = _f(7, ge=1, le=3650)

    @property
    def total_days(self) -> int:
        return self.pre_days + self.experiment_days


@dataclass(frozen=True, kw_only=True)
class LoggingPolicyConfig:
    epsilon: float = _f(0.05, ge=0, le=1)
    popularity_weight: float = _f(1.0, ge=0, le=100)
    personalization_weight: float = _f(1.0, ge=0, le=100)
    personalization_noise: float = _f(1.5, ge=0, le=100)
    tier_size: int = _f(4, ge=1, le=10_000)
    temperature: float = _f(1.0, gt=0, le=1000)


@dataclass(frozen=True, kw_only=True)
class EngineConfig:
    batch_window: float = _f(300.0, ge=0, le=86_400)


@dataclass(frozen=True, kw_only=True)
class ServingConfig:
    """The serving stack of both arms: recall (the arm's model) -> shared ranker -> slate."""

    candidates: int = _f(100, ge=1, le=10_000)  # top-N recalled from the arm's faiss index
    index: Literal["flat", "hnsw", "ivf"] = _f("flat")
    ranker: Literal["noisy_truth", "recall_score"] = _f("noisy_truth")
    ranker_noise: float = _f(1.0, ge=0, le=100)  # sd of the noisy-truth ranker's error (logits)
    capacity: int = _f(2, ge=0, le=100_000)  # batch servers per arm; 0 = unlimited, no latency
    service_ms_per_batch: float = _f(5.0, ge=0, le=1e6)  # fixed cost of one batched call
    service_ms_per_request: float = _f(0.2, ge=0, le=1e6)  # marginal cost per request


@dataclass(frozen=True, kw_only=True)
class ExperimentConfig:
    allocation: dict[str, float] = _f({"control": 0.5, "treatment": 0.5}, gt=0, le=1)
    salt: str = _f("recall-ab-1")
    alpha: float = _f(0.05, gt=0, lt=1)


@dataclass(frozen=True, kw_only=True)
class Config:
    world: WorldConfig
    scenarios: tuple[ScenarioConfig, ...]
    seed: int = _f(0, ge=0, le=2**63 - 1)
    traffic: TrafficConfig = field(default_factory=TrafficConfig)
    leave: LeaveConfig = field(default_factory=LeaveConfig)
    periods: PeriodsConfig = field(default_factory=PeriodsConfig)
    logging_policy: LoggingPolicyConfig = field(default_factory=LoggingPolicyConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)

    @property
    def scenario_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.scenarios)

    def scenario_index(self, name: str) -> int:
        try:
            return self.scenario_names.index(name)
        except ValueError:
            raise UserError(
                f"unknown scenario {name!r}; known: {', '.join(self.scenario_names)}"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)

    def fingerprint(self, sections: tuple[str, ...] | None = None) -> str:
        """Stable hash of the config, or of some top-level sections (for caches, run records).

        Mapping order is kept, not sorted: the world draws content types and profile
        features in their listed order, so reordering them makes a different world.
        """
        tree = self.to_dict()
        if sections is not None:
            tree = {k: tree[k] for k in sections}
        blob = json.dumps(tree, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_seed(self, seed: int) -> Config:
        return dataclasses.replace(self, seed=seed)


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, tuple | list):
        return [_to_plain(v) for v in obj]
    return obj


# --------------------------------------------------------------------------- building


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Builder:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def build(self, tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
        origin = typing.get_origin(tp)
        if dataclasses.is_dataclass(tp):
            return self.build_dataclass(tp, value, path)
        if origin is Literal:
            choices = typing.get_args(tp)
            if value not in choices:
                self.fail(
                    path, f"must be one of {', '.join(map(str, choices))}, got {_describe(value)}"
                )
            return value
        if origin is tuple:
            (item_tp, _) = typing.get_args(tp)
            if not isinstance(value, list) or not value:
                self.fail(path, f"must be a non-empty list, got {_describe(value)}")
                return ()
            return tuple(self.build(item_tp, v, f"{path}[{i}]", meta) for i, v in enumerate(value))
        if origin is dict:
            _, val_tp = typing.get_args(tp)
            if not isinstance(value, dict) or not value:
                self.fail(path, f"must be a non-empty mapping, got {_describe(value)}")
                return {}
            out = {}
            for k, v in value.items():
                if not isinstance(k, str) or not k:
                    self.fail(path, f"keys must be non-empty strings, got {_describe(k)}")
                    continue
                out[k] = self.build(val_tp, v, f"{path}.{k}", meta)
            return types.MappingProxyType(out)
        return self.build_scalar(tp, value, path, meta)

    def build_scalar(self, tp: Any, value: Any, path: str, meta: Mapping[str, Any]) -> Any:
        if tp is bool:
            if not isinstance(value, bool):
                self.fail(path, f"must be true or false, got {_describe(value)}")
            return value
        if tp is str:
            if not isinstance(value, str) or not value.strip():
                self.fail(path, f"must be a non-empty string, got {_describe(value)}")
            return value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(path, f"must be an integer, got {_describe(value)}")
                return value
        elif tp is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                self.fail(path, f"must be a number, got {_describe(value)}")
                return value
            value = float(value)
            if not math.isfinite(value):
                self.fail(path, f"must be finite, got {_describe(value)}")
                return value
        self.check_range(value, path, meta)
        return value

    def check_range(self, value: Any, path: str, meta: Mapping[str, Any]) -> None:
        checks = (
            ("ge", lambda v, b: v >= b, ">="),
            ("gt", lambda v, b: v > b, ">"),
            ("le", lambda v, b: v <= b, "<="),
            ("lt", lambda v, b: v < b, "<"),
        )
        for key, ok, sym in checks:
            bound = meta.get(key)
            if bound is not None and not ok(value, bound):
                self.fail(path, f"must be {sym} {bound}, got {_describe(value)}")
                return

    def build_dataclass(self, cls: type, value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            self.fail(path or "<top>", f"must be a mapping, got {_describe(value)}")
            return None
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in value:
            if key not in fields:
                where = f"{path}.{key}" if path else str(key)
                known = ", ".join(fields)
                self.fail(where, f"unknown key (known keys: {known})")
        kwargs = {}
        before = len(self.problems)
        for name, f in fields.items():
            where = f"{path}.{name}" if path else name
            if name not in value:
                no_default = (
                    f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                )
                if no_default:
                    self.fail(where, "missing required key")
                continue
            if value[name] is None:
                self.fail(where, "must not be empty (null)")
                continue
            kwargs[name] = self.build(hints[name], value[name], where, f.metadata)
        if len(self.problems) > before:
            return None
        return cls(**kwargs)


def _cross_checks(cfg: Config, b: _Builder) -> None:
    names = [s.name for s in cfg.scenarios]
    for i, name in enumerate(names):
        if name in names[:i]:
            b.fail(f"scenarios[{i}].name", f"duplicate scenario name {name!r}")
        if name.strip().lower() in RESERVED_SCENARIO_NAMES:
            b.fail(
                f"scenarios[{i}].name",
                f"{name!r} is reserved for the report's own rows "
                f"({', '.join(RESERVED_SCENARIO_NAMES)}); rename the scenario",
            )
    total = sum(s.traffic_share for s in cfg.scenarios)
    if abs(total - 1.0) > 1e-6:
        b.fail("scenarios[*].traffic_share", f"must sum to 1, got {total:.6g}")
    ctypes = cfg.world.content_types
    for i, s in enumerate(cfg.scenarios):
        for j, ct in enumerate(s.content_types):
            if ct not in ctypes:
                b.fail(
                    f"scenarios[{i}].content_types[{j}]",
                    f"unknown content type {ct!r} (world.content_types: {', '.join(ctypes)})",
                )
        twice = sorted({c for c in s.content_types if s.content_types.count(c) > 1})
        if twice:
            b.fail(
                f"scenarios[{i}].content_types",
                f"lists a content type twice: {', '.join(map(repr, twice))}",
            )
        need = s.slate_size * cfg.logging_policy.tier_size
        pool_share = sum(ctypes[c].share for c in s.content_types if c in ctypes)
        pool_expected = pool_share * cfg.world.n_items
        if pool_expected < need:
            b.fail(
                f"scenarios[{i}].slate_size",
                f"slate_size {s.slate_size} x logging_policy.tier_size "
                f"{cfg.logging_policy.tier_size} = {need} needs a larger item pool "
                f"(about {pool_expected:.0f} items)",
            )
    shares = sum(c.share for c in ctypes.values())
    if abs(shares - 1.0) > 1e-6:
        b.fail("world.content_types[*].share", f"must sum to 1, got {shares:.6g}")
    arms = list(cfg.experiment.allocation)
    alloc = sum(cfg.experiment.allocation.values())
    if sorted(arms) != ["control", "treatment"]:  # the arms the experiment serves
        b.fail(
            "experiment.allocation",
            "must give shares for exactly 'control' and 'treatment', "
            f"got {', '.join(map(repr, arms)) or 'none'}",
        )
    elif alloc > 1 + 1e-9:
        b.fail("experiment.allocation", f"shares must sum to at most 1, got {alloc:.6g}")
    try:
        dt.date.fromisoformat(cfg.periods.start_date)
    except ValueError:
        b.fail("periods.start_date", f"must be a date YYYY-MM-DD, got {cfg.periods.start_date!r}")


def config_from_dict(data: Any, source: str = "<config>") -> Config:
    """Build and validate a :class:`Config` from a parsed YAML tree."""
    periods = data.get("periods") if isinstance(data, dict) else None
    if isinstance(periods, dict) and isinstance(periods.get("start_date"), dt.date):
        # YAML reads an unquoted 2026-03-02 as a date; accept it as the date it is.
        data = {**data, "periods": {**periods, "start_date": periods["start_date"].isoformat()}}
    b = _Builder()
    cfg = b.build_dataclass(Config, data, "")
    if cfg is not None:
        _cross_checks(cfg, b)
    if b.problems:
        raise ConfigError(source, b.problems)
    return cfg


def load_config(path: str | Path) -> Config:
    """Read `path` strictly (:func:`core.strict_yaml.load_yaml`) and validate it."""
    path = Path(path)
    return config_from_dict(load_config_tree(path), str(path))


def load_config_tree(path: str | Path) -> Any:
    """The YAML tree of the config file `path`, read strictly but not yet validated: for
    callers that change a few values before :func:`config_from_dict` (benchmarks, tests)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:  # refused before reading: a huge file would take minutes
            raise UserError(
                f"invalid config {path}: {size:,} bytes, more than the {MAX_BYTES:,}-byte "
                "limit for a config file"
            )
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"config path is a directory, not a file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read config {path}: {exc}") from None
    data = load_yaml(text, str(path))
    if data is None:
        raise UserError(f"invalid config {path}: the file is empty")
    return data
