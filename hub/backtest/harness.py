"""The tick loop: controllers drive one fresh ``SimWorld`` through the trace, then the drain.

``run`` replays one workload under one controller. ``run_fleet`` replays several workloads on one
fleet (a ``FleetScenario``): either one controller per workload (a baseline: an HPA per
Deployment, each workload's schedule) or one controller for all of them (Fleetscale, which plans
every workload in one solve and reaches each through ``Fleet.of``). Their replicas share the
clusters' GPUs: what one workload holds, another's scale-up cannot take.

A controller says when it wants to act next (its sync period, or the hindsight plan's schedule) and acts
through a ``Fleet``, which applies absolute replica counts to the world (new replicas cold-start
there, removed ones drain) and counts scale events. The loop advances the world from one action
or timeline sample to the next; between them the simulator is event-driven and exact.

Every run starts from the scenario's initial fleet, ready at time 0, whatever the controller; what
a controller wants beyond it cold-starts. Cost and GPU-hours are taken at the start of the scored
window and at the trace's end, so every policy is billed for the same spans, and the cost so far
at every timeline sample gives the cost rate minute by minute.
Requests still queued or running then are given ``drain_limit_s`` more to finish, with the
controller still acting (a real fleet would not freeze); whatever is unfinished after that counts
as an SLO miss.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from hub.backtest.scenario import FleetScenario, Pool, Scenario
from shared.simulation import CapacityError, CompletedRequest, SimWorld


class Fleet:
    """A controller's hands on the world: absolute replica counts per cluster, scale events counted."""

    def __init__(self, world: SimWorld, scenario: Scenario, fleets: dict[str, Fleet] | None = None) -> None:
        self.world = world
        self.scenario = scenario
        self._fleets = fleets if fleets is not None else {}
        """Every workload's ``Fleet`` on the same world, by workload key (shared among them)."""
        self._fleets[scenario.key] = self
        self.scale_events = 0
        """Changes applied to a cluster's replica counts (one per cluster per action)."""
        self.refusals: list[str] = []
        """Scale requests the clusters refused (not enough free GPUs), with the reason."""

    @property
    def now_s(self) -> float:
        return self.world.now_s

    def of(self, key: str) -> Fleet:
        """The hands on another workload of the same world (``namespace/name``); KeyError if not replayed."""
        try:
            return self._fleets[key]
        except KeyError:
            raise KeyError(f"no workload {key} in this replay; replayed: {', '.join(self._fleets)}") from None

    def replicas(self) -> dict[Pool, int]:
        """Replicas asked for (starting or ready, not draining) per (cluster, GPU type)."""
        return self._counts(ready=False)

    def ready(self) -> dict[Pool, int]:
        return self._counts(ready=True)

    def _counts(self, *, ready: bool) -> dict[Pool, int]:
        out: dict[Pool, int] = {}
        for cid in self.world.cluster_ids:
            for state in self.world.workload_states(cid):
                if state.ref.key != self.scenario.key:
                    continue
                for v in state.variants:
                    out[(cid, v.gpu_type)] = v.ready_replicas if ready else v.desired_replicas
        return out

    def set(self, cluster_id: str, replicas_by_gpu_type: Mapping[str, int], *, pending: bool = False) -> bool:
        """Set absolute replicas of some GPU types in one cluster; returns whether anything changed.

        A cluster without enough free GPUs refuses the whole request and keeps what it has (as a
        spoke answers ``capacity``); the refusal is recorded, not raised. With ``pending``, as for a
        Deployment scaled past its cluster, what fits is started and the rest is left out (those
        pods would stay Pending, holding no GPU).
        """
        have = self.replicas()
        wanted = {t: n for t, n in replicas_by_gpu_type.items() if have.get((cluster_id, t), 0) != n}
        if not wanted:
            return False
        if pending:
            wanted = self._fitting(cluster_id, wanted, have)
            if not wanted:
                return False
        try:
            self.world.scale(cluster_id, self.scenario.namespace, self.scenario.name, wanted)
        except CapacityError as e:
            self.refusals.append(f"t={self.world.now_s:.0f}s {e}")
            return False
        self.scale_events += 1
        return True

    def _fitting(self, cluster_id: str, wanted: Mapping[str, int], have: Mapping[Pool, int]) -> dict[str, int]:
        gpr = self.scenario.gpus_per_replica
        fits: dict[str, int] = {}
        for node in self.world.inventory(cluster_id):
            fits[node.gpu_type] = fits.get(node.gpu_type, 0) + node.free_gpus // gpr
        out = {}
        for gpu_type, n in wanted.items():
            current = have.get((cluster_id, gpu_type), 0)
            n = min(n, current + fits.get(gpu_type, 0))
            if n != current:
                out[gpu_type] = n
        return out

    def apply(self, placement: Mapping[Pool, int]) -> None:
        """Make the world hold exactly ``placement``: pools absent from it go to 0, make-before-break.

        Pools left out are emptied once a replica of the placement is ready (or the placement is
        empty), so a fleet that moves to other GPU types keeps serving while the new ones start.
        """
        targets: dict[str, dict[str, int]] = {}
        serving = not any(placement.values()) or any(self.ready().get(p, 0) for p in placement if placement[p])
        for pool in self.replicas():
            if serving and pool not in placement:
                targets.setdefault(pool[0], {})[pool[1]] = 0
        for (cid, gpu_type), n in placement.items():
            targets.setdefault(cid, {})[gpu_type] = n
        for cid in sorted(targets):
            self.set(cid, targets[cid])

    def retire_others(self, pool: Pool) -> None:
        """A one-Deployment baseline's rollout: once its pool has a ready replica, other pools go to 0.

        The scenario's initial fleet may sit on another GPU type than the baseline's Deployment; it
        serves until the Deployment has a ready pod, as the previous Deployment behind the same
        Service would.
        """
        if not self.ready().get(pool, 0):
            return
        others: dict[str, dict[str, int]] = {}
        for p, n in self.replicas().items():
            if p != pool and n:
                others.setdefault(p[0], {})[p[1]] = 0
        for cid in sorted(others):
            self.set(cid, others[cid])


