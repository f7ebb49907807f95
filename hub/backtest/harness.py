"""The tick loop: one controller drives one fresh ``SimWorld`` through the trace, then the drain.

A controller says when it wants to act next (its sync period, or the oracle's schedule) and acts
through a ``Fleet``, which applies absolute replica counts to the world (new replicas cold-start
there, removed ones drain) and counts scale events. The loop advances the world from one action
or timeline sample to the next; between them the simulator is event-driven and exact.

Cost and GPU-hours are taken at the trace's end, so every policy is billed for the same span.
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
        """Make the world hold exactly ``placement``: pools absent from it go to 0."""
        targets: dict[str, dict[str, int]] = {}
        for cid, gpu_type in self.replicas():
            targets.setdefault(cid, {})[gpu_type] = 0
        for (cid, gpu_type), n in placement.items():
            targets.setdefault(cid, {})[gpu_type] = n
        for cid in sorted(targets):
            self.set(cid, targets[cid])


class Controller(Protocol):
    """One autoscaling policy under test."""

    name: str
    description: str

    def initial_replicas(self) -> Mapping[Pool, int]:
        """Replicas already ready at time 0 (each policy starts warm at its own floor)."""
        ...

    @property
    def gateway_cluster(self) -> str | None:
        """Cluster whose telemetry shows the global queue; a single-Deployment baseline needs its own."""
        ...

    def next_at(self, now_s: float) -> float:
        """The next time after ``now_s`` to act at (``-inf`` asks for the first time); ``inf``: never."""
        ...

    def act(self, fleet: Fleet, now_s: float) -> None: ...


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
    timeline_s: list[float] = field(default_factory=list)
    timeline_replicas: list[dict[str, int]] = field(default_factory=list)
    """Replicas asked for per GPU type (all clusters), at each ``timeline_s``."""
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
        [scenario.workload_spec(controller.initial_replicas(), controller.gateway_cluster)],
        history_s=900.0,
    )
    fleet = Fleet(world, scenario)
    end = scenario.duration_s
    limit = end + scenario.drain_limit_s
    timeline_s: list[float] = []
    timeline: list[dict[str, int]] = []
    at_end: tuple[dict[Pool, float], float, int] | None = None
    k = 0
    next_act = controller.next_at(-math.inf)
    while True:
        t_sample = k * scenario.sample_s
        t = min(next_act, t_sample)
        if at_end is None and t >= end:
            world.advance(end)
            at_end = (world.gpu_seconds(), world.cost(), fleet.scale_events)
        if t > end and (world.unfinished_requests() == 0 or t > limit):
            break
        world.advance(t)
        if t == t_sample:
            by_type: dict[str, int] = {}
            for (_, gpu_type), n in fleet.replicas().items():
                by_type[gpu_type] = by_type.get(gpu_type, 0) + n
            timeline_s.append(t)
            timeline.append(by_type)
            k += 1
        if t == next_act:
            controller.act(fleet, t)
            next_act = controller.next_at(t)
    assert at_end is not None
    gpu_seconds, cost, events = at_end
    notes = [f"refused by the cluster: {r}" for r in fleet.refusals[:5]]
    if len(fleet.refusals) > 5:
        notes.append(f"... and {len(fleet.refusals) - 5} more refusals")
    return Run(
        name=controller.name,
        description=controller.description,
        requests=len(scenario.trace),
        completed=world.completed_requests(),
        arrivals_s=scenario.trace.arrival_s,
        gpu_seconds=gpu_seconds,
        cost_usd=cost,
        scale_events=events,
        timeline_s=timeline_s,
        timeline_replicas=timeline,
        ended_s=world.now_s,
        wall_s=time.perf_counter() - started,
        notes=notes,
    )
