"""The off-policy estimators of the ``replay`` command, one small class each — :class:`Replay`,
:class:`IPS`, :class:`SNIPS`, :class:`DoublyRobust` — over the pure functions of
:mod:`abtest.offline.ope`, and the registry :data:`ESTIMATORS` (name -> class).

Each turns one policy's per-exposure :class:`Inputs` into its :class:`ope.Terms` on a subset
of the exposures, says why it cannot run when it cannot, and why its confidence interval is
not to be trusted when it is not.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from abtest.offline import ope
from core.errors import UserError

MIN_EVENTS_FOR_CI = 30  # matched events (replay) or effective sample size (weighted) for a CI
# With no rewarded event at all (0 clicks among the matched or weighted events) every term
# is 0 and the normal CI collapses to [0, 0]: withheld, not shown as certainty (replay gave
# [0.000%, 0.000%] after 116 matches without a click on the Open Bandit Dataset).
MIN_REWARDED_FOR_CI = 1


@dataclass(frozen=True)
class Inputs:
    """Everything the estimators need for one policy, one metric, one scenario."""

    r: np.ndarray
    pi: np.ndarray
    mu: np.ndarray  # NaN where the log has no propensity
    matched: np.ndarray
    q_logged: np.ndarray
    q_target: np.ndarray
    clusters: np.ndarray
    top_shown: np.ndarray  # the logged item is the target's own top-K item at that position


@dataclass(frozen=True)
class Estimator:
    """An importance-weighted estimator; `clip` caps its weights (None: no clipping)."""

    name: ClassVar[str]
    weighted: ClassVar[bool] = True  # rests on the log's propensities
    missing: ClassVar[str] = "the log has no propensities"  # why it may not run

    clip: float | None = None

    def terms(self, x: Inputs, mask: np.ndarray) -> ope.Terms | None:
        """The estimator's terms on the events in `mask` (None when it cannot run there)."""
        if not mask.any() or np.isnan(x.mu[mask]).any():
            return None
        return self._terms(x, mask)

    def _terms(self, x: Inputs, m: np.ndarray) -> ope.Terms:
        raise NotImplementedError

    def withheld(self, res: ope.OPEResult, x: Inputs, mask: np.ndarray) -> str | None:
        """Why the CI of `res` is not to be trusted (None: it is)."""
        # E_mu[pi/mu] = 1 when the logs cover the target: a sample mean far from 1 means the
        # target's mass sits on items the logs (almost) never showed
        w = x.pi[mask] / x.mu[mask]
        mean_w = float(np.nanmean(w))
        if res.ess < MIN_EVENTS_FOR_CI or not 0.5 <= mean_w <= 2.0:
            return f"effective sample size {res.ess:,.0f}, mean weight {mean_w:.2f}"
        return _few_rewarded(w * x.r[mask])


class Replay(Estimator):
    """Li et al.'s rejection replay on the uniform slice: no propensities, no weights."""

    name = "replay"
    weighted = False
    missing = "no uniform-slice events"

    def terms(self, x: Inputs, mask: np.ndarray) -> ope.Terms | None:
        if not mask.any():
            return None
        return ope.replay_terms(x.r[mask], x.matched[mask])

    def withheld(self, res: ope.OPEResult, x: Inputs, mask: np.ndarray) -> str | None:
        if res.n < MIN_EVENTS_FOR_CI:
            return f"{res.n:,} matched events"
        return _few_rewarded(x.r[mask] * x.matched[mask])


def _few_rewarded(weighted_rewards: np.ndarray) -> str | None:
    """Why a CI is withheld for want of rewarded events (None: enough of them)."""
    eff = ope.ess(np.nan_to_num(weighted_rewards))
    if eff < MIN_REWARDED_FOR_CI:
        return "no rewarded event"
    return None


class IPS(Estimator):
    """Inverse propensity scoring."""

    name = "ips"

    def _terms(self, x: Inputs, m: np.ndarray) -> ope.Terms:
        return ope.ips_terms(x.r[m], x.pi[m], x.mu[m], self.clip)


class SNIPS(Estimator):
    """Self-normalised inverse propensity scoring."""

    name = "snips"

    def _terms(self, x: Inputs, m: np.ndarray) -> ope.Terms:
        return ope.snips_terms(x.r[m], x.pi[m], x.mu[m], self.clip)


class DoublyRobust(Estimator):
    """Doubly robust: the reward model's value plus weighted residuals."""

    name = "dr"

    def _terms(self, x: Inputs, m: np.ndarray) -> ope.Terms:
        return ope.dr_terms(x.r[m], x.pi[m], x.mu[m], x.q_logged[m], x.q_target[m], self.clip)


ESTIMATORS: dict[str, type[Estimator]] = {e.name: e for e in (Replay, IPS, SNIPS, DoublyRobust)}


def estimators_named(names: Iterable[str], clip: float | None = None) -> tuple[Estimator, ...]:
    """The estimators called `names`, in that order; an unknown or empty list is a UserError."""
    names = list(names)
    bad = [e for e in names if e not in ESTIMATORS]
    if bad or not names:
        raise UserError(
            f"unknown estimator {', '.join(map(repr, bad)) or '(none given)'}; "
            f"known: {', '.join(ESTIMATORS)}"
        )
    return tuple(ESTIMATORS[e](clip) for e in names)