class Controller(Protocol):
    """One autoscaling policy under test."""

    name: str
    description: str

    @property
    def gateway_cluster(self) -> str | None:
        """Cluster whose telemetry shows the global queue; a single-Deployment baseline needs its own."""
        ...

    def next_at(self, now_s: float) -> float:
        """The next time after ``now_s`` to act at (``-inf`` asks for the first time); ``inf``: never."""
        ...

    def act(self, fleet: Fleet, now_s: float) -> None: ...


@dataclass(frozen=True)
class Mark:
    """The bill at one instant."""

    gpu_seconds: dict[Pool, float]
    cost_usd: float
    scale_events: int


@dataclass
class Run:
    """What one controller's run produced, before any statistics."""

    name: str
    description: str
    requests: int
    completed: list[CompletedRequest]
    arrivals_s: tuple[float, ...]
    gpu_seconds: dict[Pool, float]
    """At the trace's end."""
    cost_usd: float
    """At the trace's end."""
    scale_events: int
    """Up to the trace's end."""
    scored_from_s: float = 0.0
    at_scored_start: Mark | None = None
    """GPU-seconds, cost and scale events at ``scored_from_s`` (None: the scored window is the whole run)."""
    timeline_s: list[float] = field(default_factory=list)
    timeline_replicas: list[dict[str, int]] = field(default_factory=list)
    """Replicas asked for per GPU type (all clusters), at each ``timeline_s``."""
    timeline_cost_usd: list[float] = field(default_factory=list)
    """Cost so far at each ``timeline_s``."""
    ended_s: float = 0.0
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def unfinished(self) -> int:
        return self.requests - len(self.completed)


@dataclass
class FleetRun:
    """What one run of several workloads produced: each workload's ``Run``, and the fleet's in total."""

    workloads: tuple[Run, ...]
    total: Run
    """Every workload's requests, the whole fleet's bill and scale events."""


def run(scenario: Scenario, controller: Controller) -> Run:
    """One workload replayed under one controller."""
    return run_fleet(FleetScenario(scenario.trace.name, (scenario,)), [controller]).workloads[0]


class _Book:
    """One workload's (or, with ``fleets`` of all, the fleet's) bill marks and timeline, kept during a run."""

    def __init__(self, world: SimWorld, fleets: Sequence[Fleet], key: str | None) -> None:
        self.world, self.fleets, self.key = world, fleets, key
        self.at_end: Mark | None = None
        self.at_scored: Mark | None = None
        self.timeline_s: list[float] = []
        self.timeline: list[dict[str, int]] = []
        self.costs: list[float] = []

    def mark(self) -> Mark:
        events = sum(f.scale_events for f in self.fleets)
        return Mark(self.world.gpu_seconds(self.key), self.world.cost(self.key), events)

    def sample(self, t: float) -> None:
        by_type: dict[str, int] = {}
        for fleet in self.fleets:
            for (_, gpu_type), n in fleet.replicas().items():
                by_type[gpu_type] = by_type.get(gpu_type, 0) + n
        self.timeline_s.append(t)
        self.timeline.append(by_type)
        self.costs.append(self.world.cost(self.key))


