"""Fit a user-response world (:class:`simulator.fitted_params.FittedParams`) from a log folder.

``fit_world(log_dir, seed=...)`` reads a generated or imported log folder
(:func:`simulator.logs.read_logs` plus ``users.parquet`` / ``items.parquet``), fits every part
of the fitted family on the **pre-period** only (rows before the manifest's
``pre_period_end``; the rest is held out) and returns the parameters with diagnostics measured
on the held-out logs. The parts:

1. **Click model** ``P(click | s,u,i,k) = sigmoid((T_s u_u) . v_i + b_i + base_s) * theta_sk``,
   maximum likelihood on the logged exposures (torch, Adam with a cosine-decayed step,
   minibatches; L2 = a Gaussian prior of precision `l2` on every factor, embedding and bias;
   ``T_s`` initialised to, and shrunk towards, the identity). The factors are built on the
   side tables, as the issue asks: ``u_u = p_u + sum_f E_f[profile_uf]``, ``v_i = q_i +
   C[category_i] + D[content_type_i]``, ``b_i = beta_i + c[category_i] + e[content_type_i]``,
   folded into plain ``user_factors`` / ``item_factors`` / ``item_bias`` on export (so a user
   or item with few exposures borrows from its profile, category and content type). A random
   tenth of the pre-period's requests (keyed by `seed`) picks the epoch with the lowest
   validation log-loss.

   **Position bias**: ``theta_s0 = 1`` and ``theta_sk = sigmoid(rho_sk)`` for k > 0, fitted
   jointly with the rest on all exposures. The position is logged with every exposure and the
   logging policy picks slots from (user, item, slot) only, so the joint likelihood identifies
   theta relative to slot 0 from every exposure, while the uniform slice is 5% of traffic; the
   sigmoid keeps every product a probability. Refitting theta on the uniform slice instead was
   measured worse (errors up to 0.2 against 0.05-0.15 on a misspecified fit, equal on a
   well-specified one); the slice's model-free ratio ``CTR_k / CTR_0`` is reported in the
   diagnostics as a check.

   **Exposure bias** (`correction`). The logging policy shows each user's predicted favourites
   and popular items far more than the rest. Three routes:

   * ``"uniform"`` (default): the factors, transforms and position terms are fitted on every
     exposure; then the *exposure terms* — item biases (with their category / content-type
     parts) and scenario bases — are refitted on the pre-period's uniformly random slice with
     everything else frozen, each shrunk towards its first-stage value (an item the slice
     barely shows keeps it). The slice is unbiased for exactly the terms that selection
     distorts most (an item's level and a scenario's level), while the factors, which need
     volume, use all the data. Without a uniform slice it falls back to ``"ips"``.
   * ``"ips"``: each exposure weighted by ``1 / propensity``, clipped at the 99th percentile
     and self-normalised to mean 1 per scenario; the fit then minimises the log-loss that a
     policy showing every pool item at every slot alike would see. Weights are applied by
     resampling (each epoch draws rows with probability proportional to weight) and the prior
     is scaled to the weights' effective sample size. Without propensities it falls back to
     ``"uniform"``. Why not the default: under an epsilon-greedy logging policy, 1 /
     propensity is ~N / epsilon on the uniform slice and ~1-10 elsewhere, so ~95% of the
     weight sits on the 5% slice (effective sample size ~ the slice) and clipping at any
     quantile above 95% does not help: on a world inside the family (20k requests per
     scenario) the correlation of fitted and true P(click) fell from 0.96-0.98 (uniform
     route, no correction) to 0.54-0.63.
   * ``"none"``: the raw log.

   What a correction buys, measured (the worlds of tests/simulator/test_response_fit.py: 100
   users, 150 items, 4 true factors, the logging policy, 6k requests per scenario, l2 = 10;
   CTR of a uniformly random policy, fitted minus true, per scenario). When selection
   depends only on (user, item, slot), as here, the unweighted MLE of a well-specified model
   is consistent, and with 20k requests every route is within 0.015; but with less data the
   prior's shrinkage is extrapolated where the logging policy never looks. Uncorrected /
   uniform route / IPS: +0.11 +0.10 / +0.01 +0.01 / +0.01 +0.04 with 4 factors, and with a
   misspecified 1 factor +0.19 +0.19 / +0.02 +0.035 / -0.01 +0.02. The price is at the other
   end, each user's true top items, which the corrected fits under-predict more: -0.06 /
   -0.15 / -0.37 (4 factors), -0.13 / -0.28 / -0.40 (1 factor); likewise their log-loss on
   the later logging-policy traffic is worse and the one on the later uniform slice better
   (``diagnostics`` report both). On the default synthetic world (d = 16) the uncorrected fit
   over-predicts the uniform policy by 0.06-0.21 and under-predicts the top items by
   0.14-0.21; the uniform route is within 0.004 on the uniform policy and under-predicts the
   top items by 0.23-0.44.

2. **Watch time**, per content type, on clicked exposures with a logged watch time: the
   completion share ``c`` (feed: ``watch / duration``; immersive: ``watch = X + (D - X) c``
   with the autoplay skip ``X = min(D, m Exp(1))`` independent of ``c``, so
   ``(watch - E X) / (D - E X)`` is an unbiased moment estimate of ``c``) is regressed on the
   fitted affinity by nonlinear least squares on ``sigmoid(c0 + c1 a)`` (consistent for the
   conditional mean); the Beta concentration comes from the method of moments
   (``Var(c | a) = m (1 - m) / (phi + 1)``, the skip's own variance subtracted for immersive
   exposures). ``skip_seconds`` solves ``sum m (1 - exp(-D / m)) = sum watch`` over unclicked
   immersive exposures. Parts without data (no watch times, as in OBD; no immersive scenario)
   get the defaults below, named in ``diagnostics["defaults"]``.
3. **Leave model** per scenario: each logged page continues when a later page of its session
   exists; a logistic regression (Newton, small L2) of that on the page's CTR and mean watched
   fraction. Pages at the page cap (``max_pages`` = the largest logged page count) are left
   out (they cannot continue), and so are sessions that run past ``pre_period_end`` (their last
   pre-period page's outcome is censored). ``think_seconds[s]`` = mean of
   ``max(0, gap to the next page - the page's watch time)``: the mean browse time, which is
   how :class:`simulator.fitted_world.FittedWorld` reads it (its browse time is
   ``f + (think - f) Exp(1)`` with ``f = min(2, think)``, the synthetic world's
   ``2 + browse_seconds Exp(1)`` when ``think = 2 + browse_seconds``).
4. **Arrivals**: sessions per user in the pre-period shrunk by a gamma-Poisson (empirical
   Bayes) posterior mean and normalised to mean 1 over every user of ``users.parquet``; a
   user never seen gets the posterior mean of a zero count (positive, below any seen user's):
   setting it to 0 would make them never arrive although a low-activity user simply may not
   visit in a short window, and 1 or the minimum seen would overstate them.
   ``sessions_per_user_day`` = sessions / (users x pre-period days), so the expected number
   of sessions matches the log. ``traffic_share`` = share of sessions per scenario;
   ``pools`` = items logged per scenario; slate size = max logged position + 1.
5. **Items and users**: ``duration`` from ``items.parquet`` when present (0 or missing: the
   median of the known); an imported folder without it uses each item's 95th percentile of
   clicked watch times, the median of those for items never watched, or
   :data:`DEFAULT_DURATION` without any watch times. No ``content_type`` column: one content
   type ``"all"``; no ``category``: 0. Scenario kinds come from a generated folder's config,
   else from `kinds` (default ``feed``).

Everything random (initialisation, minibatch order, the validation split, the simulated
diagnostics) is seeded by `seed`; with a fixed `threads` the fit is deterministic.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
from scipy import optimize, special

from core import keyed
from core.errors import UserError
from simulator.fitted_params import KINDS, FittedParams
from simulator.logfolder import ITEMS, LOGS, MANIFEST, USERS, read_manifest
from simulator.logs import SOURCE_ID, UNIFORM, read_logs, validate_side_table

CORRECTIONS = ("ips", "uniform", "none")
DEFAULT_COMPLETION = (-0.5, 0.35, 4.0)  # intercept, slope, concentration (the synthetic default)
DEFAULT_SKIP = 2.0  # seconds
DEFAULT_DURATION = 60.0  # seconds, when neither the items nor the logs say
DEFAULT_THINK = 6.0  # seconds
DEFAULT_LEAVE = (0.0, 0.0, 0.0)
MIN_CLICKS = 50
# Prior precisions tried by default (the best validation log-loss wins). One value is not
# enough: a world with ~1500 exposures per user (the recovery test's) wants ~2 (50 drops the
# correlation with the truth from 0.98 to 0.74-0.93), the default synthetic world (~80 per
# user, tastes the data cannot pin down) wants ~50 (held-out log-loss 0.586 against 0.598 at
# 2, correlation with the truth 0.35-0.45 against 0.2-0.35).
L2_GRID = (2.0, 10.0, 50.0)
CLIP_QUANTILE = 0.99
VALID_SHARE = 0.1
QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)
EPS = 1e-7


# ------------------------------------------------------------------------ reading


@dataclass(frozen=True)
class _Folder:
    path: Path
    logs: pl.DataFrame  # every row, with `s` (scenario code) and `pre` (bool)
    users: pl.DataFrame
    items: pl.DataFrame
    manifest: dict[str, Any]
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    start: dt.datetime
    pre_end: dt.datetime


def _iso(value: Any, what: str, path: Path) -> dt.datetime:
    try:
        out = dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise UserError(f"{path / MANIFEST}: {what} is not an ISO timestamp ({value!r})") from None
    return out if out.tzinfo else out.replace(tzinfo=dt.timezone.utc)


def _read_folder(log_dir: str | Path, kinds: Mapping[str, str] | None) -> _Folder:
    path = Path(log_dir)
    if not path.is_dir():
        raise UserError(f"log folder not found: {path}")
    logs = read_logs(path)
    manifest = read_manifest(path) if (path / MANIFEST).exists() else {}
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else None
    if config is not None:
        scen = config.get("scenarios", [])
        names = tuple(str(s["name"]) for s in scen)
        cfg_kinds = {str(s["name"]): str(s.get("kind", "feed")) for s in scen}
    elif isinstance(manifest.get("scenarios"), list):
        names, cfg_kinds = tuple(str(n) for n in manifest["scenarios"]), {}
    else:  # no manifest: busiest scenario first, like the importer
        per = logs.group_by("scenario").agg(pl.col("request_id").n_unique().alias("n"))
        names = tuple(per.sort("n", "scenario", descending=[True, False])["scenario"].to_list())
        cfg_kinds = {}
    given = dict(kinds or {})
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise UserError(f"kinds: unknown scenario(s) {', '.join(unknown)}; known: {names}")
    kind_of = tuple(given.get(n, cfg_kinds.get(n, "feed")) for n in names)
    bad = [k for k in kind_of if k not in KINDS]
    if bad:
        raise UserError(f"kinds: unknown scenario kind {bad[0]!r} (feed or immersive)")
    stray = logs.filter(~pl.col("scenario").is_in(list(names)))
    if stray.height:
        raise UserError(
            f"{path}: logs name scenario {stray['scenario'][0]!r}, not in the manifest's "
            f"scenarios ({', '.join(names)})"
        )
    t_min, t_max = logs["timestamp"].min(), logs["timestamp"].max()
    start = _iso(manifest["start"], "start", path) if "start" in manifest else t_min
    if "pre_period_end" in manifest:
        pre_end = _iso(manifest["pre_period_end"], "pre_period_end", path)
    else:  # a folder without a manifest: the first half of the logged time
        pre_end = t_min + (t_max - t_min) / 2
    code = {n: i for i, n in enumerate(names)}
    logs = logs.with_columns(
        pl.col("scenario").replace_strict(code, return_dtype=pl.Int64).alias("s"),
        (pl.col("timestamp") < pre_end).alias("pre"),
    )
    users = _side(path, USERS, "users", "user_id")
    items = _side(path, ITEMS, "items", "item_id")
    for col, table, n in (("user_id", USERS, users.height), ("item_id", ITEMS, items.height)):
        out = logs.filter(pl.col(col) >= n)
        if out.height:
            raise UserError(
                f"{path / LOGS}: {col} {out[col][0]} is not in {table} (ids 0..{n - 1})"
            )
    return _Folder(path, logs, users, items, manifest, names, kind_of, start, pre_end)


def _side(path: Path, name: str, table: str, key: str) -> pl.DataFrame:
    file = path / name
    if not file.exists():
        raise UserError(f"{path}: no {name} (a log folder needs its side tables)")
    try:
        df = pl.read_parquet(file)
    except Exception as exc:  # polars raises several types for a corrupt file
        raise UserError(f"cannot read {file} as parquet: {type(exc).__name__}") from None
    df = validate_side_table(df, table, str(file)).sort(key)
    ids = df[key].to_numpy()
    if not np.array_equal(ids, np.arange(df.height)):
        raise UserError(f"{file}: {key} must be the dense codes 0..{df.height - 1}")
    return df


# ------------------------------------------------------------------------ items and users


def _items(folder: _Folder, manifest_ct: tuple[str, ...] | None, diag: dict):
    items, n = folder.items, folder.items.height
    category = (
        items["category"].cast(pl.Int64).to_numpy()
        if "category" in items.columns
        else np.zeros(n, dtype=np.int64)
    )
    if "content_type" in items.columns:
        values = items["content_type"].cast(pl.String).to_list()
        seen = sorted(set(values))
        names = tuple(c for c in (manifest_ct or ()) if c in seen)
        names += tuple(c for c in seen if c not in names)
        code = {c: i for i, c in enumerate(names)}
        content_type = np.array([code[v] for v in values], dtype=np.int64)
    else:
        names, content_type = ("all",), np.zeros(n, dtype=np.int64)
        diag["defaults"].append("content_type: one content type 'all' (items.parquet has none)")
    duration = np.full(n, np.nan)
    if "duration" in items.columns:
        duration = items["duration"].cast(pl.Float64).to_numpy().copy()
        duration[duration <= 0] = np.nan
        how = "items.parquet"
    else:
        watched = (
            folder.logs.filter(
                pl.col("pre") & (pl.col("click") == 1) & pl.col("watch_time").is_not_null()
            )
            .group_by("item_id")
            .agg(pl.col("watch_time").quantile(0.95))
            .filter(pl.col("watch_time") > 0)
        )
        duration[watched["item_id"].to_numpy()] = watched["watch_time"].to_numpy()
        how = "the 95th percentile of each item's clicked watch times"
    known = duration[np.isfinite(duration)]
    fill = float(np.median(known)) if known.size else DEFAULT_DURATION
    missing = int((~np.isfinite(duration)).sum())
    if missing:
        diag["defaults"].append(
            f"duration: {missing} of {n} items without one (from {how}) get {fill:.3g} s"
        )
    duration[~np.isfinite(duration)] = fill
    diag["duration_source"] = how
    return category, names, content_type, duration


def _profile(users: pl.DataFrame) -> tuple[np.ndarray, tuple[str, ...]]:
    cols = [c for c in users.columns if c not in ("user_id", SOURCE_ID)]
    if not cols:
        return np.zeros((users.height, 0), dtype=np.int64), ()
    return users.select(cols).cast(pl.Int64).to_numpy().astype(np.int64), tuple(cols)


# ------------------------------------------------------------------------ click model


@dataclass(frozen=True)
class _Features:
    """Side-table codes the factors are built on: U x F profile codes, item category and
    content type."""

    profile: np.ndarray  # U x F int64
    category: np.ndarray  # I int64
    content_type: np.ndarray  # I int64


class _ClickNet(torch.nn.Module):
    """The click family with factors built from free parts plus side-feature embeddings:
    u_u = p_u + sum_f E_f[profile_uf], v_i = q_i + C[category_i] + D[content_type_i],
    b_i = beta_i + c[category_i] + e[content_type_i] (folded into plain factors on export)."""

    def __init__(self, feats: _Features, n_scen, kmax, d, base0, gen, init_sd=0.1):
        super().__init__()

        def param(*shape, sd=init_sd):
            return torch.nn.Parameter(torch.randn(*shape, generator=gen) * sd)

        self.profile = torch.as_tensor(np.array(feats.profile))
        self.category = torch.as_tensor(np.array(feats.category))
        self.content_type = torch.as_tensor(np.array(feats.content_type))
        n_users, n_items = feats.profile.shape[0], feats.category.size
        cards = [int(c.max(initial=0)) + 1 for c in feats.profile.T]
        self.offsets = torch.as_tensor(
            np.concatenate([[0], np.cumsum(cards)[:-1]]).astype(np.int64)
        )
        self.user = param(n_users, d)
        self.profile_emb = param(int(sum(cards)), d)
        self.item = param(n_items, d)
        self.cat_emb = param(int(feats.category.max(initial=0)) + 1, d)
        self.ct_emb = param(int(feats.content_type.max(initial=0)) + 1, d)
        self.item_bias = torch.nn.Parameter(torch.zeros(n_items))
        self.cat_bias = torch.nn.Parameter(torch.zeros(self.cat_emb.shape[0]))
        self.ct_bias = torch.nn.Parameter(torch.zeros(self.ct_emb.shape[0]))
        self.transform = torch.nn.Parameter(torch.eye(d).repeat(n_scen, 1, 1))
        self.base = torch.nn.Parameter(torch.as_tensor(base0, dtype=torch.float32))
        rho = math.log(0.8 / 0.2)
        self.rho = torch.nn.Parameter(torch.full((n_scen, max(kmax - 1, 0)), rho))

    def users(self, u: torch.Tensor) -> torch.Tensor:
        out = self.user[u]
        if self.profile.shape[1]:
            out = out + self.profile_emb[self.profile[u] + self.offsets].sum(1)
        return out

    def items(self, i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cat, ct = self.category[i], self.content_type[i]
        vec = self.item[i] + self.cat_emb[cat] + self.ct_emb[ct]
        return vec, self.item_bias[i] + self.cat_bias[cat] + self.ct_bias[ct]

    def log_theta(self) -> torch.Tensor:
        zero = torch.zeros(self.rho.shape[0], 1)
        return torch.cat([zero, torch.nn.functional.logsigmoid(self.rho)], dim=1)

    def forward(self, u, i, s, k):
        """log P(click) and log P(no click) of each exposure."""
        x = torch.einsum("bij,bj->bi", self.transform[s], self.users(u))
        v, b = self.items(i)
        z = (x * v).sum(1) + b + self.base[s]
        lp = torch.nn.functional.logsigmoid(z) + self.log_theta()[s, k]
        lp = torch.clamp(lp, max=-EPS)
        return lp, torch.log(-torch.expm1(lp))

    def penalty(self, eye: torch.Tensor) -> torch.Tensor:
        """Sum of squares of every factor, embedding and bias (the transforms' distance to
        the identity)."""
        parts = (self.user, self.profile_emb, self.item, self.cat_emb, self.ct_emb,
                 self.item_bias, self.cat_bias, self.ct_bias)  # fmt: skip
        return sum(p.pow(2).sum() for p in parts) + (self.transform - eye).pow(2).sum()

    def export(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Plain user factors, item factors and item biases (features folded in)."""
        with torch.no_grad():
            u = self.users(torch.arange(self.user.shape[0]))
            v, b = self.items(torch.arange(self.item.shape[0]))
        return (t.double().numpy().copy() for t in (u, v, b))


