"""The world the engine serves: its users, items and scenarios, and the `World` protocol.

Shapes: U users, I items, S scenarios, d latent dims, B requests, K slate positions.

The engine, serving, the truth twin and OPE truth depend on :class:`World`, never on one
world class. :mod:`simulator.synthetic` holds the synthetic ground truth that implements it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from core.config import Config

FEED, IMMERSIVE = "feed", "immersive"


@dataclass(frozen=True)
class Users:
    shared: np.ndarray  # U x d, unit vectors
    preference: np.ndarray  # S x U x d, unit vectors on the GRID (mix of shared and specific)
    activity: np.ndarray  # U, mean 1
    profile: np.ndarray  # U x F int32
    profile_names: tuple[str, ...]

    @property
    def n(self) -> int:
        return self.activity.shape[0]


@dataclass(frozen=True)
class Items:
    latent: np.ndarray  # I x d, unit vectors
    views: np.ndarray  # S x I x d, the item as seen in each scenario (unit, on the GRID)
    category: np.ndarray  # I int32
    content_type: np.ndarray  # I int32, index into content_type_names
    content_type_names: tuple[str, ...]
    duration: np.ndarray  # I float64 seconds
    quality: np.ndarray  # I float64, additive click logit

    @property
    def n(self) -> int:
        return self.quality.shape[0]


@dataclass(frozen=True)
class Scenario:
    index: int
    name: str
    kind: str
    traffic_share: float
    pool: np.ndarray  # sorted item ids available in this scenario
    slate_size: int
    base_logit: float
    position_bias: np.ndarray  # slate_size, decreasing, position_bias[0] == 1
    shared_interest: float


@dataclass(frozen=True)
class Responses:
    """Responses to B slates of K items (K = the scenario's slate size)."""

    click: np.ndarray  # B x K int8 (in immersive scenarios: a view rather than a skip)
    watch_time: np.ndarray  # B x K float64 seconds
    cont: np.ndarray  # B bool: the user goes on to another page
    think_time: np.ndarray  # B float64 seconds until the next page would be requested


class World(Protocol):
    """What the engine, serving, the twin and OPE truth call on a world.

    The synthetic world (:class:`simulator.synthetic.SyntheticWorld`) implements it; a
    world fitted from logs must too, and then plugs in without touching the engine.
    Shapes: B requests, K slate positions, N items.
    """

    config: Config
    users: Users
    items: Items
    scenarios: tuple[Scenario, ...]

    def affinity(self, scenario: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """B x K affinity of B users for their B x K items (click-logit units)."""
        ...

    def affinity_matrix(self, scenario: int, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """B x N affinities of B users for one shared list of N items."""
        ...

    def click_probability(self, scenario: int, affinity: np.ndarray) -> np.ndarray:
        """B x K probability of a click (a view, in immersive scenarios) at positions 0..K-1."""
        ...

    def expected_watch_time(
        self, scenario: int, items: np.ndarray, affinity: np.ndarray
    ) -> np.ndarray:
        """B x K expected watch time (seconds) of each exposure."""
        ...

    def respond(
        self,
        scenario: int,
        users: np.ndarray,
        items: np.ndarray,
        request_ids: np.ndarray,
        page: np.ndarray,
        seed: int,
    ) -> Responses:
        """The users' sampled responses to B slates (B x K items), keyed by request and position."""
        ...