def run_fleet(fleet_scenario: FleetScenario, controllers: Sequence[Controller]) -> FleetRun:
    """Several workloads on one world: one controller per workload, or one for all (it is handed the
    first workload's ``Fleet`` and reaches the others through ``Fleet.of``)."""
    scenarios = fleet_scenario.workloads
    if len(controllers) not in (1, len(scenarios)):
        raise ValueError(f"need one controller for all or one per workload ({len(scenarios)}), got {len(controllers)}")
    started = time.perf_counter()
    owner = [controllers[0 if len(controllers) == 1 else i] for i in range(len(scenarios))]
    world = SimWorld(
        fleet_scenario.clusters,
        [s.workload_spec(s.initial_fleet(), c.gateway_cluster) for s, c in zip(scenarios, owner, strict=True)],
        history_s=900.0,
    )
    shared: dict[str, Fleet] = {}
    fleets = [Fleet(world, s, shared) for s in scenarios]
    books = [_Book(world, [f], s.key) for f, s in zip(fleets, scenarios, strict=True)]
    books.append(_Book(world, fleets, None))
    first = scenarios[0]
    end = fleet_scenario.duration_s
    scored = fleet_scenario.scored_from_s
    limit = end + max(s.drain_limit_s for s in scenarios)
    k = 0
    next_act = [c.next_at(-math.inf) for c in controllers]
    while True:
        t_sample = k * first.sample_s
        t = min(*next_act, t_sample)
        if books[0].at_scored is None and 0 < scored <= min(t, end):
            world.advance(scored)
            for b in books:
                b.at_scored = b.mark()
        if books[0].at_end is None and t >= end:
            world.advance(end)
            for b in books:
                b.at_end = b.mark()
        if t > end and (world.unfinished_requests() == 0 or t > limit):
            break
        world.advance(t)
        if t == t_sample:
            for b in books:
                b.sample(t)
            k += 1
        for i, c in enumerate(controllers):
            if t == next_act[i]:
                c.act(fleets[i], t)
                next_act[i] = c.next_at(t)
    wall_s = time.perf_counter() - started
    completed = world.completed_requests()
    runs = tuple(
        _run(s, c, books[i], [r for r in completed if r.workload == s.key], s.trace.arrival_s, [fleets[i]], world,
             wall_s)
        for i, (s, c) in enumerate(zip(scenarios, owner, strict=True))
    )
    merged = tuple(sorted(t for s in scenarios for t in s.trace.arrival_s))
    total = _run(fleet_scenario.merged(), controllers[0], books[-1], completed, merged, fleets, world, wall_s)
    if len(controllers) > 1:
        said = {c.description for c in controllers}
        total.description = f"each workload: {said.pop()}" if len(said) == 1 else "; ".join(
            f"{s.key}: {c.description}" for s, c in zip(scenarios, controllers, strict=True))
    return FleetRun(runs, total)


def _run(
    scenario: Scenario, controller: Controller, book: _Book, completed: list[CompletedRequest],
    arrivals_s: tuple[float, ...], fleets: Sequence[Fleet], world: SimWorld, wall_s: float,
) -> Run:
    at_end = book.at_end
    assert at_end is not None
    refusals = [r for f in fleets for r in f.refusals]
    notes = [f"refused by the cluster: {r}" for r in refusals[:5]]
    if len(refusals) > 5:
        notes.append(f"... and {len(refusals) - 5} more refusals")
    return Run(
        name=controller.name,
        description=controller.description,
        requests=len(scenario.trace),
        completed=completed,
        arrivals_s=arrivals_s,
        gpu_seconds=at_end.gpu_seconds,
        cost_usd=at_end.cost_usd,
        scale_events=at_end.scale_events,
        scored_from_s=scenario.scored_from_s,
        at_scored_start=book.at_scored,
        timeline_s=book.timeline_s,
        timeline_replicas=book.timeline,
        timeline_cost_usd=book.costs,
        ended_s=world.now_s,
        wall_s=wall_s,
        notes=notes,
    )
