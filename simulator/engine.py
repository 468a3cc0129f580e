"""The simpy engine: arrivals, sessions, one dynamic batcher per arm, and the response model.

One ``simpy.Environment`` per run. Processes are plain generator functions:

* ``arrivals(env, ...)`` — one per scenario: walks the day's session schedule
  (:mod:`simulator.arrivals`) and starts a ``session`` process per visit;
* ``session(env, ...)`` — pages until the user leaves: submits a request to its arm's
  batcher, waits for the served page and the user's response, then waits the think time;
* ``batcher(env, ...)`` — one per arm: sleeps until a request arrives, collects requests for
  ``batch_window`` simulated seconds, and serves them all in one vectorised call per scenario
  (policy -> slates -> responses), then wakes their sessions;
* ``ticker(env, ...)`` — advances the progress bar once per simulated hour.

Timelines are logical: page p+1 is requested at ``issue_time(p) + think_time(p)`` and that
is the timestamp logged, whatever the window. The window is a simulation device that
trades serving-time fidelity for vectorisation; with randomness keyed by identity the events
are the same for any window (a page whose response arrives after its logical successor's
time is requested as soon as the response is in, and still logged at its logical time).

One more rule keeps that true for policies that read the user's click history: **a user's
sessions are served one after another**, in order of their start. A session that starts
while the same user's previous one is still being served waits for it (its pages keep their
logical times), so every page sees the same clicks whatever the window: those of the user's
earlier-started sessions and of its own earlier pages that were logged before it. Without
this, a lagging session's clicks would reach a later session of the same user or not
depending on how requests were batched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import simpy
from tqdm import tqdm

from simulator.arrivals import DAY, PAGE_SLOTS, DaySchedule, day_schedule
from simulator.policies import Policy, RequestBatch, Slates
from simulator.world import Responses, World


class Sink(Protocol):
    """Receives every served batch (exposures and responses)."""

    def add(self, arm: int, batch: RequestBatch, slates: Slates, responses: Responses) -> None: ...


@dataclass
class _Pending:
    request_id: int
    session_id: int
    user: int
    scenario: int
    page: int
    timestamp: float
    done: simpy.Event


class LatencyHistogram:
    """Streaming histogram of latencies (seconds) on log-spaced bins: quantiles in O(1) memory."""

    EDGES = np.concatenate([[0.0], np.logspace(-5, 6, 1101)])  # 1% wide bins, 10 us .. 11 days

    def __init__(self) -> None:
        self.counts = np.zeros(self.EDGES.size, dtype=np.int64)

    def add(self, seconds: np.ndarray) -> None:
        idx = np.searchsorted(self.EDGES, np.asarray(seconds, dtype=np.float64), side="right") - 1
        np.add.at(self.counts, np.clip(idx, 0, self.EDGES.size - 1), 1)

    def merge(self, other: LatencyHistogram) -> LatencyHistogram:
        out = LatencyHistogram()
        out.counts = self.counts + other.counts
        return out

    @property
    def n(self) -> int:
        return int(self.counts.sum())

    def quantile(self, q: float) -> float:
        """Upper edge of the bin holding the q-quantile (within 1% above the exact value)."""
        if self.n == 0:
            return float("nan")
        i = int(np.searchsorted(np.cumsum(self.counts), q * self.n, side="left"))
        upper = self.EDGES[min(i + 1, self.EDGES.size - 1)]
        return float(upper if i > 0 else 0.0)


@dataclass
class EngineStats:
    sessions: int = 0
    requests: int = 0
    exposures: int = 0
    batches: int = 0
    serve_calls: int = 0
    wall_seconds: float = 0.0
    batch_sizes: list[int] = field(default_factory=list)

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.wall_seconds if self.wall_seconds > 0 else float("nan")


class History:
    """Each user's most recent clicks (item, scenario, logical time), newest first."""

    def __init__(self, n_users: int, length: int):
        self.items = np.full((n_users, length), -1, dtype=np.int64)
        self.scenarios = np.full((n_users, length), -1, dtype=np.int64)
        self.times = np.full((n_users, length), np.inf)

    def lookup(self, users: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """B x H histories as of logical times `at` (clicks logged later are masked)."""
        items, scen = self.items[users], self.scenarios[users]
        future = self.times[users] >= at[:, None]
        return np.where(future, -1, items), np.where(future, -1, scen)

    def push(self, users, items, scenario: int, times) -> None:
        if self.items.shape[1] == 0:  # history_length 0: nothing is kept
            return
        for u, i, t in zip(users.tolist(), items.tolist(), times.tolist(), strict=True):
            self.items[u, 1:] = self.items[u, :-1]
            self.scenarios[u, 1:] = self.scenarios[u, :-1]
            self.times[u, 1:] = self.times[u, :-1]
            self.items[u, 0], self.scenarios[u, 0], self.times[u, 0] = i, scenario, t


class Engine:
    """Serve the world's traffic over days [start_day, start_day + n_days) with one or more arms.

    `policies` are the arms; `route` maps an array of user ids to arm indices (default:
    everyone on arm 0). `sinks` receive every served batch.
    """

    def __init__(
        self,
        world: World,
        policies: Sequence[Policy],
        sinks: Sequence[Sink],
        *,
        seed: int,
        route: Callable[[np.ndarray], np.ndarray] | None = None,
        batch_window: float | None = None,
        users: np.ndarray | None = None,
        capacity: int = 0,
        service_time: Callable[[int], float] | None = None,
    ):
        self.world, self.policies, self.sinks, self.seed = world, list(policies), list(sinks), seed
        self.route = route
        window = world.config.engine.batch_window if batch_window is None else batch_window
        self.window = float(window)
        self.users = users
        self.replay: dict[int, DaySchedule] | None = None  # day -> logged sessions to replay
        self.fixed_pages: dict[int, int] | None = None  # session id -> logged page count
        self.history = History(world.users.n, world.config.world.history_length)
        self.stats = EngineStats()
        self.env = simpy.Environment()
        # Serving capacity: `capacity` batch servers per arm, each batched call holding one for
        # service_time(n) simulated seconds. Latency (window wait + queue + service) is measured
        # in simulated time; timelines stay logical, so it never changes the events.
        self.capacity = int(capacity)
        self.service_time = service_time or (lambda n: 0.0)
        self.servers = [
            simpy.Resource(self.env, capacity=self.capacity) if self.capacity > 0 else None
            for _ in self.policies
        ]
        self.latency = [LatencyHistogram() for _ in self.policies]
        self._pending: list[list[_Pending]] = [[] for _ in self.policies]
        self._wake: list[simpy.Event | None] = [None for _ in self.policies]
        self._arm_of_user: np.ndarray | None = None
        self._user_busy: dict[int, simpy.Event] = {}  # user -> end of their latest session
        for arm in range(len(self.policies)):
            self.env.process(self._batcher(self.env, arm))

    # ------------------------------------------------------------------ processes

    def _arrivals(self, env: simpy.Environment, scenario: int, schedules: Iterator[DaySchedule]):
        for sched in schedules:
            mask = sched.scenario == scenario
            for user, start, sid in zip(
                sched.user[mask].tolist(),
                sched.start[mask].tolist(),
                sched.session_id[mask].tolist(),
                strict=True,
            ):
                if start > env.now:
                    yield env.timeout(start - env.now)
                self.stats.sessions += 1
                env.process(self._session(env, user, scenario, sid, start))

    def _session(self, env: simpy.Environment, user: int, scenario: int, sid: int, start: float):
        arm = int(self._arm_of_user[user])
        page, issued = 0, start
        pages = None if self.fixed_pages is None else self.fixed_pages.get(sid, 1)
        previous = self._user_busy.get(user)
        finished = self._user_busy[user] = env.event()
        if previous is not None and not previous.triggered:
            yield previous  # the user's earlier session first (see the module doc)
        yield from self._pages(env, user, scenario, sid, arm, page, issued, pages)
        finished.succeed()
        if self._user_busy.get(user) is finished:
            del self._user_busy[user]

    def _pages(self, env, user, scenario, sid, arm, page, issued, pages):
        while True:
            req = _Pending(sid * PAGE_SLOTS + page, sid, user, scenario, page, issued, env.event())
            self._submit(arm, req)
            cont, think = yield req.done
            if (not cont) if pages is None else page + 1 >= pages:
                return
            page, issued = page + 1, issued + think
            if issued > env.now:
                yield env.timeout(issued - env.now)

    def _submit(self, arm: int, req: _Pending) -> None:
        self._pending[arm].append(req)
        wake = self._wake[arm]
        if wake is not None and not wake.triggered:
            wake.succeed()

    def _batcher(self, env: simpy.Environment, arm: int):
        while True:
            if not self._pending[arm]:
                self._wake[arm] = env.event()
                yield self._wake[arm]
            if self.window > 0:
                yield env.timeout(self.window)
            batch, self._pending[arm] = self._pending[arm], []
            done = self._serve(arm, batch)
            if self.servers[arm] is None:
                self._deliver(arm, done, env.now)
            else:
                env.process(self._hold_server(env, arm, done))

    def _hold_server(self, env: simpy.Environment, arm: int, done: list[tuple[_Pending, tuple]]):
        dispatched = env.now
        with self.servers[arm].request() as slot:
            yield slot
            yield env.timeout(self.service_time(len(done)))
        self._deliver(arm, done, dispatched)

    def _deliver(self, arm: int, done: list[tuple[_Pending, tuple]], dispatched: float) -> None:
        # Serving latency = queue wait for a free server + service time of the batched call.
        # The collection window is left out: it is a simulation device (see module doc).
        self.latency[arm].add(np.full(len(done), self.env.now - dispatched))
        for p, value in done:
            p.done.succeed(value)

    def _ticker(self, env: simpy.Environment, end: float, bar: tqdm):
        while env.now < end:
            yield env.timeout(min(3600.0, end - env.now))
            bar.update(1)
            bar.set_postfix(requests=self.stats.requests, refresh=False)

    # ------------------------------------------------------------------ serving

    def _serve(self, arm: int, pending: list[_Pending]) -> list[tuple[_Pending, tuple]]:
        """Serve a batch now; returns each request with the (continue, think time) it awaits."""
        self.stats.batches += 1
        self.stats.batch_sizes.append(len(pending))
        scen = np.fromiter((p.scenario for p in pending), dtype=np.int64, count=len(pending))
        done = []
        for s in np.unique(scen).tolist():
            group = [p for p, si in zip(pending, scen.tolist(), strict=True) if si == s]
            done += self._serve_scenario(arm, s, group)
        return done

    def _serve_scenario(self, arm: int, scenario: int, group: list[_Pending]):
        n = len(group)
        rid = np.fromiter((p.request_id for p in group), dtype=np.int64, count=n)
        order = np.argsort(rid, kind="stable")  # batch content order must not matter
        group = [group[i] for i in order.tolist()]
        rid = rid[order]
        sid = np.fromiter((p.session_id for p in group), dtype=np.int64, count=n)
        users = np.fromiter((p.user for p in group), dtype=np.int64, count=n)
        page = np.fromiter((p.page for p in group), dtype=np.int64, count=n)
        ts = np.fromiter((p.timestamp for p in group), dtype=np.float64, count=n)
        hist_items, hist_scen = self.history.lookup(users, ts)
        batch = RequestBatch(scenario, rid, sid, users, page, ts, hist_items, hist_scen)
        slates = self.policies[arm].serve(batch)
        resp = self.world.respond(scenario, users, slates.items, rid, page, self.seed)
        self.stats.serve_calls += 1
        self.stats.requests += n
        self.stats.exposures += slates.items.size
        for sink in self.sinks:
            sink.add(arm, batch, slates, resp)
        rows, cols = np.nonzero(resp.click)
        if rows.size:
            self.history.push(users[rows], slates.items[rows, cols], scenario, ts[rows])
        values = zip(resp.cont.tolist(), resp.think_time.tolist(), strict=True)
        return list(zip(group, values, strict=True))

    # ------------------------------------------------------------------ running

    def run(
        self, start_day: int, n_days: int, progress: bool | None = True, desc: str = "simulating"
    ):
        """Simulate all sessions starting in the days; returns :class:`EngineStats`."""
        env, world = self.env, self.world
        users = self.users if self.users is not None else np.arange(world.users.n)
        arm_of_user = np.zeros(world.users.n, dtype=np.int64)
        if self.route is not None:
            arm_of_user[users] = self.route(users)
        self._arm_of_user = arm_of_user
        if env.now < start_day * DAY:
            env.run(until=start_day * DAY)
        schedule_cache: dict[int, DaySchedule] = {}

        def schedules() -> Iterator[DaySchedule]:
            for day in range(start_day, start_day + n_days):
                if self.replay is not None:
                    if day in self.replay:
                        yield self.replay[day]
                    continue
                if day not in schedule_cache:
                    schedule_cache.clear()
                    schedule_cache[day] = day_schedule(world, day, self.seed, users)
                yield schedule_cache[day]

        for s in range(len(world.scenarios)):
            env.process(self._arrivals(env, s, schedules()))
        end = (start_day + n_days) * DAY
        t0 = time.perf_counter()
        with tqdm(
            total=n_days * 24,
            desc=desc,
            unit="h",
            disable=None if progress else True,
            mininterval=0.5,
            leave=False,
        ) as bar:
            env.process(self._ticker(env, end, bar))
            # Runs until every process is done or blocked: arrivals stop after the last day,
            # sessions that started before the end are served to their last page, and the
            # batchers are left waiting for requests that will not come.
            env.run()
        self.stats.wall_seconds += time.perf_counter() - t0
        return self.stats