@dataclass(frozen=True)
class _Exposures:
    user: np.ndarray
    item: np.ndarray
    scen: np.ndarray
    pos: np.ndarray
    click: np.ndarray
    weight: np.ndarray

    def take(self, idx: np.ndarray) -> _Exposures:
        return _Exposures(*(a[idx] for a in self.tensors_np()))

    def tensors_np(self):
        return (self.user, self.item, self.scen, self.pos, self.click, self.weight)

    def __len__(self) -> int:
        return int(self.user.size)


def _nll(
    net: _ClickNet, ex: _Exposures, idx: np.ndarray | None = None, *, weighted: bool = True
) -> torch.Tensor:
    """Negative log-likelihood sum of `ex` (rows `idx`), weighted by `ex.weight` or not."""
    arrays = ex.tensors_np() if idx is None else tuple(a[idx] for a in ex.tensors_np())
    u, i, s, k, y, w = (torch.as_tensor(a) for a in arrays)
    lp, lq = net(u, i, s, k)
    nll = -(y * lp + (1 - y) * lq)
    return (w * nll).sum() if weighted else nll.sum()


def _train(
    net: _ClickNet,
    train: _Exposures,
    valid: _Exposures,
    *,
    params: list[torch.nn.Parameter],
    penalty,
    epochs: int,
    batch_size: int,
    lr: float,
    rng: np.random.Generator,
) -> list[dict]:
    """Adam over `params` on `train`; restores the epoch with the lowest validation loss.

    Weighted rows are used by resampling: each epoch draws n rows with replacement with
    probability proportional to their weight and takes an unweighted step on them. The
    expected gradient is the weighted one, without the huge single-row weights (1 /
    propensity reaches thousands on the uniform slice) that make weighted Adam steps erratic.
    """
    opt = torch.optim.Adam(params, lr=lr)
    n = len(train)
    weighted = bool(np.any(train.weight != train.weight[0])) if n else False
    prob = train.weight / train.weight.sum() if weighted else None
    # The prior weighs against the information in the data: n rows unweighted, the effective
    # sample size of the weights when they are resampled.
    scale = _ess(train.weight) if weighted else n
    w_valid = float(valid.weight.sum()) if len(valid) else 0.0
    history: list[dict] = []
    best, best_state = math.inf, None
    for epoch in range(epochs):
        # cosine decay to 5% of `lr`: late epochs average out the minibatch noise
        for group in opt.param_groups:
            group["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))
        order = rng.choice(n, size=n, p=prob) if weighted else rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            opt.zero_grad()
            loss = _nll(net, train, idx, weighted=False) / idx.size + penalty() / scale
            loss.backward()
            opt.step()
            total += float(loss.detach()) * idx.size
        with torch.no_grad():
            v = float(_nll(net, valid)) / w_valid if w_valid > 0 else total / n
        history.append({"epoch": epoch + 1, "train_loss": total / n, "valid_log_loss": v})
        if v < best:
            best = v
            best_state = {k: t.detach().clone() for k, t in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)
    return history


def auto_batch(rows: int) -> int:
    """Minibatch size: 4096 rows, less for small logs (at least 20 Adam steps per epoch)."""
    return int(min(max(rows // 20, 256), 4096))


def _ips_weights(prop: np.ndarray, scen: np.ndarray, n_scen: int) -> tuple[np.ndarray, float]:
    w = 1.0 / prop
    import os

    r = float(os.environ.get("CLIPR", "0"))
    clip = float(np.quantile(w, CLIP_QUANTILE)) if not r else r * float(np.median(w))
    w = np.minimum(w, clip)
    for s in range(n_scen):
        m = scen == s
        if m.any():
            w[m] /= w[m].mean()
    return w, clip


def _ess(w: np.ndarray) -> float:
    return float(w.sum() ** 2 / (w**2).sum()) if w.size else 0.0


@dataclass(frozen=True)
class _ClickFit:
    user_factors: np.ndarray
    scenario_transform: np.ndarray
    item_factors: np.ndarray
    item_bias: np.ndarray
    scenario_base: np.ndarray
    position_bias: np.ndarray  # S x K, NaN beyond each slate


def _fit_click(
    ex: _Exposures,
    uniform: np.ndarray,
    request: np.ndarray,
    *,
    route: str,
    feats: _Features,
    slate_sizes: np.ndarray,
    d: int,
    seed: int,
    epochs: int,
    batch_size: int,
    lr: float,
    l2: float,
    diag: dict,
) -> _ClickFit:
    n_scen, kmax = slate_sizes.size, int(slate_sizes.max())
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng([seed, 0xC11C])
    valid_mask = keyed.uniform(seed, "response_fit_valid", request) < VALID_SHARE
    if valid_mask.all() or not valid_mask.any():
        valid_mask = np.zeros(len(ex), dtype=bool)
    ctr = np.array(
        [np.average(ex.click[ex.scen == s], weights=ex.weight[ex.scen == s]) for s in range(n_scen)]
    )
    base0 = special.logit(np.clip(ctr, 1e-4, 1 - 1e-4))
    net = _ClickNet(feats, n_scen, kmax, d, base0, gen)
    eye = torch.eye(d)

    def penalty() -> torch.Tensor:
        return (l2 / 2) * net.penalty(eye)

    # The factors always see every exposure (weighted by `ex.weight`).
    train, valid = ex.take(~valid_mask), ex.take(valid_mask)
    diag["history"] = _train(
        net,
        train,
        valid,
        params=list(net.parameters()),
        penalty=penalty,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        rng=rng,
    )
    if route == "uniform_slice":
        exposure_terms = [net.item_bias, net.cat_bias, net.ct_bias, net.base]
        first = [t.detach().clone() for t in exposure_terms[:3]]

        def prior() -> torch.Tensor:
            return (l2 / 2) * sum(
                (t - f).pow(2).sum() for t, f in zip(exposure_terms[:3], first, strict=True)
            )

        keep, check = uniform & ~valid_mask, uniform & valid_mask
        if not keep.any():  # a slice too small to split: train on all of it, no validation
            keep, check = uniform, np.zeros_like(uniform)
        diag["history_uniform_stage"] = _train(
            net,
            ex.take(keep),
            ex.take(check),
            params=exposure_terms,
            penalty=prior,
            epochs=epochs,
            batch_size=auto_batch(int(keep.sum())),
            lr=lr,
            rng=rng,
        )
        diag["uniform_stage_rows"] = int(keep.sum())
    diag["train_rows"] = int((~valid_mask).sum())
    diag["valid_rows"] = int(valid_mask.sum())
    with torch.no_grad():
        theta = net.log_theta().exp().double().numpy()
    position_bias = np.full((n_scen, kmax), np.nan)
    for s, size in enumerate(slate_sizes.tolist()):
        position_bias[s, :size] = theta[s, :size]
    position_bias[:, 0] = 1.0

    users, items, bias = net.export()
    with torch.no_grad():
        transform, base = (t.double().numpy().copy() for t in (net.transform, net.base))
    return _ClickFit(users, transform, items, bias, base, position_bias)


def affinity(params: FittedParams | _ClickFit, scen, users, items) -> np.ndarray:
    """Affinity (click-logit units, without the scenario base) of aligned arrays of exposures."""
    x = np.einsum("nij,nj->ni", params.scenario_transform[scen], params.user_factors[users])
    return (x * params.item_factors[items]).sum(1) + params.item_bias[items]


def click_probability(params: FittedParams | _ClickFit, scen, users, items, pos) -> np.ndarray:
    """P(click) of aligned arrays of exposures under fitted parameters."""
    a = affinity(params, scen, users, items)
    return special.expit(a + params.scenario_base[scen]) * params.position_bias[scen, pos]


# ------------------------------------------------------------------------ watch time


def _skip_moments(dur: np.ndarray, m: float) -> tuple[np.ndarray, np.ndarray]:
    """E[X] and E[X^2] of X = min(D, m Exp(1))."""
    r = np.exp(-dur / m)
    return m * (1 - r), 2 * m**2 * (1 - r * (1 + dur / m))


def _fit_skip(dur: np.ndarray, watch: np.ndarray) -> float | None:
    if dur.size == 0 or watch.sum() <= 0:
        return None
    target = float(watch.sum())
    if target >= dur.sum():
        return float(dur.max() * 100)

    def gap(log_m: float) -> float:
        return float(_skip_moments(dur, math.exp(log_m))[0].sum()) - target

    return float(math.exp(optimize.brentq(gap, math.log(1e-4), math.log(1e7))))


def _fit_completion(a, comp_hat, residual, var_x, span2):
    """(intercept, slope, concentration) from per-exposure unbiased completion estimates.

    `a`: affinities; `comp_hat`: unbiased estimates of the completion. The concentration
    comes from the watch-scale variance ``Var(W) = Var(c) E[(D - X)^2] + (1 - m)^2 Var(X)``:
    `residual(m)` is W - E[W] (seconds for immersive exposures, fractions for feed, where
    X = 0 and D = 1), `var_x` = Var(X) and `span2` = E[(D - X)^2].
    """
    start = np.array([special.logit(np.clip(comp_hat.mean(), 0.02, 0.98)), 0.0])

    def resid(c):
        return special.expit(c[0] + c[1] * a) - comp_hat

    fit = optimize.least_squares(resid, start, method="lm" if a.size > 2 else "trf")
    c0, c1 = (float(v) for v in fit.x)
    m = special.expit(c0 + c1 * a)
    resid_w = residual(m)
    num = float((m * (1 - m) * span2).sum())
    den = float((resid_w**2 - (1 - m) ** 2 * var_x).sum())
    phi = num / den - 1 if den > 0 else 1000.0
    return c0, c1, float(np.clip(phi, 0.1, 1000.0))


def _watch_models(
    pre: pl.DataFrame, fit: _ClickFit, kinds, content_type, ct_names, duration, diag
) -> tuple[np.ndarray, float]:
    immersive = np.array([k == "immersive" for k in kinds])
    rows = pre.filter(pl.col("watch_time").is_not_null())
    completion = np.tile(np.array(DEFAULT_COMPLETION), (len(ct_names), 1))
    info: dict[str, Any] = {}
    if rows.height == 0:
        diag["defaults"].append(
            f"watch time: no logged watch times; completion {DEFAULT_COMPLETION}, "
            f"skip {DEFAULT_SKIP} s"
        )
        diag["watch_fit"] = info
        return completion, DEFAULT_SKIP
    s = rows["s"].to_numpy()
    item = rows["item_id"].to_numpy()
    click = rows["click"].to_numpy().astype(bool)
    watch = rows["watch_time"].to_numpy()
    dur = duration[item]
    imm = immersive[s]
    skip = _fit_skip(dur[imm & ~click], watch[imm & ~click])
    if skip is None:
        skip = DEFAULT_SKIP
        if immersive.any():
            diag["defaults"].append(f"skip_seconds: no unclicked immersive watch times; {skip} s")
    info["skip_rows"] = int((imm & ~click).sum())
    a = affinity(fit, s[click], rows["user_id"].to_numpy()[click], item[click])
    ct = content_type[item[click]]
    d, w, im = dur[click], watch[click], imm[click]
    ex, ex2 = _skip_moments(d, skip)
    ex, ex2 = np.where(im, ex, 0.0), np.where(im, ex2, 0.0)
    span = np.maximum(d - ex, 1e-9)
    comp_hat = np.where(im, (w - ex) / span, np.clip(w / np.maximum(d, 1e-9), 0.0, 1.0))
    # Feed in fraction units (X = 0, D = 1); immersive in seconds.
    var_x = np.where(im, ex2 - ex**2, 0.0)
    span2 = np.where(im, d**2 - 2 * d * ex + ex2, 1.0)
    for c, name in enumerate(ct_names):
        m = ct == c
        if m.sum() < 10:
            diag["defaults"].append(
                f"completion[{name}]: {int(m.sum())} clicked exposures with watch times; "
                f"default {DEFAULT_COMPLETION}"
            )
            continue
        observed = np.where(im[m], w[m], comp_hat[m])
        scale = np.where(im[m], span[m], 1.0)
        base = np.where(im[m], ex[m], 0.0)

        def resid_w(mean, observed=observed, scale=scale, base=base):
            return observed - (base + scale * mean)

        completion[c] = _fit_completion(a[m], comp_hat[m], resid_w, var_x[m], span2[m])
        info[name] = {"rows": int(m.sum()), "mean_completion": float(comp_hat[m].mean())}
    diag["watch_fit"] = info
    return completion, float(skip)


# ------------------------------------------------------------------------ pages and sessions


def _pages(df: pl.DataFrame, duration: np.ndarray) -> pl.DataFrame:
    """One row per request: session, scenario, time, CTR, mean watched fraction, watch sum,
    page index within the session, and whether a later page of the session exists."""
    frac = (pl.col("watch_time") / pl.col("dur")).clip(0.0, 1.0).fill_null(0.0).alias("frac")
    pages = df.with_columns(pl.Series("dur", duration).gather(df["item_id"]).alias("dur"))
    pages = (
        pages.with_columns(frac)
        .group_by("request_id")
        .agg(
            pl.col("session_id").first(),
            pl.col("user_id").first(),
            pl.col("s").first(),
            pl.col("timestamp").first(),
            pl.col("pre").first(),
            pl.col("click").cast(pl.Float64).mean().alias("ctr"),
            pl.col("frac").mean(),
            pl.col("watch_time").fill_null(0.0).sum().alias("watch"),
            pl.col("watch_time").is_null().all().alias("no_watch"),
        )
        .sort("session_id", "timestamp", "request_id")
    )
    return pages.with_columns(
        pl.int_range(pl.len()).over("session_id").alias("page"),
        pl.len().over("session_id").alias("n_pages"),
        (pl.col("timestamp").shift(-1).over("session_id") - pl.col("timestamp"))
        .dt.total_microseconds()
        .cast(pl.Float64)
        .truediv(1e6)
        .alias("gap"),
    ).with_columns((pl.col("page") + 1 < pl.col("n_pages")).alias("cont"))


def _logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50) -> np.ndarray:
    """Newton's method for L2-penalised logistic regression (intercept in column 0, unpenalised)."""
    beta = np.zeros(x.shape[1])
    pen = np.full(x.shape[1], l2)
    pen[0] = 1e-6
    for _ in range(iters):
        p = special.expit(x @ beta)
        grad = x.T @ (p - y) + pen * beta
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(pen)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    return beta


def _leave_models(
    pages: pl.DataFrame, n_scen: int, names, diag
) -> tuple[np.ndarray, int, np.ndarray]:
    max_pages = int(pages["n_pages"].max())
    censored = pages.filter(~pl.col("pre"))["session_id"].unique()
    pre = pages.filter(pl.col("pre") & ~pl.col("session_id").is_in(censored.implode()))
    leave = np.tile(np.array(DEFAULT_LEAVE), (n_scen, 1))
    think = np.full(n_scen, DEFAULT_THINK)
    info = {}
    for s in range(n_scen):
        sp = pre.filter(pl.col("s") == s)
        fit_rows = sp.filter(pl.col("page") + 1 < max_pages)
        if fit_rows.height == 0:
            diag["defaults"].append(f"leave[{names[s]}]: no pages; default {DEFAULT_LEAVE}")
        else:
            has_watch = not bool(fit_rows["no_watch"].all())
            cols = [np.ones(fit_rows.height), fit_rows["ctr"].to_numpy()]
            if has_watch:
                cols.append(fit_rows["frac"].to_numpy())
            beta = _logistic(np.column_stack(cols), fit_rows["cont"].to_numpy().astype(float))
            leave[s, : beta.size] = beta
            if not has_watch:
                leave[s, 2] = 0.0
        gaps = sp.filter(pl.col("cont"))
        if gaps.height:
            extra = gaps["gap"].to_numpy() - gaps["watch"].to_numpy()
            think[s] = float(np.maximum(extra, 0.0).mean())
        else:
            diag["defaults"].append(f"think_seconds[{names[s]}]: no page gaps; {DEFAULT_THINK} s")
        info[names[s]] = {
            "pages": int(fit_rows.height),
            "continue_rate": float(fit_rows["cont"].mean()) if fit_rows.height else None,
            "gaps": int(gaps.height),
        }
    diag["leave_fit"] = info
    return leave, max_pages, think


def _activity(pre: pl.DataFrame, n_users: int, n_scen: int, days: float, diag):
    sessions = pre.group_by("session_id").agg(pl.col("user_id").first(), pl.col("s").first())
    counts = np.bincount(sessions["user_id"].to_numpy(), minlength=n_users).astype(float)
    per_scen = np.bincount(sessions["s"].to_numpy(), minlength=n_scen).astype(float)
    share = per_scen / per_scen.sum()
    mean = counts.mean()
    excess = counts.var() - mean  # variance of the rates beyond Poisson noise (x days^2)
    if excess > 0:
        k = mean**2 / excess  # gamma shape
        rate = mean / excess  # gamma rate in count units
        post = (counts + k) / (1 + rate)
        activity = post / post.mean()
    else:
        k = math.inf
        activity = np.ones(n_users)
    spud = float(counts.sum() / (n_users * days))
    diag["arrivals"] = {
        "sessions": int(counts.sum()),
        "users_seen": int((counts > 0).sum()),
        "users": n_users,
        "days": days,
        "gamma_shape": None if math.isinf(k) else float(k),
        "unseen_activity": float(activity[counts == 0].min()) if (counts == 0).any() else None,
    }
    return activity, spud, share


# ------------------------------------------------------------------------ diagnostics


def _log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean())


def calibration(p: np.ndarray, y: np.ndarray, bins: int = 10) -> list[dict]:
    """Mean predicted vs observed click rate in `bins` quantile bins of the prediction."""
    edges = np.quantile(p, np.linspace(0, 1, bins + 1)[1:-1])
    which = np.searchsorted(edges, p, side="right")
    out = []
    for b in range(bins):
        m = which == b
        if m.any():
            out.append(
                {
                    "bin": b,
                    "predicted": float(p[m].mean()),
                    "observed": float(y[m].mean()),
                    "n": int(m.sum()),
                }
            )
    return out


def _click_diag(p: np.ndarray, y: np.ndarray, constant: float) -> dict | None:
    if p.size == 0:
        return None
    return {
        "rows": int(p.size),
        "log_loss": _log_loss(p, y),
        "log_loss_constant": _log_loss(np.full(p.size, constant), y),
        "mean_predicted": float(p.mean()),
        "mean_observed": float(y.mean()),
        "calibration": calibration(p, y),
    }


def _quantiles(x: np.ndarray) -> list[float] | None:
    return [float(v) for v in np.quantile(x, QUANTILES)] if x.size else None


def _sample_watch(rng, params: FittedParams, scen, items, aff, click) -> np.ndarray:
    """Watch times of exposures under the fitted watch model, given their clicks."""
    c = params.content_type[items]
    comp = params.completion[c]
    mean = np.clip(special.expit(comp[:, 0] + comp[:, 1] * aff), 1e-6, 1 - 1e-6)
    phi = comp[:, 2]
    frac = np.where(click, rng.beta(mean * phi, (1 - mean) * phi), 0.0)
    dur = params.duration[items]
    imm = np.array([k == "immersive" for k in params.scenario_kinds])[scen]
    skip = np.minimum(dur, params.skip_seconds * rng.exponential(size=dur.size))
    return np.where(imm, skip + (dur - skip) * frac, dur * frac)


def _watch_diag(rng, params: FittedParams, post: pl.DataFrame) -> dict:
    rows = post.filter(pl.col("watch_time").is_not_null())
    out: dict[str, Any] = {"quantiles": list(QUANTILES)}
    if rows.height == 0:
        return out | {"note": "no held-out watch times"}
    s, u, i = (rows[c].to_numpy() for c in ("s", "user_id", "item_id"))
    click = rows["click"].to_numpy().astype(bool)
    fitted = _sample_watch(rng, params, s, i, affinity(params, s, u, i), click)
    logged = rows["watch_time"].to_numpy()
    imm = np.array([k == "immersive" for k in params.scenario_kinds])[s]
    for kind, m in (("feed_clicked", ~imm & click), ("immersive", imm)):
        out[kind] = {
            "rows": int(m.sum()),
            "logged": _quantiles(logged[m]),
            "fitted": _quantiles(fitted[m]),
            "logged_mean": float(logged[m].mean()) if m.any() else None,
            "fitted_mean": float(fitted[m].mean()) if m.any() else None,
        }
    return out


def _session_diag(rng, params: FittedParams, post: pl.DataFrame, pages: pl.DataFrame) -> dict:
    """Held-out session lengths: logged vs simulated under the fitted click, watch and leave
    models. Page p of a simulated session shows the session's logged page p (its last
    logged page once the log runs out), so only the responses are the model's."""
    hp = pages.filter(~pl.col("pre")).filter(pl.col("page") == 0)
    out: dict[str, Any] = {"quantiles": list(QUANTILES)}
    if hp.height == 0:
        return out | {"note": "no held-out sessions"}
    held = pages.filter(pl.col("session_id").is_in(hp["session_id"].implode()))
    req = held["request_id"].to_numpy()
    req_index = {int(r): j for j, r in enumerate(req.tolist())}
    # Each session's pages, in order: offsets into `held`.
    starts = np.flatnonzero(held["page"].to_numpy() == 0)
    n_logged = held["n_pages"].to_numpy()[starts]
    scen_of = held["s"].to_numpy()[starts]
    # Exposures of the held-out requests, grouped by request.
    ex = post.filter(pl.col("request_id").is_in(pl.Series(req).implode()))
    order = np.argsort([req_index[int(r)] for r in ex["request_id"].to_list()], kind="stable")
    ex = ex[order]
    rq = np.array([req_index[int(r)] for r in ex["request_id"].to_list()], dtype=np.int64)
    s, u, i, k = (ex[c].to_numpy() for c in ("s", "user_id", "item_id", "position"))
    aff = affinity(params, s, u, i)
    p_click = special.expit(aff + params.scenario_base[s]) * params.position_bias[s, k]
    bounds = np.searchsorted(rq, np.arange(len(req) + 1))
    alive = np.ones(starts.size, dtype=bool)
    length = np.zeros(starts.size, dtype=np.int64)
    for p in range(params.max_pages):
        sess = np.flatnonzero(alive)
        if sess.size == 0:
            break
        length[sess] += 1
        r = starts[sess] + np.minimum(p, n_logged[sess] - 1)
        cnt = bounds[r + 1] - bounds[r]
        rows = np.concatenate([np.arange(bounds[a], bounds[a + 1]) for a in r])
        owner = np.repeat(np.arange(sess.size), cnt)
        click = rng.random(rows.size) < p_click[rows]
        watch = _sample_watch(rng, params, s[rows], i[rows], aff[rows], click)
        frac = np.clip(watch / params.duration[i[rows]], 0, 1)
        ctr = np.bincount(owner, click, sess.size) / np.maximum(cnt, 1)
        wf = np.bincount(owner, frac, sess.size) / np.maximum(cnt, 1)
        lv = params.leave[scen_of[sess]]
        cont = rng.random(sess.size) < special.expit(lv[:, 0] + lv[:, 1] * ctr + lv[:, 2] * wf)
        alive[sess[~cont]] = False
    out["sessions"] = int(starts.size)
    out["logged"] = _quantiles(n_logged.astype(float))
    out["fitted"] = _quantiles(length.astype(float))
    out["logged_mean"] = float(n_logged.mean())
    out["fitted_mean"] = float(length.mean())
    out["per_scenario"] = {
        name: {
            "logged_mean": float(n_logged[scen_of == j].mean()),
            "fitted_mean": float(length[scen_of == j].mean()),
            "sessions": int((scen_of == j).sum()),
        }
        for j, name in enumerate(params.scenario_names)
        if (scen_of == j).any()
    }
    return out


def _uniform_theta(pre: pl.DataFrame, n_scen: int, kmax: int) -> list[list[float | None]] | None:
    uni = pre.filter(pl.col("policy") == UNIFORM)
    if uni.height == 0:
        return None
    out = []
    for s in range(n_scen):
        rows = uni.filter(pl.col("s") == s)
        ctr = np.full(kmax, np.nan)
        if rows.height:
            g = rows.group_by("position").agg(pl.col("click").cast(pl.Float64).mean())
            pos = g["position"].to_numpy()
            ctr[pos[pos < kmax]] = g["click"].to_numpy()[pos < kmax]
        ratio = ctr / ctr[0] if ctr[0] > 0 else np.full(kmax, np.nan)
        out.append([None if not np.isfinite(v) else float(v) for v in ratio])
    return out


# ------------------------------------------------------------------------ the whole fit


def fit_world(
    log_dir: str | Path,
    *,
    d: int = 16,
    seed: int,
    epochs: int = 30,
    batch_size: int | None = None,
    lr: float = 0.03,
    l2: float | Sequence[float] = L2_GRID,
    correction: str = "uniform",
    threads: int = 1,
    kinds: Mapping[str, str] | None = None,
    min_clicks: int = MIN_CLICKS,
) -> tuple[FittedParams, dict]:
    """Fit the whole fitted family from the pre-period of `log_dir`; (params, diagnostics).

    `d`: factor dimension; `epochs`, `batch_size` (default: 4096, fewer for small logs),
    `lr`: the click model's Adam training; `l2`: prior precision of factors, embeddings and
    item biases, or several (each is fitted and the one with the best validation log-loss
    kept: costs one fit each); `correction`: ``"uniform"`` (refit the exposure terms on the
    uniform slice; IPS without one), ``"ips"`` (propensity weighting; the uniform slice
    without propensities) or ``"none"`` (see the module doc); `threads`: torch threads;
    `kinds`: scenario kinds where the manifest has no config (default feed); `min_clicks`:
    fewer pre-period clicks are refused. Raises UserError (one line) on bad input.
    """
    if correction not in CORRECTIONS:
        raise UserError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    if d < 1 or epochs < 1 or (batch_size is not None and batch_size < 1):
        raise UserError("d, epochs and batch_size must be >= 1")
    priors = [float(x) for x in (l2 if isinstance(l2, Sequence) else [l2])]
    if not priors or min(priors) < 0:
        raise UserError(f"l2 must be >= 0 (or a non-empty list of such), got {l2!r}")
    t0 = time.perf_counter()
    torch.set_num_threads(max(int(threads), 1))
    folder = _read_folder(log_dir, kinds)
    path, names, n_scen = folder.path, folder.names, len(folder.names)
    diag: dict[str, Any] = {"defaults": [], "fit_seconds": {}}
    pre = folder.logs.filter(pl.col("pre"))
    post = folder.logs.filter(~pl.col("pre"))
    n_clicks = int(pre["click"].sum())
    if n_clicks < min_clicks:
        raise UserError(
            f"{path}: logs too small to fit a world: {n_clicks} clicks before pre_period_end "
            f"{folder.pre_end.isoformat()} (need at least {min_clicks})"
        )
    per = pre.group_by("s").agg(pl.len().alias("n"), pl.col("click").sum().alias("clicks"))
    n_of = dict(zip(per["s"].to_list(), per["n"].to_list(), strict=True))
    clicks_of = dict(zip(per["s"].to_list(), per["clicks"].to_list(), strict=True))
    for s, name in enumerate(names):
        if n_of.get(s, 0) == 0:
            raise UserError(f"{path}: scenario {name!r} has no exposures in the pre-period")
        if clicks_of.get(s, 0) == 0:
            raise UserError(
                f"{path}: scenario {name!r} has no clicks in the pre-period ({n_of[s]} "
                f"exposures): its click model cannot be fitted"
            )
    has_prop = pre["propensity"].null_count() == 0
    is_uniform = (pre["policy"] == UNIFORM).to_numpy()
    if correction == "none":
        route = "none"
    elif correction == "uniform" and is_uniform.any():
        route = "uniform_slice"
    elif has_prop:
        route = "ips"
    elif is_uniform.any():
        route = "uniform_slice"
    else:
        raise UserError(
            f"{path}: correction={correction!r} needs logged propensities or a uniformly random "
            f"slice (policy {UNIFORM!r}) and the pre-period has neither; use correction='none' "
            f"to fit without exposure correction"
        )
    diag["correction"] = route
    manifest = folder.manifest
    cfg = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    ct_cfg = tuple((cfg.get("world") or {}).get("content_types") or ())
    category, ct_names, content_type, duration = _items(folder, ct_cfg or None, diag)
    profile, profile_names = _profile(folder.users)
    n_users = folder.users.height

    slate = pre.group_by("s").agg(pl.col("position").max()).sort("s")
    slate_sizes = slate["position"].to_numpy().astype(np.int64) + 1
    pools = tuple(
        np.sort(pre.filter(pl.col("s") == s)["item_id"].unique().to_numpy()).astype(np.int64)
        for s in range(n_scen)
    )

    # Click model.
    t = time.perf_counter()
    scen = pre["s"].to_numpy()
    weight = np.ones(pre.height)
    if route == "ips":
        weight, clip = _ips_weights(pre["propensity"].to_numpy(), scen, n_scen)
        diag["ips"] = {
            "clip_weight": clip,
            "effective_sample_size": {names[s]: _ess(weight[scen == s]) for s in range(n_scen)},
        }
    ex = _Exposures(
        pre["user_id"].to_numpy(),
        pre["item_id"].to_numpy(),
        scen,
        pre["position"].to_numpy(),
        pre["click"].to_numpy().astype(np.float32),
        weight.astype(np.float32),
    )
    fits = []
    for value in priors:  # several priors: keep the one with the best validation log-loss
        cdiag: dict[str, Any] = {"l2": value}
        fit = _fit_click(
            ex,
            is_uniform,
            pre["request_id"].to_numpy(),
            route=route,
            feats=_Features(profile, category, content_type),
            slate_sizes=slate_sizes,
            d=d,
            seed=seed,
            epochs=epochs,
            batch_size=batch_size or auto_batch(pre.height),
            lr=lr,
            l2=value,
            diag=cdiag,
        )
        fits.append((min(h["valid_log_loss"] for h in cdiag["history"]), fit, cdiag))
    _, fit, cdiag = min(fits, key=lambda f: f[0])
    if len(priors) > 1:
        cdiag["l2_validation_log_loss"] = {str(c["l2"]): v for v, _, c in fits}
    diag["fit_seconds"]["click"] = time.perf_counter() - t

    # Watch time, leave model, arrivals.
    t = time.perf_counter()
    completion, skip = _watch_models(pre, fit, folder.kinds, content_type, ct_names, duration, diag)
    pages = _pages(folder.logs, duration)
    leave, max_pages, think = _leave_models(pages, n_scen, names, diag)
    days = (folder.pre_end - folder.start).total_seconds() / 86_400
    if days <= 0:
        raise UserError(f"{path}: pre_period_end is not after the start of the logs")
    activity, spud, share = _activity(pre, n_users, n_scen, days, diag)
    diag["fit_seconds"]["rest"] = time.perf_counter() - t

    params = FittedParams(
        scenario_names=names,
        scenario_kinds=folder.kinds,
        slate_sizes=slate_sizes,
        traffic_share=share,
        pools=pools,
        user_factors=fit.user_factors,
        scenario_transform=fit.scenario_transform,
        item_factors=fit.item_factors,
        item_bias=fit.item_bias,
        scenario_base=fit.scenario_base,
        position_bias=fit.position_bias,
        content_type=content_type,
        content_type_names=ct_names,
        duration=duration,
        completion=completion,
        skip_seconds=skip,
        leave=leave,
        max_pages=max_pages,
        think_seconds=think,
        activity=activity,
        sessions_per_user_day=spud,
        profile=profile,
        profile_names=profile_names,
        category=category,
    ).check()

    # Held-out diagnostics (on slots the pre-period knows).
    t = time.perf_counter()
    post = post.filter(
        pl.col("position") < pl.col("s").replace_strict(dict(enumerate(slate_sizes.tolist())))
    )
    rng = np.random.default_rng([seed, 0xD1A6])
    constant = float(pre["click"].mean())
    cols = lambda df: tuple(df[c].to_numpy() for c in ("s", "user_id", "item_id", "position"))  # noqa: E731
    p_post = click_probability(params, *cols(post)) if post.height else np.zeros(0)
    y_post = post["click"].to_numpy().astype(float)
    uni = (post["policy"] == UNIFORM).to_numpy()
    diag["click"] = {
        "held_out": _click_diag(p_post, y_post, constant),
        "uniform": _click_diag(p_post[uni], y_post[uni], constant),
        "per_scenario": {
            name: _click_diag(
                p_post[post["s"].to_numpy() == s], y_post[post["s"].to_numpy() == s], constant
            )
            for s, name in enumerate(names)
        },
        "position_bias_fitted": [[float(v) for v in r[np.isfinite(r)]] for r in fit.position_bias],
        "position_bias_uniform_slice": _uniform_theta(pre, n_scen, int(slate_sizes.max())),
        "training": cdiag,
    }
    diag["watch_time"] = _watch_diag(rng, params, post)
    diag["session_length"] = _session_diag(rng, params, post, pages)
    diag["fit_seconds"]["diagnostics"] = time.perf_counter() - t
    diag["fit_seconds"]["total"] = time.perf_counter() - t0
    diag["rows"] = {
        "pre_period": pre.height,
        "pre_period_clicks": n_clicks,
        "pre_period_uniform": int(is_uniform.sum()),
        "held_out": post.height,
        "held_out_uniform": int(uni.sum()),
        "click_train": cdiag["train_rows"],
        "click_valid": cdiag["valid_rows"],
    }
    diag["pre_period_end"] = folder.pre_end.isoformat()
    diag["settings"] = {
        "d": d,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size or auto_batch(pre.height),
        "lr": lr,
        "l2": cdiag["l2"],
        "correction": correction,
        "threads": threads,
    }
    return params, diag
