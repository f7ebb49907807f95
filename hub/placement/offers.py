"""What placement is asked: where each workload may run, at what price and throughput, and how much.

A placement problem is one tick's worth of workloads that compete for the same free GPUs. Capacity is
counted in GPUs per (cluster, GPU type) and shared: telemetry's free GPUs exclude every running
replica, so the pool a tick can hand out is the free GPUs *plus* the GPUs the workloads of the
problem hold there now (a workload that shrinks frees its GPUs for another one in the same solve).

Load is counted in each workload's own units: its demand, and what one replica of each GPU type
serves within the SLO. The caller fixes the unit (the planner uses the engine's tokens/s at the SLO
when it has them, else "replicas of the reference GPU type"), so a cheap slow GPU and a dear fast one
are compared per unit of load, not per replica.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from hub.state import FleetSnapshot

Key = tuple[str, str]
"""(cluster id, GPU type): one pool of GPUs."""


@dataclass(frozen=True, slots=True)
class Offer:
    """One place a workload may run: a GPU type in a cluster, with its price and throughput there."""

    cluster_id: str
    gpu_type: str
    capacity_replicas: int | None
    """Replicas of this workload that fit here on their own account. None: only the shared free GPUs of
    the problem limit it (the usual case); an int also caps it (a recovering cluster, or a caller
    without pool data such as the single-workload ``place``)."""
    price_per_replica_hour: float
    throughput_per_replica: float = 1.0
    """SLO-capable load one replica serves, in the workload's load units (> 0)."""

    @property
    def key(self) -> Key:
        return (self.cluster_id, self.gpu_type)

    @property
    def price_per_load(self) -> float:
        return self.price_per_replica_hour / self.throughput_per_replica


@dataclass(frozen=True, slots=True)
class LoadClass:
    """A share of a workload's demand that only some GPU types serve, each at its own throughput."""

    name: str
    share: float
    """Of the workload's ``demand`` (the classes' shares add up to 1)."""
    throughput: Mapping[str, float]
    """GPU type -> load one replica serves when it serves only this class; absent: it cannot serve it."""


@dataclass(frozen=True, slots=True)
class WorkloadDemand:
    """One workload's part of a placement problem. Replica counts are of this workload's replicas."""

    key: str
    demand: float
    """Load to serve, in the same units as the offers' ``throughput_per_replica``."""
    offers: tuple[Offer, ...]
    """Only fresh, allowed, priced places: a place not offered gets no replicas."""
    reference_throughput: float = 1.0
    """Load of one replica of the reference type: unmet demand is reported in these replicas."""
    gpus_per_replica: int = 1
    current: Mapping[Key, int] = field(default_factory=dict)
    """What the workload runs or was last asked to run: churn is counted against it."""
    held: Mapping[Key, int] = field(default_factory=dict)
    """Replicas that hold GPUs now (reported); their GPUs return to the pool for this solve."""
    min_replicas: int = 0
    """Soft lower bound on the total (met when capacity allows)."""
    max_replicas: int | None = None
    """Hard upper bound on the total."""
    spread: int = 0
    """At least this many replicas in every cluster that has an offer (soft: when capacity allows)."""
    cluster_min: Mapping[str, int] = field(default_factory=dict)
    """Soft lower bound per cluster."""
    cluster_max: Mapping[str, int] = field(default_factory=dict)
    """Hard upper bound per cluster."""
    floor: Mapping[Key, int] = field(default_factory=dict)
    """Hard lower bound per place, clamped to what is held there (failover holds replicas with it)."""
    classes: tuple[LoadClass, ...] = ()
    """The demand split by request class (``assignment.py``); empty: one class that every offer serves
    at its ``throughput_per_replica``."""
    priority: int = 0
    """Under contention a higher priority's unmet demand is served first, and a lower priority keeps
    what it holds up to ``min_replicas`` (``hub.placement.priority``)."""

    def validate(self) -> None:
        """Raise ``ValueError`` on inputs no caller should build (they are programming errors)."""
        if not (math.isfinite(self.demand) and self.demand >= 0):
            raise ValueError(f"{self.key}: demand must be finite and >= 0, got {self.demand}")
        if not self.reference_throughput > 0:
            raise ValueError(f"{self.key}: reference_throughput must be > 0")
        if self.gpus_per_replica < 1:
            raise ValueError(f"{self.key}: gpus_per_replica must be >= 1")
        if self.max_replicas is not None and self.max_replicas < 0:
            raise ValueError(f"{self.key}: max_replicas must be >= 0")
        keys = [o.key for o in self.offers]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.key}: more than one offer for the same (cluster, GPU type)")
        for o in self.offers:
            if not (o.throughput_per_replica > 0 and math.isfinite(o.throughput_per_replica)):
                raise ValueError(f"{self.key}: offer {o.key}: throughput_per_replica must be > 0")
            if not (o.price_per_replica_hour >= 0 and math.isfinite(o.price_per_replica_hour)):
                raise ValueError(f"{self.key}: offer {o.key}: price_per_replica_hour must be >= 0")
            if o.capacity_replicas is not None and o.capacity_replicas < 0:
                raise ValueError(f"{self.key}: offer {o.key}: capacity_replicas must be >= 0")
        if self.classes:
            if not math.isclose(sum(c.share for c in self.classes), 1.0, abs_tol=1e-6):
                raise ValueError(f"{self.key}: class shares must add up to 1")
            for c in self.classes:
                if not (0 <= c.share <= 1) or not all(v > 0 and math.isfinite(v) for v in c.throughput.values()):
                    raise ValueError(f"{self.key}: class {c.name}: share in [0, 1] and throughputs > 0")


