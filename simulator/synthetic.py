"""The ground-truth synthetic world: users, items, scenarios and the response model.

Implements :class:`simulator.world.World`.

Shapes: U users, I items, S scenarios, d latent dims, B requests, K slate positions.

* Users have a shared interest vector ``g`` and one specific vector ``h_s`` per scenario;
  the preference in scenario s is
  ``normalise(sqrt(w_s) g + sqrt(1 - w_s) (sqrt(r_s) T_s(g) + sqrt(1 - r_s) h_s))`` with w_s
  the scenario's ``shared_interest`` and r_s its ``systematic_shift``: T_s
  (:class:`SystematicShift`) is a scenario-level rotation plus an offset towards a few
  categories, the same for every user, so it is learnable from the scenario's pooled data;
  h_s is idiosyncratic. r_s = 0 is the world before the shift existed, bit for bit.
  Activity is lognormal (heavy tail, mean 1); profile features are categorical draws whose
  logits are projections of ``g`` (so they carry signal about interests).
* Items have a latent vector clustered by category, a content type, a lognormal duration
  and a quality bias. Each scenario sees a rotated view of the vector (``item_view_shift``):
  the same item means something different in a different scenario.
* Affinity(u, i, s) = affinity_scale * cos(pref_us, view_is) + quality_i.
* Response, vectorised over B x K exposures: click (or, in immersive scenarios, a "view"
  rather than a skip) with P = sigmoid(affinity + base_s) * position_bias_s[k]; watch time =
  duration * completion, completion ~ Beta with mean sigmoid(c0 + c1 * affinity); in
  immersive scenarios every exposure autoplays for a short exponential skip time and a view
  watches on from there (skip + (duration - skip) * completion); after the page the user continues
  with P = sigmoid(b0 + b_click * CTR(page) + b_watch * completion(page)).

Every draw in the response comes from :mod:`core.keyed`, keyed by request and
position, so responses do not depend on how requests are batched.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy import special

from core import keyed
from core.config import Config
from core.errors import UserError
from simulator.world import IMMERSIVE, Items, Responses, Scenario, Users


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def _random_rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return q * np.sign(np.diag(r))


GRID = 2.0**-12


def quantise(x: np.ndarray) -> np.ndarray:
    """Round to multiples of 2^-12.

    True vectors live on this grid so that inner products are exact in float64 (each product
    is a multiple of 2^-24 and a sum of up to 512 of them needs at most 33 bits), hence
    independent of BLAS summation order: the same user gets bit-identical scores whatever
    batch it is served in.
    """
    return np.round(x / GRID) * GRID


def row_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(B x d) . (B x K x d) -> B x K inner products (exact for grid vectors)."""
    return np.einsum("bd,bkd->bk", a, b)


