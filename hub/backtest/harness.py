"""The tick loop: one controller drives one fresh ``SimWorld`` through the trace, then the drain.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from hub.backtest.scenario import Pool, Scenario
from shared.simulation import CapacityError, CompletedRequest, SimWorld


class Fleet:
    """A controller's hands on the world: absolute replica counts per cluster, scale events counted."""

    def __init__(self, world: SimWorld, scenario: Scenario) -> None:
        self.world = world
        self.scenario = scenario
        self.scale_events = 0
        """Changes applied to a cluster's replica counts (one per cluster per action)."""
        self.refusals: list[str] = []
        """Scale requests the clusters refused (not enough free GPUs), with the reason."""

    @property
    def now_s(self) -> float:
        return self.world.now_s

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


def run(scenario: Scenario, controller: Controller) -> Run:
    started = time.perf_counter()
    world = SimWorld(
        scenario.clusters,
        [scenario.workload_spec(scenario.initial_fleet(), controller.gateway_cluster)],
        history_s=900.0,
    )
    fleet = Fleet(world, scenario)
    end = scenario.duration_s
    scored = scenario.scored_from_s
    limit = end + scenario.drain_limit_s
    timeline_s: list[float] = []
    timeline: list[dict[str, int]] = []
    costs: list[float] = []
    at_end: Mark | None = None
    at_scored: Mark | None = None
    k = 0
    next_act = controller.next_at(-math.inf)
    while True:
        t_sample = k * scenario.sample_s
        t = min(next_act, t_sample)
        if at_scored is None and 0 < scored <= min(t, end):
            world.advance(scored)
            at_scored = Mark(world.gpu_seconds(), world.cost(), fleet.scale_events)
        if at_end is None and t >= end:
            world.advance(end)
            at_end = Mark(world.gpu_seconds(), world.cost(), fleet.scale_events)
        if t > end and (world.unfinished_requests() == 0 or t > limit):
            break
        world.advance(t)
        if t == t_sample:
            by_type: dict[str, int] = {}
            for (_, gpu_type), n in fleet.replicas().items():
                by_type[gpu_type] = by_type.get(gpu_type, 0) + n
            timeline_s.append(t)
            timeline.append(by_type)
            costs.append(world.cost())
            k += 1
        if t == next_act:
            controller.act(fleet, t)
            next_act = controller.next_at(t)
    assert at_end is not None
    notes = [f"refused by the cluster: {r}" for r in fleet.refusals[:5]]
    if len(fleet.refusals) > 5:
        notes.append(f"... and {len(fleet.refusals) - 5} more refusals")
    return Run(
        name=controller.name,
        description=controller.description,
        requests=len(scenario.trace),
        completed=world.completed_requests(),
        arrivals_s=scenario.trace.arrival_s,
        gpu_seconds=at_end.gpu_seconds,
        cost_usd=at_end.cost_usd,
        scale_events=at_end.scale_events,
        scored_from_s=scored,
        at_scored_start=at_scored,
        timeline_s=timeline_s,
        timeline_replicas=timeline,
        timeline_cost_usd=costs,
        ended_s=world.now_s,
        wall_s=time.perf_counter() - started,
        notes=notes,
    )