ALL_TYPES = "*"
"""A budget's GPU cap over every GPU type together."""


@dataclass(frozen=True, slots=True)
class BudgetCap:
    """A hard cap on what some workloads hold together: GPUs per type (``ALL_TYPES``: all) and/or USD/h."""

    id: str
    members: frozenset[str]
    """Workload keys the cap covers (those of the problem; others are not placed here)."""
    gpus: Mapping[str, int] = field(default_factory=dict)
    cost_per_hour: float | None = None
    """At the offers' ``price_per_replica_hour``."""

    def counts(self, cap: str, gpu_type: str) -> bool:
        return cap == ALL_TYPES or cap == gpu_type

    def validate(self) -> None:
        if any(n < 0 for n in self.gpus.values()):
            raise ValueError(f"budget {self.id}: GPU caps must be >= 0")
        if self.cost_per_hour is not None and not (math.isfinite(self.cost_per_hour) and self.cost_per_hour >= 0):
            raise ValueError(f"budget {self.id}: cost_per_hour must be finite and >= 0")


@dataclass(frozen=True, slots=True)
class PlacementProblem:
    workloads: tuple[WorkloadDemand, ...]
    free_gpus: Mapping[Key, int]
    """Free GPUs per pool as reported (running replicas excluded). An offer whose pool is not here
    must carry its own ``capacity_replicas``: capacity is never assumed."""
    budgets: tuple[BudgetCap, ...] = ()
    """Hard caps over groups of workloads (``hub.placement.budgets``)."""

    def validate(self) -> None:
        seen: set[str] = set()
        for w in self.workloads:
            if w.key in seen:
                raise ValueError(f"workload {w.key} appears twice")
            seen.add(w.key)
            w.validate()
            for o in w.offers:
                if o.key not in self.free_gpus and o.capacity_replicas is None:
                    raise ValueError(f"{w.key}: offer {o.key} has neither a pool nor its own capacity")
        for b in self.budgets:
            b.validate()

    def pool_gpus(self) -> dict[Key, int]:
        """GPUs each pool can hand out in this solve: free plus what the problem's workloads hold."""
        pools = {k: max(v, 0) for k, v in self.free_gpus.items()}
        for w in self.workloads:
            for k, n in w.held.items():
                if k in pools and n > 0:
                    pools[k] += n * w.gpus_per_replica
        return pools


def free_gpus(snapshot: FleetSnapshot) -> dict[Key, int]:
    """Free GPUs per pool on fresh clusters. A stale cluster offers nothing."""
    return {(cid, t): n for cid, c in snapshot.fresh.items() for t, n in c.free_gpus().items()}
