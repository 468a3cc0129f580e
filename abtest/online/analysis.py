"""From an experiment's per-user sums to its typed results (:mod:`abtest.online.results`).

The analysis unit is the user (users are what is randomised). Per scenario, the users
analysed are the experiment's users (holdout excluded) who had at least one session in the
scenario; arrivals do not depend on the arm in this simulator, so that set is not shaped by
the treatment. Metrics:

* ``ctr`` = clicks / impressions, a ratio analysed by the delta method (per-user pairs);
* ``watch_time_per_user``, ``clicks_per_user``, ``pages_per_user``: per-user means, Welch t.

With CUPED each metric is adjusted by the same metric's pre-period value (per user, same
scenario; 0 for users without pre-period traffic). p-values are corrected across scenario ×
metric (Benjamini-Hochberg by default); ``overall`` is its own family. Each scenario's
``true_lift`` comes from the truth twin: the same users' values with every one of them
served by the control and by the treatment (the finite-population lift the test estimates).

Daily looks: every statistic is recomputed on the data up to each day, giving the
cumulative lift, its CI, the naive p-value and the always-valid mSPRT p-value.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from abtest import stats
from abtest.online.experiment import ARMS, ExperimentData
from abtest.online.results import (
    DailySeries,
    Distribution,
    ExperimentResults,
    Latency,
    MetricLift,
    PerArm,
    Population,
    ScenarioPopulation,
    Segment,
    Serving,
    Srm,
)
from abtest.online.user_stats import CLICKS, IMPRESSIONS, PAGES, SESSIONS, WATCH

METRICS = ("ctr", "watch_time_per_user", "clicks_per_user", "pages_per_user")
# the metrics of the headline tables, the segments and the daily looks
HEADLINE_METRICS = ("ctr", "watch_time_per_user")
_COLUMN = {"watch_time_per_user": WATCH, "clicks_per_user": CLICKS, "pages_per_user": PAGES}
SEGMENTS = ("cold", "light", "heavy")


@dataclass(frozen=True)
class AnalysisOptions:
    alpha: float = 0.05
    cuped: bool = True
    correction: str = "bh"
    low_traffic_share: float = 0.10  # scenarios below this traffic share are "low traffic"
    bootstrap: int = 0  # > 0: also a percentile bootstrap CI (no CUPED) with this many draws
    seed: int = 0  # of the bootstrap's resampling


def _rounded(x: float | None) -> float | None:
    """A finite float rounded to 12 significant digits, else None.

    numpy's vectorised float reductions may group additions differently depending on the
    memory alignment of a fresh array, so two runs of the same seed can differ in the last
    bit; 12 digits keep every meaningful digit and make the reports identical.
    """
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else float(f"{x:.12g}")


def _columns(sums: np.ndarray, pre: np.ndarray, metric: str) -> np.ndarray:
    """N x k per-user columns for `metric` from N x 5 experiment and pre-period sums."""
    if metric == "ctr":
        return np.stack(
            [sums[:, CLICKS], sums[:, IMPRESSIONS], pre[:, CLICKS], pre[:, IMPRESSIONS]], axis=1
        )
    c = _COLUMN[metric]
    return np.stack([sums[:, c], pre[:, c]], axis=1)


def _test(ctrl: np.ndarray, trt: np.ndarray, metric: str, opts: AnalysisOptions):
    mc, mt = stats.Moments.from_array(ctrl), stats.Moments.from_array(trt)
    # CUPED needs pre-period variation; without it (e.g. only cold users, or no users at
    # all) fall back to plain.
    covariate = np.concatenate([ctrl[:, -1], trt[:, -1]])
    cuped = opts.cuped and covariate.size > 0 and bool(np.ptp(covariate) > 0)
    test = stats.ratio_test if metric == "ctr" else stats.mean_test
    return test(mc, mt, cuped=cuped, alpha=opts.alpha)


def _first_empty(totals: list[float]) -> str | None:
    """The arm ("control"/"treatment") whose total is 0, "both" if both are, else None."""
    empty = [ARMS[a] for a in (0, 1) if not totals[a] > 0]
    return None if not empty else "both" if len(empty) == 2 else empty[0]


def _note(cols: dict[int, np.ndarray], metric: str, res: stats.LiftResult) -> str | None:
    """Why `res` has no lift, CI or p-value, in a few words; None when it has all three."""
    if all(math.isfinite(v) for v in (res.lift, res.ci_low, res.ci_high, res.p_value)):
        return None
    n = [len(cols[0]), len(cols[1])]
    checks = [(n, "users")]
    if metric == "ctr":
        totals = [[float(cols[a][:, c].sum()) for a in (0, 1)] for c in range(4)]
        checks += [(totals[1], "impressions"), (totals[0], "clicks")]
        if res.cuped:
            checks.append((totals[3], "pre-period impressions (CUPED covariate)"))
    for totals, what in checks:
        arm = _first_empty(totals)
        if arm is not None:
            return f"no {what}" + ("" if arm == "both" else f" in the {arm} arm")
    if min(n) < 2:
        return f"one user in the {ARMS[n.index(min(n))]} arm: no variance"
    if res.diff_se == 0:
        return "constant metric: no variance"
    if res.control == 0:
        return "control value is 0: no relative lift"
    return "not computable: non-finite values"


def _value(sums: np.ndarray, metric: str) -> float:
    """The metric over a population of users (N x 5 sums)."""
    if sums.shape[0] == 0:
        return float("nan")
    if metric == "ctr":
        imp = sums[:, IMPRESSIONS].sum()
        return float(sums[:, CLICKS].sum() / imp) if imp > 0 else float("nan")
    return float(sums[:, _COLUMN[metric]].mean())


class _Frame:
    """Per-user sums of one experiment, sliced by scenario, users and days."""

    def __init__(self, data: ExperimentData):
        self.data = data
        self.obs = data.observed.values  # 2 x S x U x D x 5, arm axis = serving policy
        self.assign = data.assignment
        # S x U x D: the user has had a session in the scenario by the end of day d (computed
        # once: visitors() is asked per scenario, segment and daily look)
        sessions = self.obs[..., SESSIONS].sum(axis=0).cumsum(axis=-1)
        self.seen = sessions > 0
        self.seen_any = self.seen.any(axis=0)  # U x D

    def sums(self, arm: int, scenario: int | None, users: np.ndarray, days: int) -> np.ndarray:
        v = self.obs[arm] if scenario is None else self.obs[arm, scenario][None]
        return v[:, users, :days].sum(axis=(0, 2))

    def pre(self, scenario: int | None, users: np.ndarray) -> np.ndarray:
        p = self.data.pre if scenario is None else self.data.pre[scenario][None]
        return p[:, users].sum(axis=0)

    def truth(self, policy: int, scenario: int | None, users: np.ndarray) -> np.ndarray | None:
        if self.data.truth is None:
            return None
        v = self.data.truth[policy] if scenario is None else self.data.truth[policy, scenario][None]
        return v[:, users].sum(axis=(0, 2))

    def visitors(self, scenario: int | None, days: int, among: np.ndarray) -> np.ndarray:
        """Users of `among` with a session in the scenario (any, if None) by day `days`."""
        seen = self.seen_any if scenario is None else self.seen[scenario]
        return among[seen[among, days - 1]]


def _metric_test(
    frame: _Frame,
    scenario: int | None,
    users: np.ndarray,
    days: int,
    metric: str,
    opts: AnalysisOptions,
) -> tuple[MetricLift, stats.LiftResult]:
    """One metric's test among `users` (p_adjusted left unset: see :func:`_adjusted`)."""
    arm = frame.assign[users]
    cols = {}
    for a in (0, 1):
        u = users[arm == a]
        cols[a] = _columns(frame.sums(a, scenario, u, days), frame.pre(scenario, u), metric)
    res = _test(cols[0], cols[1], metric, opts)
    boot = None
    if opts.bootstrap > 0 and min(len(cols[0]), len(cols[1])) >= 2:
        # keyed by (seed, scenario or 0 for overall, population, metric): seeds must be >= 0
        key = [opts.seed, 0 if scenario is None else scenario + 1, len(users)]
        rng = np.random.default_rng([*key, METRICS.index(metric)])
        lo_b, hi_b = stats.bootstrap_lift_ci(
            cols[0],
            cols[1],
            ratio=metric == "ctr",
            n_boot=opts.bootstrap,
            alpha=opts.alpha,
            rng=rng,
        )
        boot = (_rounded(lo_b), _rounded(hi_b))
    true_lift = None
    t_c, t_t = frame.truth(0, scenario, users), frame.truth(1, scenario, users)
    if t_c is not None:
        c_val, t_val = _value(t_c, metric), _value(t_t, metric)
        true_lift = _rounded(t_val / c_val - 1) if c_val else None
    lo, hi = _rounded(res.ci_low), _rounded(res.ci_high)
    mde = stats.mde(res.control, res.diff_se, alpha=opts.alpha)
    power = (
        stats.power_at(true_lift, res.control, res.diff_se, alpha=opts.alpha)
        if true_lift is not None
        else float("nan")
    )
    lift = MetricLift(
        control=_rounded(res.control),
        treatment=_rounded(res.treatment),
        lift=_rounded(res.lift),
        ci_low=lo,
        ci_high=hi,
        p_value=_rounded(res.p_value),
        p_adjusted=None,
        significant=False,
        true_lift=true_lift,
        true_in_ci=(
            None if true_lift is None or lo is None or hi is None else bool(lo <= true_lift <= hi)
        ),
        mde=_rounded(mde),
        power=_rounded(power),
        cuped=bool(res.cuped),
        bootstrap_ci=boot,
        note=_note(cols, metric, res),
    )
    return lift, res


