"""abtest.stats: the statistics engine — pure functions over mergeable aggregates, typed
frozen results.

Every test works on :class:`Moments` (user count, column means and the matrix of centred
co-moments), never on event rows, so per-shard or per-day aggregates merge exactly and the
same numbers come out however the data was split. One module per job:

- :mod:`~abtest.stats.moments`: :class:`Moments`, the mergeable per-user aggregate.
- :mod:`~abtest.stats.estimates`: per-arm means and ratios with delta-method variances.
- :mod:`~abtest.stats.lift`: :func:`mean_test` (Welch t) and :func:`ratio_test`
  (delta-method z, Deng et al. 2018), both optionally CUPED, giving a :class:`LiftResult`
  with the relative lift and its delta-method CI.
- :mod:`~abtest.stats.srm`: :func:`srm_test`, sample-ratio mismatch (chi-square).
- :mod:`~abtest.stats.multiplicity`: :func:`adjust_p_values`, Benjamini-Hochberg and Holm.
- :mod:`~abtest.stats.bootstrap`: :func:`bootstrap_lift_ci`, a percentile cross-check.
- :mod:`~abtest.stats.sequential`: :func:`msprt_p_values`, always-valid p-values for
  repeated looks (Johari et al. 2017), and :func:`msprt_tau2`.
- :mod:`~abtest.stats.power`: :func:`mde`, :func:`power_at`, :func:`required_users`.
- :mod:`~abtest.stats.preference`: interleaving's statistics, :func:`preference_share`
  (credited share, delta method clustered by user) and :func:`preference_wins` (per-user
  wins/losses/ties, sign test).
- :mod:`~abtest.stats.sensitivity`: users needed per design by re-randomisation
  (:func:`ab_users_needed` on the twin's potential outcomes, with or without CUPED;
  :func:`interleaving_users_needed`), with analytic cross-checks.
- :mod:`~abtest.stats.guards`: the one input check and NaN-safe arithmetic.

Degenerate data (an empty arm, zero variance, a control mean of 0) gives NaN fields rather
than exceptions; bad arguments raise :class:`~core.errors.UserError` with a message of the
form ``"<what>: must be <condition>, got <value>"``.

This ``__init__`` is the statistics API (``from abtest import stats; stats.mean_test(...)``):
it names the public functions and results of the modules above in ``__all__``.

Bottom of ``abtest`` (beside ``serving`` and ``pipeline``): may import ``core`` only, plus
numpy and scipy; never another ``abtest`` package.
"""

from abtest.stats.bootstrap import bootstrap_lift_ci
from abtest.stats.estimates import Estimate, mean_estimate, ratio_estimate
from abtest.stats.lift import LiftResult, mean_test, ratio_test
from abtest.stats.moments import Moments
from abtest.stats.multiplicity import adjust_p_values
from abtest.stats.power import mde, power_at, required_users
from abtest.stats.preference import (
    PreferenceShare,
    PreferenceWins,
    preference_share,
    preference_wins,
)
from abtest.stats.sensitivity import (
    PotentialOutcomes,
    UsersNeeded,
    ab_power,
    ab_users_needed,
    analytic_interleaving_users,
    analytic_users,
    interleaving_power,
    interleaving_users_needed,
    users_needed,
)
from abtest.stats.sequential import msprt_p_values, msprt_tau2
from abtest.stats.srm import SRM_THRESHOLD, SRMResult, srm_test

__all__ = [
    "SRM_THRESHOLD",
    "Estimate",
    "LiftResult",
    "Moments",
    "PotentialOutcomes",
    "PreferenceShare",
    "PreferenceWins",
    "SRMResult",
    "UsersNeeded",
    "ab_power",
    "ab_users_needed",
    "adjust_p_values",
    "analytic_interleaving_users",
    "analytic_users",
    "bootstrap_lift_ci",
    "interleaving_power",
    "interleaving_users_needed",
    "mde",
    "mean_estimate",
    "mean_test",
    "msprt_p_values",
    "msprt_tau2",
    "power_at",
    "preference_share",
    "preference_wins",
    "ratio_estimate",
    "ratio_test",
    "required_users",
    "srm_test",
    "users_needed",
]
