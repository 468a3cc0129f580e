"""A world fitted from logs: the :class:`World` the engine serves from a :class:`FittedParams`.

:class:`FittedWorld` implements :class:`simulator.world.World` with the fitted family of
:mod:`simulator.fitted_params`, so the engine, serving, the twin and OPE truth run on it
unchanged. The response model has the synthetic world's structure, with the fitted terms:

* affinity(s, u, i) = (T_s u_u) . v_i + b_i; P(click | k) = sigmoid(affinity + base_s) * theta_sk;
* completion ~ Beta(mean * c, (1 - mean) * c), mean = sigmoid(c0 + c1 * affinity), (c0, c1, c)
  those of the item's content type; immersive exposures autoplay for
  min(duration, skip_seconds * Exp(1)) and a view watches on from there;
* after a page the user continues with P = sigmoid(l0_s + l1_s * CTR + l2_s * mean watched
  fraction), never beyond ``max_pages``; the next page comes ``watch + browse`` seconds
  later, browse = 2 + think_seconds[s] * Exp(1) (the synthetic world's browse time with
  ``browse_seconds = think_seconds``; :mod:`simulator.response_fit` fits think_seconds as the
  mean gap beyond the watch time and those 2 s).

Every draw comes from :mod:`core.keyed`, keyed by (seed, request, position) with the synthetic
world's component names. Scores are batch-independent bit for bit: the preferences
``T_s u_u`` (computed once) and the item factors are rounded to a power-of-two grid fine enough
that every inner product is exact in float64 (:func:`exact_grid`), as the synthetic world does
with its 2^-12 grid; the rounding moves an affinity by at most ``d * max|x| * grid``.

The artefact: :func:`save_world` writes ``params.npz`` (arrays only, ``numpy.savez``) and
``world.json`` (strings, scalars, shapes, the caller's meta, the sha256 of ``params.npz`` and a
self-digest), through a staging folder, ``world.json`` last; :func:`load_world` reads it back
without pickle and refuses a damaged, edited or mismatched one with a one-line
:class:`~core.errors.UserError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import zipfile
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from scipy import special

from core import fileio, keyed
from core.config import RESERVED_SCENARIO_NAMES, Config, config_from_dict
from core.digest import file_sha256, text_sha256
from core.errors import UserError
from core.staging import staging_dir
from simulator.fitted_params import SCALAR_FIELDS, STRING_FIELDS, FittedParams
from simulator.world import IMMERSIVE, Items, Responses, Scenario, Users

BROWSE_FLOOR_SECONDS = 2.0  # every page's browse time: this + think_seconds * Exp(1)


# --------------------------------------------------------------------------- exact scores


def exact_grid(a: np.ndarray, b: np.ndarray) -> float:
    """A power-of-two grid on which every inner product of rows of `a` and `b` is exact.

    With both rounded to multiples of 2^-g, each product is a multiple of 2^-2g and a sum of d
    of them stays below 2^53 units when d * max|a| * max|b| * 2^(2g) <= 2^52: then no partial
    sum rounds, whatever the summation order (BLAS blocking, batch size). g is capped at 30.
    """
    d = max(a.shape[-1], 1)
    ma = max(float(np.abs(a).max(initial=0.0)), 2.0**-20) + 1.0
    mb = max(float(np.abs(b).max(initial=0.0)), 2.0**-20) + 1.0
    g = min(30, math.floor((52 - math.log2(d * ma * mb)) / 2))
    return 2.0**-g


def quantise(x: np.ndarray, grid: float) -> np.ndarray:
    """Round to multiples of `grid` (a power of two: exact scaling)."""
    return np.round(x / grid) * grid


# --------------------------------------------------------------------------- config


def _clip(x: float, lo: float, hi: float) -> float:
    return float(min(max(float(x), lo), hi))


def fitted_config(params: FittedParams, template: Config) -> Config:
    """The template config with the fitted world's sizes, scenarios and traffic.

    Taken from the params: ``world.n_users``/``n_items``/``latent_dim``/``n_categories``,
    the content types present in the catalogue (share of items, mean duration),
    ``profile_features`` (cardinalities; the template's are kept when there are none),
    ``skip_seconds``, the scenarios (names, kinds, traffic shares, slate sizes, the content
    types of their pools, base logits), ``leave.max_pages``,
    ``traffic.sessions_per_user_day`` and ``traffic.browse_seconds`` (the share-weighted
    mean think time). ``logging_policy.tier_size`` is lowered where a
    pool is too small for slate_size x tier_size. Values outside the config's ranges are
    clipped into them (the config only describes the world; the params are its truth), and
    the template's other settings (seed, periods, serving, experiment, the synthetic world's
    own parameters) are kept. Scenario names are the params' even where the config reserves
    them for the report's rows ("all", "overall"): they are validated under a stand-in name.
    """
    p = params
    tree = template.to_dict()
    names = p.content_type_names
    counts = np.bincount(p.content_type, minlength=len(names))
    present = [c for c in range(len(names)) if counts[c] > 0]
    content_types = {}
    for c in present:
        mean = float(p.duration[p.content_type == c].mean())
        content_types[names[c]] = {
            "share": float(counts[c] / p.n_items),
            "mean_duration": _clip(mean, 1e-3, 86_400),
        }
    world = tree["world"]
    world.update(
        n_users=p.n_users,
        n_items=p.n_items,
        latent_dim=int(min(max(p.dim, 2), 512)),
        n_categories=int(min(max(int(p.category.max(initial=0)) + 1, 1), 100_000)),
        content_types=content_types,
        skip_seconds=_clip(p.skip_seconds, 1e-6, 3600),
    )
    if p.profile_names:
        world["profile_features"] = {
            name: int(min(max(int(p.profile[:, f].max(initial=0)) + 1, 2), 10_000))
            for f, name in enumerate(p.profile_names)
        }
    reserved = {n.strip().lower() for n in RESERVED_SCENARIO_NAMES}
    stand_in = [
        f"fitted_scenario_{s}" if n.strip().lower() in reserved else n
        for s, n in enumerate(p.scenario_names)
    ]
    scenarios, tier = [], int(template.logging_policy.tier_size)
    for s in range(p.n_scenarios):
        pool, k = p.pools[s], int(p.slate_sizes[s])
        types = [names[c] for c in np.unique(p.content_type[pool]).tolist()]
        scenarios.append(
            {
                "name": stand_in[s],
                "kind": p.scenario_kinds[s],
                "traffic_share": float(p.traffic_share[s]),
                "content_types": types,
                "slate_size": k,
                "base_logit": _clip(p.scenario_base[s], -20, 20),
            }
        )
        # the logging policy samples position j from the j-th of k tiers of `tier` items:
        # k x tier must fit in the pool, and pass the config's own estimate of it
        tier = min(tier, pool.size // k)
        expected = sum(content_types[t]["share"] for t in types) * p.n_items
        while tier > 1 and expected < k * tier:
            tier -= 1
    tree["scenarios"] = scenarios
    tree["logging_policy"]["tier_size"] = max(tier, 1)
    tree["leave"]["max_pages"] = int(min(max(int(p.max_pages), 1), 1000))
    think = float(np.dot(p.traffic_share, p.think_seconds))
    tree["traffic"]["sessions_per_user_day"] = _clip(p.sessions_per_user_day, 1e-9, 1000)
    tree["traffic"]["browse_seconds"] = _clip(think, 1e-3, 3600)
    config = config_from_dict(tree, "the fitted world's config")
    if tuple(stand_in) != p.scenario_names:
        real = tuple(
            dataclasses.replace(sc, name=name)
            for sc, name in zip(config.scenarios, p.scenario_names, strict=True)
        )
        config = dataclasses.replace(config, scenarios=real)
    return config


# --------------------------------------------------------------------------- the world


class FittedWorld:
    """A :class:`~simulator.world.World` served from fitted parameters (see the module doc)."""

    def __init__(self, params: FittedParams, template: Config):
        params.check()
        self.params = params
        self.config = fitted_config(params, template)
        p = params
        n_scen = p.n_scenarios
        preference = np.einsum("sij,uj->sui", p.scenario_transform, p.user_factors)
        self.grid = exact_grid(preference, p.item_factors)
        preference = quantise(preference, self.grid)
        factors = quantise(p.item_factors.astype(np.float64), self.grid)
        factors.setflags(write=False)
        self.users = Users(
            p.user_factors.astype(np.float64),
            preference,
            p.activity.astype(np.float64),
            p.profile.astype(np.int32),
            tuple(p.profile_names),
        )
        self.items = Items(
            factors,
            np.broadcast_to(factors, (n_scen, *factors.shape)),  # one view for all scenarios
            p.category.astype(np.int32),
            p.content_type.astype(np.int32),
            tuple(p.content_type_names),
            p.duration.astype(np.float64),
            p.item_bias.astype(np.float64),
        )
        self.scenarios: tuple[Scenario, ...] = tuple(
            Scenario(
                s,
                p.scenario_names[s],
                p.scenario_kinds[s],
                float(p.traffic_share[s]),
                np.asarray(p.pools[s], dtype=np.int64),
                int(p.slate_sizes[s]),
                float(p.scenario_base[s]),
                p.position_bias[s, : int(p.slate_sizes[s])].astype(np.float64),
                float("nan"),  # not a parameter of the fitted family
            )
            for s in range(n_scen)
        )
        self._completion = p.completion.astype(np.float64)  # C x 3
        self._leave = p.leave.astype(np.float64)  # S x 3
        self._think = p.think_seconds.astype(np.float64)  # S

    # ------------------------------------------------------------------ truth functions

    @cached_property
    def pool_masks(self) -> np.ndarray:
        """S x I bool: item i is in scenario s's pool."""
        mask = np.zeros((len(self.scenarios), self.items.n), dtype=bool)
        for sc in self.scenarios:
            mask[sc.index, sc.pool] = True
        return mask

    def affinity(self, scenario: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """B x K affinity of B users for their B x K items (click-logit units)."""
        pref = self.users.preference[scenario, users]
        view = self.items.latent[items]
        return np.einsum("bd,bkd->bk", pref, view) + self.items.quality[items]

    def affinity_matrix(self, scenario: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """B x N affinities of B users for one shared list of N items."""
        pref = self.users.preference[scenario, users]
        return pref @ self.items.latent[items].T + self.items.quality[items][None, :]

    def click_probability(self, scenario: int, affinity: np.ndarray) -> np.ndarray:
        """B x K probability of a click (a view, in immersive scenarios) at positions 0..K-1."""
        sc = self.scenarios[scenario]
        k = affinity.shape[-1]
        return special.expit(affinity + sc.base_logit) * sc.position_bias[:k]

    def completion_mean(self, items: np.ndarray, affinity: np.ndarray) -> np.ndarray:
        """Mean watched share of each exposure if watched, by the item's content type."""
        c = self._completion[self.items.content_type[items]]
        return special.expit(c[..., 0] + c[..., 1] * affinity)

    def expected_watch_time(
        self, scenario: int, items: np.ndarray, affinity: np.ndarray
    ) -> np.ndarray:
        """B x K expected watch time (seconds) of each exposure, clicks and skips included."""
        sc = self.scenarios[scenario]
        dur = self.items.duration[items]
        p = self.click_probability(scenario, affinity)
        completion = self.completion_mean(items, affinity)
        if sc.kind == IMMERSIVE:
            m = self.params.skip_seconds
            skip = m * (1 - np.exp(-dur / m))  # E[min(duration, m Exp(1))]
            return skip + p * completion * (dur - skip)
        return p * dur * completion

    def continue_probability(
        self, scenario: int, click: np.ndarray, watch_fraction: np.ndarray
    ) -> np.ndarray:
        """B probability of going on after a page, from its CTR and mean watched fraction."""
        b0, b_click, b_watch = self._leave[scenario]
        ctr = click.mean(axis=-1)
        watched = watch_fraction.mean(axis=-1)
        return special.expit(b0 + b_click * ctr + b_watch * watched)

    def browse_seconds(self, scenario: int, e: np.ndarray) -> np.ndarray:
        """Browse time for Exp(1) draws `e`: 2 + think_seconds[scenario] * e."""
        return BROWSE_FLOOR_SECONDS + self._think[scenario] * e

    # ------------------------------------------------------------------ sampling

    def respond(
        self,
        scenario: int,
        users: np.ndarray,
        items: np.ndarray,
        request_ids: np.ndarray,
        page: np.ndarray,
        seed: int,
    ) -> Responses:
        """Sample the users' responses to B slates (B x K items) keyed by request and position."""
        sc = self.scenarios[scenario]
        b, k = items.shape
        rid = request_ids[:, None]
        pos = np.arange(k)[None, :]
        aff = self.affinity(scenario, users, items)
        p_click = self.click_probability(scenario, aff)
        click = keyed.uniform(seed, "click", rid, pos) < p_click
        dur = self.items.duration[items]
        completion = np.zeros((b, k))  # share watched beyond any skip; 0 unless clicked
        rows, cols = np.nonzero(click)
        if rows.size:  # completion is only drawn where the item is watched
            watched = items[rows, cols]
            mean = self.completion_mean(watched, aff[rows, cols])
            conc = self._completion[self.items.content_type[watched], 2]
            completion[rows, cols] = keyed.beta(
                seed, "completion", mean * conc, (1 - mean) * conc, rid[rows, 0], cols
            )
        if sc.kind == IMMERSIVE:
            skip = self.params.skip_seconds * keyed.exponential(seed, "skip", rid, pos)
            skip = np.minimum(dur, skip)
            watch = skip + (dur - skip) * completion
        else:
            watch = dur * completion
        p_cont = self.continue_probability(scenario, click, watch / dur)
        cont = keyed.uniform(seed, "leave", request_ids) < p_cont
        cont &= page + 1 < self.params.max_pages
        browse = self.browse_seconds(scenario, keyed.exponential(seed, "browse", request_ids))
        think = watch.sum(axis=1) + browse
        return Responses(click.astype(np.int8), watch, cont, think)


# --------------------------------------------------------------------------- the artefact

PARAMS, WORLD = "params.npz", "world.json"
FORMAT, VERSION, SELF = "fitted-world", 1, "world_sha256"


def _array_names(n_scenarios: int) -> list[str]:
    names = [
        f.name
        for f in dataclasses.fields(FittedParams)
        if f.name not in STRING_FIELDS and f.name not in SCALAR_FIELDS and f.name != "pools"
    ]
    return names + [f"pool_{s}" for s in range(n_scenarios)]


def _self_digest(body: dict[str, Any]) -> str:
    rest = {k: v for k, v in body.items() if k != SELF}
    return text_sha256(json.dumps(rest, sort_keys=True, separators=(",", ":")))


def _scalar(value: Any) -> Any:
    return int(value) if isinstance(value, int | np.integer) else float(value)


def save_world(folder: str | Path, params: FittedParams, meta: dict[str, Any]) -> dict[str, Any]:
    """Write the fitted world artefact into `folder`; returns the ``world.json`` body.

    `meta` (JSON-able: the logs' hash, the fit settings, a diagnostics summary) is stored
    under ``"meta"`` and returned by :func:`load_world`. Files are written in a staging
    folder inside `folder` and moved in, ``world.json`` (which marks a complete artefact)
    last; other files in `folder` are left alone.
    """
    params.check()
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise UserError(f"cannot save the fitted world: meta is not JSON ({exc})") from None
    out = fileio.check_writable_dir(folder)
    arrays = {name: getattr(params, name) for name in _array_names(0)}
    arrays |= {f"pool_{s}": np.asarray(pool) for s, pool in enumerate(params.pools)}
    with staging_dir(out) as stage:
        np.savez(stage / PARAMS, allow_pickle=False, **arrays)
        body = {
            "format": FORMAT,
            "version": VERSION,
            "meta": meta,
            "strings": {name: list(getattr(params, name)) for name in STRING_FIELDS},
            "scalars": {name: _scalar(getattr(params, name)) for name in SCALAR_FIELDS},
            "arrays": sorted(arrays),
            "shapes": params.shapes(),
            "files": {PARAMS: file_sha256(stage / PARAMS)},
        }
        body[SELF] = _self_digest(body)
        (stage / WORLD).write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
        (out / WORLD).unlink(missing_ok=True)  # an artefact without world.json is incomplete
        for name in (PARAMS, WORLD):
            os.replace(stage / name, out / name)
    return body


def _fail(folder: Path, why: str) -> UserError:
    return UserError(f"fitted world {folder}: {why}")


def _read_body(folder: Path) -> dict[str, Any]:
    path = folder / WORLD
    if not folder.is_dir():
        raise _fail(folder, "no such folder (fit one with calibrate)")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail(folder, f"no {WORLD} (not a complete fitted world; refit it)") from None
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise _fail(folder, f"{WORLD} is unreadable ({exc})") from None
    if not isinstance(body, dict):
        raise _fail(folder, f"{WORLD} is unreadable (a JSON object expected)")
    if body.get(SELF) != _self_digest(body):
        raise _fail(folder, f"{WORLD} changed since it was written (digest mismatch)")
    if body.get("format") != FORMAT or body.get("version") != VERSION:
        raise _fail(
            folder,
            f"{WORLD} is not a {FORMAT} version {VERSION} artefact "
            f"(format {body.get('format')!r}, version {body.get('version')!r})",
        )
    return body


def _read_arrays(folder: Path, body: dict[str, Any]) -> dict[str, np.ndarray]:
    path = folder / PARAMS
    want = (body.get("files") or {}).get(PARAMS) if isinstance(body.get("files"), dict) else None
    try:
        got = file_sha256(path)
    except FileNotFoundError:
        raise _fail(folder, f"{PARAMS} is missing") from None
    except OSError as exc:
        raise _fail(folder, f"{PARAMS} is unreadable ({exc.strerror or exc})") from None
    if got != want:
        raise _fail(
            folder,
            f"{PARAMS} changed since it was written (sha256 {got[:12]}…, recorded "
            f"{str(want)[:12]}…): tampered or damaged; refit it",
        )
    if not zipfile.is_zipfile(path):
        raise _fail(folder, f"{PARAMS} is unreadable (not an npz archive)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {name: npz[name] for name in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _fail(folder, f"{PARAMS} is unreadable ({exc})") from None


def load_world(
    folder: str | Path, expect: dict[str, Any] | None = None
) -> tuple[FittedParams, dict[str, Any]]:
    """Read and verify a fitted world artefact; returns its params and the saved meta.

    No pickle: ``numpy.load(allow_pickle=False)``. Refused with a one-line UserError: a
    missing file, an unreadable npz or json, a digest mismatch (edited or damaged files), a
    missing or extra array, a shape other than recorded or inconsistent params, and any
    `expect` entry (e.g. ``{"logs_sha256": ...}``) that the saved meta does not match.
    """
    folder = Path(folder)
    body = _read_body(folder)
    arrays = _read_arrays(folder, body)
    strings, scalars, shapes = body.get("strings"), body.get("scalars"), body.get("shapes")
    if not all(isinstance(x, dict) for x in (strings, scalars, shapes)):
        raise _fail(folder, f"{WORLD} lacks its strings, scalars or shapes")
    missing_keys = [k for k in (*STRING_FIELDS, *SCALAR_FIELDS) if k not in {**strings, **scalars}]
    if missing_keys:
        raise _fail(folder, f"{WORLD} lacks {', '.join(missing_keys)}")
    names = strings["scenario_names"]
    n_scen = len(names) if isinstance(names, list) else 0
    expected = set(_array_names(n_scen))
    missing = sorted(expected - set(arrays))
    extra = sorted(set(arrays) - expected)
    if missing or extra:
        what = "; ".join(
            part
            for part in (
                f"missing array {', '.join(missing)}" if missing else "",
                f"unexpected array {', '.join(extra)}" if extra else "",
            )
            if part
        )
        raise _fail(folder, f"{PARAMS}: {what}")
    for name, arr in arrays.items():
        if list(arr.shape) != shapes.get(name):
            raise _fail(
                folder,
                f"{PARAMS}: array {name} has shape {list(arr.shape)}, "
                f"{WORLD} records {shapes.get(name)}",
            )
    pools = tuple(arrays.pop(f"pool_{s}") for s in range(n_scen))
    try:
        params = FittedParams(
            **{k: tuple(strings[k]) for k in STRING_FIELDS},
            **{k: scalars[k] for k in SCALAR_FIELDS},
            **arrays,
            pools=pools,
        )
        params.check()
    except (TypeError, ValueError) as exc:
        raise _fail(folder, f"inconsistent parameters: {exc}") from None
    meta = body.get("meta")
    meta = meta if isinstance(meta, dict) else {}
    for key, want in (expect or {}).items():
        got = meta.get(key)
        if got != want:
            hint, fix = (
                ("fitted from other logs", "refit it on these logs")
                if "logs" in key
                else ("fitted with other settings", "refit it with these settings")
            )
            raise _fail(folder, f"{hint} ({key} {_short(got)}, expected {_short(want)}); {fix}")
    return params, meta


def _short(value: Any) -> str:
    text = str(value)
    return text[:12] + "…" if len(text) > 16 else text