def _adjusted(
    family: list[dict[str, MetricLift]], opts: AnalysisOptions
) -> list[dict[str, MetricLift]]:
    """`family` (per population, metric -> test) with p-values corrected across all tests."""
    flat = [m for per in family for m in per.values()]
    if not flat:
        return family
    p = [np.nan if m.p_value is None else m.p_value for m in flat]
    adj = iter(stats.adjust_p_values(p, method=opts.correction))
    out = []
    for per in family:
        out.append({})
        for metric, m in per.items():
            p_adj = _rounded(next(adj))
            out[-1][metric] = dataclasses.replace(
                m, p_adjusted=p_adj, significant=bool(p_adj is not None and p_adj < opts.alpha)
            )
    return out


def _users(data: ExperimentData, users: np.ndarray) -> dict[str, int]:
    return {a: int((data.assignment[users] == i).sum()) for i, a in enumerate(ARMS)}


def segments_of(data: ExperimentData) -> np.ndarray:
    """U segment codes from pre-period pages: 0 cold (none), 1 light, 2 heavy (above median)."""
    pages = data.pre[:, :, PAGES].sum(axis=0)
    seg = np.zeros(pages.shape[0], dtype=np.int64)
    active = pages > 0
    if active.any():
        median = np.median(pages[active])
        seg[active] = np.where(pages[active] > median, 2, 1)
    return seg