def matrix_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(B x d) @ (N x d).T -> B x N inner products (exact for grid vectors)."""
    return a @ b.T


SHIFT_OFFSET = 0.5  # length of a scenario's offset towards its favoured categories
SHIFT_CATEGORIES = 2  # categories a scenario leans towards


@dataclass(frozen=True)
class SystematicShift:
    """A scenario's systematic taste shift T_s(g) = normalise(Q_s g + o_s), shared by all users.

    Q_s is a random rotation (the scenario re-weighs every interest direction the same way
    for everybody) and o_s an offset of length :data:`SHIFT_OFFSET` towards the mean of
    :data:`SHIFT_CATEGORIES` category centroids (the scenario favours some content). Both are
    scenario-level: learnable from the scenario's pooled data, unlike the idiosyncratic part
    h_us. Drawn from their own keyed generator, so adding them changes no other draw.
    """

    rotation: np.ndarray  # d x d
    offset: np.ndarray  # d

    @classmethod
    def draw(cls, seed: int, scenario: int, centroids: np.ndarray) -> SystematicShift:
        rng = np.random.default_rng([seed, 0x5EED, 0x5817, scenario])
        d = centroids.shape[1]
        picks = rng.choice(centroids.shape[0], size=min(SHIFT_CATEGORIES, centroids.shape[0]),
                           replace=False)  # fmt: skip
        toward = centroids[picks].mean(axis=0)
        norm = np.linalg.norm(toward)
        offset = SHIFT_OFFSET * (toward / norm if norm > 0 else np.zeros(d))
        return cls(_random_rotation(rng, d), offset)

    def apply(self, g: np.ndarray) -> np.ndarray:
        """N x d unit vectors T_s(g) of N x d shared interests."""
        return _unit(g @ self.rotation.T + self.offset)


class SyntheticWorld:
    """The ground truth. Built deterministically from a config (and its seed)."""

    def __init__(self, config: Config):
        self.config = config
        wc = config.world
        rng = np.random.default_rng([config.seed, 0x5EED])
        d, n_users, n_items = wc.latent_dim, wc.n_users, wc.n_items
        n_scen = len(config.scenarios)

        # Users (their preference needs the category centroids drawn below).
        shared = _unit(rng.standard_normal((n_users, d)))
        specific = _unit(rng.standard_normal((n_scen, n_users, d)))
        sigma = wc.activity_sigma
        activity = rng.lognormal(-(sigma**2) / 2, sigma, n_users)
        profile_names = tuple(wc.profile_features)
        profile = np.empty((n_users, len(profile_names)), dtype=np.int32)
        for f, name in enumerate(profile_names):
            levels = wc.profile_features[name]
            proj = rng.standard_normal((d, levels)) * np.sqrt(d)
            logits = wc.profile_signal * shared @ proj + rng.gumbel(size=(n_users, levels))
            profile[:, f] = logits.argmax(axis=1)

        # Items.
        centroids = _unit(rng.standard_normal((wc.n_categories, d)))
        self.shifts = tuple(SystematicShift.draw(config.seed, s, centroids) for s in range(n_scen))
        preference = quantise(self._preference(shared, specific))
        self.users = Users(shared, preference, activity, profile, profile_names)
        category = rng.integers(0, wc.n_categories, n_items).astype(np.int32)
        noise = rng.standard_normal((n_items, d)) / np.sqrt(d)
        latent = _unit(centroids[category] + wc.category_spread * noise)
        ct_names = tuple(wc.content_types)
        ct_share = np.array([wc.content_types[c].share for c in ct_names])
        content_type = rng.choice(len(ct_names), size=n_items, p=ct_share / ct_share.sum())
        content_type = content_type.astype(np.int32)
        mean_dur = np.array([wc.content_types[c].mean_duration for c in ct_names])[content_type]
        ds = wc.duration_sigma
        duration = rng.lognormal(np.log(mean_dur) - ds**2 / 2, ds)
        quality = rng.normal(0.0, wc.quality_sd, n_items)
        views = np.empty((n_scen, n_items, d))
        for s, sc in enumerate(config.scenarios):
            theta = sc.item_view_shift * np.pi / 2
            rot = _random_rotation(rng, d)
            views[s] = quantise(_unit(np.cos(theta) * latent + np.sin(theta) * latent @ rot.T))
        self.items = Items(latent, views, category, content_type, ct_names, duration, quality)

        # Scenarios.
        scenarios = []
        for s, sc in enumerate(config.scenarios):
            allowed = np.array([ct_names.index(c) for c in sc.content_types])
            pool = np.flatnonzero(np.isin(content_type, allowed))
            need = sc.slate_size * config.logging_policy.tier_size
            if pool.size < need:
                raise UserError(
                    f"scenarios[{s}] ({sc.name}): item pool has {pool.size} items, fewer than "
                    f"slate_size x logging_policy.tier_size = {need}; add items or content types"
                )
            bias = 1.0 / (1.0 + np.arange(sc.slate_size)) ** sc.position_decay
            scenarios.append(
                Scenario(
                    s,
                    sc.name,
                    sc.kind,
                    sc.traffic_share,
                    pool,
                    sc.slate_size,
                    sc.base_logit,
                    bias,
                    sc.shared_interest,
                )
            )
        self.scenarios: tuple[Scenario, ...] = tuple(scenarios)

    def _preference(self, shared: np.ndarray, specific: np.ndarray) -> np.ndarray:
        """S x U x d preferences: normalise(sqrt(w) g + sqrt(1 - w) (sqrt(r) T_s(g) +
        sqrt(1 - r) h_s)), w = shared_interest, r = systematic_shift (r = 0: today's world,
        bit for bit)."""
        out = np.empty_like(specific)
        for s, sc in enumerate(self.config.scenarios):
            w, r = sc.shared_interest, sc.systematic_shift
            own = specific[s]
            if r > 0:
                own = np.sqrt(r) * self.shifts[s].apply(shared) + np.sqrt(1 - r) * own
            out[s] = _unit(np.sqrt(w) * shared + np.sqrt(1 - w) * own)
        return out

    # ------------------------------------------------------------------ truth functions

    @cached_property
    def pool_masks(self) -> np.ndarray:
        """S x I bool: item i is in scenario s's pool."""
        mask = np.zeros((len(self.scenarios), self.items.n), dtype=bool)
        for sc in self.scenarios:
            mask[sc.index, sc.pool] = True
        return mask

    def affinity(self, scenario: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """True affinity of B users for their B x K items in `scenario` (click-logit units)."""
        pref = self.users.preference[scenario, users]
        view = self.items.views[scenario, items]
        cos = row_dot(pref, view)
        return self.config.world.affinity_scale * cos + self.items.quality[items]

    def affinity_matrix(self, scenario: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """B x N affinities of B users for one shared list of N items."""
        pref = self.users.preference[scenario, users]
        cos = matrix_dot(pref, self.items.views[scenario, items])
        return self.config.world.affinity_scale * cos + self.items.quality[items][None, :]

    def click_probability(self, scenario: int, affinity: np.ndarray) -> np.ndarray:
        """B x K probability of a click (a view, in immersive scenarios) at positions 0..K-1."""
        sc = self.scenarios[scenario]
        k = affinity.shape[-1]
        return special.expit(affinity + sc.base_logit) * sc.position_bias[:k]

    def completion_mean(self, affinity: np.ndarray) -> np.ndarray:
        c = self.config.world.completion
        return special.expit(c.intercept + c.slope * affinity)

    def expected_watch_time(self, scenario: int, items: np.ndarray, affinity: np.ndarray):
        """B x K expected watch time (seconds) of each exposure, clicks and skips included."""
        sc = self.scenarios[scenario]
        dur = self.items.duration[items]
        p = self.click_probability(scenario, affinity)
        completion = self.completion_mean(affinity)
        if sc.kind == IMMERSIVE:
            # S = min(duration, m Exp(1)) autoplays; E[S] = m (1 - exp(-duration / m)); a view
            # (independent of S) then watches a completion share of the rest.
            m = self.config.world.skip_seconds
            skip = m * (1 - np.exp(-dur / m))
            return skip + p * completion * (dur - skip)
        return p * dur * completion

    def continue_probability(self, click: np.ndarray, watch_fraction: np.ndarray) -> np.ndarray:
        """B probability of going on after a page, from its CTR and mean watched fraction."""
        lv = self.config.leave
        ctr = click.mean(axis=-1)
        completion = watch_fraction.mean(axis=-1)
        return special.expit(lv.intercept + lv.click_weight * ctr + lv.watch_weight * completion)

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
        completion = np.zeros((b, k))  # share of the item watched beyond any skip; 0 unless clicked
        rows, cols = np.nonzero(click)
        if rows.size:  # completion is only drawn where the item is watched
            mean = self.completion_mean(aff[rows, cols])
            conc = self.config.world.completion.concentration
            completion[rows, cols] = keyed.beta(
                seed, "completion", mean * conc, (1 - mean) * conc, rid[rows, 0], cols
            )
        if sc.kind == IMMERSIVE:
            # Every exposure autoplays for a skip time; a view then watches on from there.
            skip = self.config.world.skip_seconds * keyed.exponential(seed, "skip", rid, pos)
            skip = np.minimum(dur, skip)
            watch = skip + (dur - skip) * completion
        else:
            watch = dur * completion
        p_cont = self.continue_probability(click, watch / dur)
        cont = keyed.uniform(seed, "leave", request_ids) < p_cont
        cont &= page + 1 < self.config.leave.max_pages
        browse = 2.0 + self.config.traffic.browse_seconds * keyed.exponential(
            seed, "browse", request_ids
        )
        think = watch.sum(axis=1) + browse
        return Responses(click.astype(np.int8), watch, cont, think)
