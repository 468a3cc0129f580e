"""The design advisor (``python -m abtest plan``): per scenario and metric, which design
detects the treatment's effect with the fewest users, and what each design estimates.

One simulation serves every question: an A/B run with its truth twin (every user's outcome
under both arms, :func:`~abtest.online.experiment.run_experiment`) and one recall-variant
interleaving run (:func:`~abtest.online.interleaving.run_interleaving`) over the same days
with the same seed. Then per population (each scenario, and ``overall``) and headline metric
(``ctr``, ``watch_time_per_user``):

* **users available**: the users with at least one session in the scenario during the
  simulated days (the analysis's rule, :mod:`abtest.online.analysis`), counted over the
  whole traffic before any allocation or holdout;
* **potential outcomes** from the twin (ctr: clicks and impressions under each arm; watch
  time: per-user watch seconds, denominator 1), with the same metric's pre-period value as
  the CUPED covariate, and the **true lift** they imply;
* **users needed** for :data:`POWER` power at the config's alpha, by re-randomisation
  (:mod:`abtest.stats.sensitivity`), for three designs: ``ab`` (two random halves, the
  analysis's test), ``ab_cuped`` (the same with CUPED) and ``interleaving`` (the credited
  clicks, or credited watch time, of the interleaving run resampled by user; detection =
  a significant preference with the sign of the true lift);
* **days needed** per design: ``days x n_needed / n_available``, assuming users accrue in
  proportion to days (see :data:`ASSUMPTIONS`);
* a **recommendation** with its reason (:func:`recommend`).

Every search draws from ``numpy.random.default_rng([seed, population, metric])`` (population
= the scenario's index, the number of scenarios for ``overall``; metric = its index in
:data:`~abtest.online.analysis.HEADLINE_METRICS`), a fresh generator per design: A/B and
A/B with CUPED then draw the same users and splits at each grid size (common random
numbers), so their difference is CUPED's and not the draws'.

The search range is [:data:`LO`, :data:`HI_PER_AVAILABLE` x available]: below ``LO`` users
an A/B arm holds about 25 users, too few for the tests' normal approximations (delta method,
Welch) to be trusted; above the available users the draws resample the observed users with
replacement (future users assumed alike), and beyond 100 times them, about 100 times the
planned days, a design is reported as beyond reach rather than extrapolated further (the
bound also keeps the search's cost finite: it grows with n).

May import ``core``, ``simulator``, ``models``, :mod:`abtest.serving`, :mod:`abtest.stats`
and the other ``abtest.online`` modules; never ``abtest.report`` or ``abtest.cli``.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abtest.online.analysis import HEADLINE_METRICS
from abtest.online.experiment import ExperimentData, check_experiment_size, run_experiment
from abtest.online.interleaving import InterleavingData, run_interleaving
from abtest.online.user_stats import CLICKS, IMPRESSIONS, SESSIONS, WATCH
from abtest.stats import (
    PotentialOutcomes,
    UsersNeeded,
    ab_users_needed,
    interleaving_users_needed,
)
from core.config import Config
from core.errors import UserError

DESIGNS = ("ab", "ab_cuped", "interleaving")
DESIGN_LABELS = {"ab": "A/B", "ab_cuped": "A/B + CUPED", "interleaving": "interleaving"}
# on a tie in users needed: the designs that estimate the lift first, CUPED (less variance)
# before the plain A/B
TIE_ORDER = ("ab_cuped", "ab", "interleaving")
OVERALL = "overall"
POWER = 0.8  # the target power of every design
LO = 50  # the smallest experiment searched (see the module doc)
HI_PER_AVAILABLE = 100  # the largest: this many times the available users
# interleaving's credited engagement per headline metric (abtest.online.interleaving)
CREDIT = {"ctr": "clicks", "watch_time_per_user": "watch_time"}

ESTIMANDS = {
    "ab": "the relative lift of the metric per user in the scenario when all its users get the "
    "treatment instead of the control (the truth twin's true lift); the test compares two "
    "random halves of the users",
    "ab_cuped": "the same estimand as the A/B (the relative lift), with less variance: each "
    "user's value is adjusted by the same metric's pre-period value",
    "interleaving": "the users' preference between the two arms' items shown on the same "
    "requests: the treatment's share of the credited engagement (clicks for ctr, watch time "
    "for watch time), tested against 1/2. Its sign is expected to agree with the lift's (a "
    "detection counts only then) but its size is not a lift. The recall variant (the shared "
    "ranker picks the slate from both arms' merged candidates) rewards the arm with more good "
    "candidates below its top k, the slate variant (the arms' own slates merged) compares "
    "each arm's own top k as the A/B does: on the default world the slate variant's sign "
    "agreed with the true lift in 39/39 scenario x metric x model cases with |lift| >= 2%, "
    "the recall variant's in 34/39 (popular vs mixed, whose top k is as good as mixed's but "
    "whose candidates below it are weaker)",
}
ASSUMPTIONS = (
    "users available = every user with at least one session in the scenario during the "
    "simulated days, over the whole traffic (before the config's allocation or holdout)",
    "users needed count every user of the experiment: both A/B arms together (split 50/50), "
    "all interleaved users",
    "days needed = planned days x users needed / users available: users are assumed to "
    "accrue in proportion to days. They grow more slowly (returning users are not new: see "
    "the users by day), so within the planned days this overstates the days and beyond them "
    "it understates them; 'days by accrual' is the simulated day by whose end enough "
    "distinct users had come (within the planned days only). The power was measured on each "
    "user's sums over all the planned days: a shorter run sees less of each user, a longer "
    "one more",
    "beyond the available users the re-randomisation resamples the observed users with "
    "replacement: future users are assumed to look like them",
    "power is measured at a geometric grid of experiment sizes, each by `reps` simulated "
    "experiments, and interpolated on log n; the analytic normal approximation is shown as "
    "a cross-check",
)
CAVEATS = (
    "interleaving cannot measure session-level effects (pages per session, leave rate, "
    "sessions per user): every user sees both arms' items in every session",
    "interleaving's preference is not a lift: to size the effect (and to ship on it) an A/B "
    "is still needed",
    "novelty and learning effects: the simulated users do not change their behaviour over "
    "time beyond their click histories, so a real effect may fade or grow after the planned "
    "days",
    "network effects do not exist in this simulator (users do not interact), so the A/B's "
    "and the twin's lifts carry no interference",
    "the plan is one simulated period: its users needed carry the re-randomisation's "
    "Monte-Carlo error (reps) and the period's own randomness (another seed differs)",
)


@dataclass(frozen=True)
class DesignPlan:
    """One design for one population and metric: the users it needs (by re-randomisation),
    the days that takes (None when beyond reach) and whether it fits the planned days."""

    design: str
    needed: UsersNeeded
    days_needed: float | None  # planned days x n / users available
    fits: bool  # n <= users available
    # the first simulated day by whose end n distinct users had a session (None: beyond)
    days_by_accrual: int | None = None


@dataclass(frozen=True)
class ScenarioPlan:
    """One row of the plan: a population (a scenario, or ``overall``) and a metric."""

    scenario: str
    metric: str
    users_available: int
    users_by_day: tuple[int, ...]  # distinct users with a session by the end of each day
    interleaved_users: int  # users active there in the interleaving run
    control_value: float | None  # the metric with everyone on the control (twin)
    treatment_value: float | None
    true_lift: float | None
    preference_share: float | None  # the treatment's share of the credited engagement
    designs: tuple[DesignPlan, ...]  # in DESIGNS order; empty when too few users
    recommended: str | None  # one of DESIGNS, None when no design reaches the power
    reason: str

    def design(self, name: str) -> DesignPlan:
        return next(d for d in self.designs if d.design == name)


@dataclass(frozen=True)
class Simulation:
    """What the one simulation served."""

    ab_requests: int
    ab_wall_seconds: float
    twin_wall_seconds: float
    interleaving_requests: int
    interleaving_wall_seconds: float
    uncredited_impressions: int  # interleaved slots filled from the pool (credited to nobody)


@dataclass(frozen=True)
class Plan:
    """The advisor's answer for one treatment and control (see the module doc)."""

    treatment: str
    control: str
    world: str
    seed: int
    days: int
    reps: int
    alpha: float
    power: float
    lo: int
    hi_per_available: int
    scenarios: tuple[str, ...]
    traffic_share: dict[str, float]
    rows: tuple[ScenarioPlan, ...]  # scenario-major, then OVERALL; metrics in HEADLINE order
    estimands: dict[str, str]
    assumptions: tuple[str, ...]
    caveats: tuple[str, ...]
    simulation: Simulation
    notes: tuple[str, ...] = ()
    variant: str = "recall"  # the interleaving variant simulated (recall or slate)

    def row(self, scenario: str, metric: str) -> ScenarioPlan:
        return next(r for r in self.rows if r.scenario == scenario and r.metric == metric)

    def to_json(self) -> dict[str, Any]:
        """The plan as plain JSON data (write it with strict JSON: NaN never occurs here)."""
        return {
            "kind": "plan",
            "treatment": self.treatment,
            "control": self.control,
            "world": self.world,
            "seed": self.seed,
            "days": self.days,
            "reps": self.reps,
            "alpha": self.alpha,
            "power": self.power,
            "search": {"lo": self.lo, "hi_per_available": self.hi_per_available},
            "scenarios": list(self.scenarios),
            "traffic_share": dict(self.traffic_share),
            "designs": {d: DESIGN_LABELS[d] for d in DESIGNS},
            "estimands": dict(self.estimands),
            "assumptions": list(self.assumptions),
            "caveats": list(self.caveats),
            "notes": list(self.notes),
            "variant": self.variant,
            "rows": [_row_json(r) for r in self.rows],
            "simulation": vars(self.simulation).copy(),
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Plan:
        """The inverse of :meth:`to_json`."""
        return cls(
            treatment=body["treatment"],
            control=body["control"],
            world=body["world"],
            seed=body["seed"],
            days=body["days"],
            reps=body["reps"],
            alpha=body["alpha"],
            power=body["power"],
            lo=body["search"]["lo"],
            hi_per_available=body["search"]["hi_per_available"],
            scenarios=tuple(body["scenarios"]),
            traffic_share=dict(body["traffic_share"]),
            rows=tuple(_row_from_json(r) for r in body["rows"]),
            estimands=dict(body["estimands"]),
            assumptions=tuple(body["assumptions"]),
            caveats=tuple(body["caveats"]),
            simulation=Simulation(**body["simulation"]),
            notes=tuple(body["notes"]),
            variant=body.get("variant", "recall"),
        )


def _row_json(r: ScenarioPlan) -> dict[str, Any]:
    out = {k: v for k, v in vars(r).items() if k != "designs"}
    out["users_by_day"] = list(r.users_by_day)
    out["designs"] = {
        d.design: {
            "users_needed": _needed_json(d.needed),
            "days_needed": d.days_needed,
            "fits": d.fits,
            "days_by_accrual": d.days_by_accrual,
        }
        for d in r.designs
    }
    return out


def _needed_json(u: UsersNeeded) -> dict[str, Any]:
    out = dict(vars(u))
    out["grid"], out["powers"] = list(u.grid), list(u.powers)
    return out


def _needed_from_json(body: dict[str, Any]) -> UsersNeeded:
    return UsersNeeded(**{k: tuple(v) if k in ("grid", "powers") else v for k, v in body.items()})


def _row_from_json(body: dict[str, Any]) -> ScenarioPlan:
    designs = tuple(
        DesignPlan(
            name,
            _needed_from_json(d["users_needed"]),
            d["days_needed"],
            d["fits"],
            d["days_by_accrual"],
        )
        for name, d in body["designs"].items()
    )
    fields = {k: v for k, v in body.items() if k not in ("designs", "users_by_day")}
    return ScenarioPlan(**fields, users_by_day=tuple(body["users_by_day"]), designs=designs)


# ------------------------------------------------------------------------ the populations


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _per_user(values: np.ndarray, scenario: int | None) -> np.ndarray:
    """S x U x D x k sums -> U x D x k in the scenario (all scenarios if None)."""
    return values.sum(axis=0) if scenario is None else values[scenario]


def _active(sessions_u_d: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    """The users with a session (U x D sessions), and the distinct users by each day."""
    seen = np.cumsum(sessions_u_d, axis=1) > 0
    return np.flatnonzero(seen[:, -1]), tuple(int(n) for n in seen.sum(axis=0))


def outcomes_for(
    data: ExperimentData, scenario: int | None, users: np.ndarray, metric: str
) -> PotentialOutcomes:
    """The twin's potential outcomes of `metric` for `users` in the scenario (None: all),
    the CUPED covariate being the same metric's pre-period value (as the analysis builds
    it)."""
    if data.truth is None:
        raise ValueError("the plan needs the truth twin (run_experiment(..., twin=True))")
    arms = [_per_user(data.truth[a], scenario)[users].sum(axis=1) for a in (0, 1)]
    pre = (data.pre.sum(axis=0) if scenario is None else data.pre[scenario])[users]
    if metric == "ctr":
        return PotentialOutcomes.ratio_metric(
            arms[0][:, CLICKS],
            arms[0][:, IMPRESSIONS],
            arms[1][:, CLICKS],
            arms[1][:, IMPRESSIONS],
            x=pre[:, CLICKS],
            x_den=pre[:, IMPRESSIONS],
        )
    if metric == "watch_time_per_user":
        return PotentialOutcomes.mean_metric(arms[0][:, WATCH], arms[1][:, WATCH], x=pre[:, WATCH])
    raise ValueError(f"the plan knows the metrics {', '.join(CREDIT)}, not {metric!r}")


def preference(t: np.ndarray, c: np.ndarray) -> float | None:
    """The treatment's share of the credited engagement, Σt / Σ(t + c); None without any."""
    total = float(t.sum() + c.sum())
    return float(t.sum()) / total if total > 0 else None


# --------------------------------------------------------------------- the recommendation


def _count(n: float) -> str:
    return f"{n:,.0f}"


def _days(d: float) -> str:
    return f"{d:.2g}" if d < 10 else f"{d:,.0f}"


def planned(days: int) -> str:
    """ "1 planned day", "14 planned days"."""
    return f"{days} planned day" + ("" if days == 1 else "s")


def _best(designs: list[DesignPlan]) -> DesignPlan:
    return min(designs, key=lambda d: (d.needed.n, TIE_ORDER.index(d.design)))


def recommend(
    designs: tuple[DesignPlan, ...],
    available: int,
    days: int,
    true_lift: float | None,
    preference_share: float | None = None,
) -> tuple[str | None, str]:
    """The recommended design and why.

    The design with the fewest users needed among those that fit the available users within
    the planned days; if none fits, the one with the fewest days needed; None when no design
    reaches the power within the searched range (or there are no designs). Ties go by
    :data:`TIE_ORDER`. `preference_share` (interleaving's) explains an interleaving that
    cannot detect the lift because its preference points the other way.
    """
    if not designs:
        return None, "fewer than 2 users in the scenario: nothing to plan"
    notes = []
    if (
        true_lift is not None
        and preference_share is not None
        and true_lift != 0
        and preference_share != 0.5
        and (true_lift > 0) != (preference_share > 0.5)
    ):
        notes.append(
            f"interleaving's preference ({preference_share:.0%} of the credited engagement to "
            f"the treatment) points against the true lift ({true_lift:+.2%}), so it never "
            "detects it"
        )
    found = [d for d in designs if d.needed.n is not None]
    if not found:
        hi = max(d.needed.hi for d in designs)
        if true_lift is None or true_lift == 0:
            reason = "the true lift is 0 (or undefined): there is no effect to detect"
        else:
            reason = (
                f"no design reaches {designs[0].needed.target:.0%} power within {_count(hi)} "
                f"users ({HI_PER_AVAILABLE} x the available, about "
                f"{_days(HI_PER_AVAILABLE * days)} days): the true lift ({true_lift:+.2%}) is "
                "too small for this traffic"
            )
        return None, "; ".join([reason, *notes])
    best = _best(found)
    label, n = DESIGN_LABELS[best.design], best.needed.n
    at_lo = best.needed.status == "at most lo"
    how = "at most " if at_lo else ""
    if best.fits:
        reason = (
            f"{label} needs the fewest users: {how}{_count(n)} of the {_count(available)} "
            f"available ({how}{_days(best.days_needed)} of the {planned(days)})"
        )
    elif at_lo:
        reason = (
            f"{label} reaches the power at {_count(n)} users, the smallest size searched, more "
            f"than the {_count(available)} users of the {planned(days)}: at most "
            f"{_days(best.days_needed)} days, if users accrue in proportion to days"
        )
    else:
        reason = (
            f"no design fits the {_count(available)} users of the {planned(days)}; {label} "
            f"needs the fewest days: {_days(best.days_needed)} ({_count(n)} users, if users "
            "accrue in proportion to days)"
        )
    if best.design == "interleaving":
        sizes = [d for d in found if d.design != "interleaving"]
        if sizes:
            ab = _best(sizes)
            size = (
                f"{DESIGN_LABELS[ab.design]} needs {_count(ab.needed.n)} users "
                f"({_days(ab.days_needed)} days)"
            )
        else:
            size = f"no A/B design reaches the power within {_count(designs[0].needed.hi)} users"
        notes.append(f"it gives the preference's direction, not the lift's size ({size})")
    return best.design, "; ".join([reason, *notes])


# ------------------------------------------------------------------------------- the run


def _plan_row(
    data: ExperimentData,
    il: InterleavingData,
    scenario: int | None,
    metric: str,
    *,
    reps: int,
    alpha: float,
    power: float,
) -> ScenarioPlan:
    n_scen = len(data.scenarios)
    name = OVERALL if scenario is None else data.scenarios[scenario]
    # arrivals do not depend on the arm: the twin's control sessions are everyone's
    users, by_day = _active(_per_user(data.truth[0], scenario)[..., SESSIONS])
    il_users, _ = _active(_per_user(il.observed.values[0], scenario)[..., SESSIONS])
    t_all, c_all, _ = il.credited(scenario, CREDIT[metric])
    t, c = t_all[il_users], c_all[il_users]
    common = {
        "scenario": name,
        "metric": metric,
        "users_available": int(users.size),
        "users_by_day": by_day,
        "interleaved_users": int(il_users.size),
        "preference_share": preference(t, c),
    }
    if users.size < 2 or il_users.size < 2:
        recommended, reason = recommend((), int(users.size), data.days, None)
        return ScenarioPlan(
            **common,
            control_value=None,
            treatment_value=None,
            true_lift=None,
            designs=(),
            recommended=recommended,
            reason=reason,
        )
    po = outcomes_for(data, scenario, users, metric)
    true_lift = _finite(po.true_lift)
    sign = int(np.sign(true_lift)) if true_lift is not None else 0
    key = [data.seed, n_scen if scenario is None else scenario, HEADLINE_METRICS.index(metric)]
    hi = max(LO, HI_PER_AVAILABLE * int(users.size))
    search = {"lo": LO, "hi": hi, "target": power, "reps": reps, "alpha": alpha}
    needed = {
        "ab": ab_users_needed(po, cuped=False, rng=np.random.default_rng(key), **search),
        "ab_cuped": ab_users_needed(po, cuped=True, rng=np.random.default_rng(key), **search),
        "interleaving": interleaving_users_needed(
            t, c, sign=sign, rng=np.random.default_rng(key), **search
        ),
    }
    designs = []
    for d in DESIGNS:
        n = needed[d].n
        days_needed = None if n is None else data.days * n / users.size
        accrued = None if n is None else next((k + 1 for k, u in enumerate(by_day) if u >= n), None)
        fits = n is not None and n <= users.size
        designs.append(DesignPlan(d, needed[d], days_needed, fits, accrued))
    recommended, reason = recommend(
        tuple(designs), int(users.size), data.days, true_lift, common["preference_share"]
    )
    return ScenarioPlan(
        **common,
        control_value=_finite(po.control_value),
        treatment_value=_finite(po.treatment_value),
        true_lift=true_lift,
        designs=tuple(designs),
        recommended=recommended,
        reason=reason,
    )


def plan_from_runs(
    config: Config,
    data: ExperimentData,
    il: InterleavingData,
    *,
    world: str,
    reps: int = 200,
    power: float = POWER,
    say: Callable[[str], None] = lambda m: None,
) -> Plan:
    """The plan from one A/B run with its twin and one interleaving run of the same days."""
    if data.truth is None:
        raise ValueError("the plan needs the truth twin (run_experiment(..., twin=True))")
    if il.days != data.days or il.scenarios != data.scenarios or il.arms != data.arms:
        raise ValueError("the A/B and the interleaving runs must be of the same arms and days")
    alpha = config.experiment.alpha
    rows = []
    populations = [*range(len(data.scenarios)), None]
    for s in populations:
        say(f"      {OVERALL if s is None else data.scenarios[s]}")
        for metric in HEADLINE_METRICS:
            rows.append(_plan_row(data, il, s, metric, reps=reps, alpha=alpha, power=power))
    notes = []
    if data.arms[0] == data.arms[1]:
        notes.append(
            f"treatment and control are both {data.arms[0]!r}: an A/A plan, the true "
            "lift is 0 and no design can detect it"
        )
    return Plan(
        treatment=data.arms[1],
        control=data.arms[0],
        world=world,
        seed=data.seed,
        days=data.days,
        reps=reps,
        alpha=alpha,
        power=power,
        lo=LO,
        hi_per_available=HI_PER_AVAILABLE,
        scenarios=tuple(data.scenarios),
        traffic_share={s.name: s.traffic_share for s in config.scenarios},
        rows=tuple(rows),
        estimands=dict(ESTIMANDS),
        assumptions=ASSUMPTIONS,
        caveats=CAVEATS,
        simulation=Simulation(
            ab_requests=int(data.requests),
            ab_wall_seconds=round(float(data.wall_seconds), 1),
            twin_wall_seconds=round(float(data.twin_wall_seconds), 1),
            interleaving_requests=int(il.requests),
            interleaving_wall_seconds=round(float(il.wall_seconds), 1),
            uncredited_impressions=int(il.uncredited.sum()) if il.uncredited is not None else 0,
        ),
        notes=tuple(notes),
        variant=il.variant,
    )


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_plan(
    config: Config,
    treatment: str,
    control: str,
    *,
    world: Path | None,
    days: int | None = None,
    seed: int | None = None,
    reps: int = 200,
    variant: str = "recall",
    progress: bool = True,
    say: Callable[[str], None] = _stderr,
) -> Plan:
    """Prepare the world and models, simulate once (A/B + twin, and the `variant`
    interleaving) over `days` (default: the config's) with `seed` (default: the config's),
    and plan."""
    from abtest.online.runner import prepare, world_label
    from abtest.serving import build_policy

    days = config.periods.experiment_days if days is None else days
    seed = config.seed if seed is None else seed
    for value, what in ((days, "days"), (reps, "reps")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"{what}: must be an integer >= 1, got {value!r}")
    # the A/B sums, the twin's and their total; the interleaving run's sums and credit
    check_experiment_size(config, days, copies=4)
    prep = prepare(config, [control, treatment], progress, world=world)
    policies = tuple(
        build_policy(n, prep.world, prep.recallers[n], config.serving, seed)
        for n in (control, treatment)
    )
    names = (control, treatment)
    say(
        f"[3/4] simulating {days} days: {treatment} vs {control} as an A/B with its truth twin, "
        "then interleaved"
    )
    t0 = time.perf_counter()
    data = run_experiment(
        config,
        prep.world,
        policies,
        prep.logs,
        names=names,
        days=days,
        seed=seed,
        twin=True,
        progress=progress,
    )
    il = run_interleaving(
        config,
        prep.world,
        *policies,
        prep.logs,
        names=names,
        days=days,
        seed=seed,
        variant=variant,
        progress=progress,
    )
    say(f"      {data.requests + il.requests:,} requests in {time.perf_counter() - t0:.0f} s")
    say(f"[4/4] users needed per design by re-randomisation ({reps} experiments per size)")
    return plan_from_runs(config, data, il, world=world_label(world), reps=reps, say=say)