def _scenarios(
    frame: _Frame, in_exp: np.ndarray, traffic: dict[str, float], opts: AnalysisOptions
) -> dict[str, ScenarioPopulation]:
    """Every scenario's tests, p-values corrected across scenario × metric."""
    data, days = frame.data, frame.data.days
    users = {name: frame.visitors(s, days, in_exp) for s, name in enumerate(data.scenarios)}
    family = [
        {m: _metric_test(frame, s, users[name], days, m, opts)[0] for m in METRICS}
        for s, name in enumerate(data.scenarios)
    ]
    return {
        name: ScenarioPopulation(
            users=PerArm(**_users(data, users[name])),
            metrics=metrics,
            traffic_share=traffic[name],
            traffic="low" if traffic[name] < opts.low_traffic_share else "high",
        )
        for name, metrics in zip(data.scenarios, _adjusted(family, opts), strict=True)
    }


def _segments(frame: _Frame, in_exp: np.ndarray, opts: AnalysisOptions) -> dict[str, Segment]:
    """Per activity segment, the headline tests per scenario (each segment its own family)."""
    data, days = frame.data, frame.data.days
    seg = segments_of(data)
    out = {}
    for code, seg_name in enumerate(SEGMENTS):
        users = {
            name: frame.visitors(s, days, in_exp[seg[in_exp] == code])
            for s, name in enumerate(data.scenarios)
        }
        family = [
            {m: _metric_test(frame, s, users[name], days, m, opts)[0] for m in HEADLINE_METRICS}
            for s, name in enumerate(data.scenarios)
        ]
        out[seg_name] = Segment(
            {
                name: Population(PerArm(**_users(data, users[name])), metrics)
                for name, metrics in zip(data.scenarios, _adjusted(family, opts), strict=True)
            }
        )
    return out


def _daily(
    frame: _Frame, scenario: int | None, users_all: np.ndarray, opts: AnalysisOptions
) -> dict[str, DailySeries]:
    out = {}
    days = frame.data.days
    looks = []
    for d in range(1, days + 1):
        users = frame.visitors(scenario, d, users_all)
        looks.append(
            {m: _metric_test(frame, scenario, users, d, m, opts)[1] for m in HEADLINE_METRICS}
        )
    for m in HEADLINE_METRICS:
        diffs = np.array([lk[m].diff for lk in looks])
        var = np.array([lk[m].diff_se ** 2 for lk in looks])
        final = var[-1]
        if np.isfinite(final) and final > 0:
            tau2 = stats.msprt_tau2(final, alpha=opts.alpha)
            always = stats.msprt_p_values(diffs, var, tau2=tau2)
        else:
            always = np.full(days, np.nan)
        out[m] = DailySeries(
            day=tuple(range(1, days + 1)),
            lift=tuple(_rounded(lk[m].lift) for lk in looks),
            ci_low=tuple(_rounded(lk[m].ci_low) for lk in looks),
            ci_high=tuple(_rounded(lk[m].ci_high) for lk in looks),
            p_naive=tuple(_rounded(lk[m].p_value) for lk in looks),
            p_always_valid=tuple(_rounded(p) for p in always),
        )
    return out


def _distribution(frame: _Frame, scenario: int | None, users: np.ndarray) -> Distribution:
    arm = frame.assign[users]
    per = [frame.sums(i, scenario, users[arm == i], frame.data.days)[:, WATCH] for i in (0, 1)]
    top = max((float(v.max()) for v in per if v.size), default=1.0)
    edges = np.concatenate([[0.0], np.geomspace(1.0, max(top, 2.0) * 1.0001, 40)])
    control, treatment = (tuple(np.histogram(v, bins=edges)[0].tolist()) for v in per)
    return Distribution(tuple(edges.tolist()), control, treatment)


def _serving(data: ExperimentData) -> Serving:
    return Serving(
        requests=data.requests,
        exposures=data.exposures,
        requests_per_second=_rounded(data.requests_per_second),
        wall_seconds=_rounded(data.wall_seconds),
        twin_wall_seconds=_rounded(data.twin_wall_seconds),
        latency={
            a: Latency(_rounded(lat.p50_ms), _rounded(lat.p99_ms), lat.requests)
            for a, lat in data.latency.items()
        },
    )


def analyse(
    data: ExperimentData,
    traffic: dict[str, float],
    expected: dict[str, float],
    opts: AnalysisOptions | None = None,
    *,
    daily: bool = True,
    extras: bool = True,
) -> ExperimentResults:
    """The results of the experiment in `data`: per scenario and overall, every metric's test;
    with `extras` also the segments, the distributions, the serving figures and (with
    `daily`) the daily looks. `traffic` holds each scenario's traffic share, `expected` each
    arm's allocation (for the sample-ratio check)."""
    opts = opts or AnalysisOptions()
    frame = _Frame(data)
    days = data.days
    in_exp = np.flatnonzero(data.assignment >= 0)
    visitors = frame.visitors(None, days, in_exp)
    users = _users(data, visitors)
    srm = stats.srm_test(users, expected)
    empty = _first_empty([users[a] for a in ARMS])
    srm_note = (
        None
        if empty is None
        else "no users" + (" in the experiment" if empty == "both" else f" in the {empty} arm")
    )
    overall = {m: _metric_test(frame, None, visitors, days, m, opts)[0] for m in METRICS}
    results = ExperimentResults(
        treatment=data.arms[1],
        control=data.arms[0],
        seed=data.seed,
        days=days,
        alpha=opts.alpha,
        correction=opts.correction,
        cuped=opts.cuped,
        synthetic=data.truth is not None,
        srm=Srm(
            statistic=_rounded(srm.statistic),
            p_value=_rounded(srm.p_value),
            flagged=None if empty == "both" else bool(srm.flagged),  # nothing to check
            users=PerArm(**users),
            expected=PerArm(**expected),
            note=srm_note,
        ),
        scenarios=_scenarios(frame, in_exp, traffic, opts),
        overall=Population(PerArm(**users), _adjusted([overall], opts)[0]),
    )
    if not extras:  # re-randomisation studies need only the headline tests
        return results
    names = dict(enumerate(data.scenarios)) | {None: "overall"}
    in_scenario = {s: frame.visitors(s, days, in_exp) for s in names}
    return dataclasses.replace(
        results,
        segments=_segments(frame, in_exp, opts),
        daily={name: _daily(frame, s, in_exp, opts) for s, name in names.items()}
        if daily
        else None,
        distributions={name: _distribution(frame, s, in_scenario[s]) for s, name in names.items()},
        serving=_serving(data),
    )
