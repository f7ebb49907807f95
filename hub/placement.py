"""Placement: a workload's desired total -> replicas per (cluster, GPU type). Pure; no I/O.

The foundation placer is greedy and churn-averse:

* current replicas on fresh clusters stay where they are (clamped to what is allowed);
* growth goes to the cheapest GPU-hour per replica that has free capacity, ties by cluster id;
* shrinkage comes off the most expensive placements first;
* capacity is what telemetry says is free, plus what the workload already holds there; placements
  made earlier in the same tick consume it, so two workloads never count the same free GPUs.

Stale clusters are simply absent from the offers, which re-places their share on healthy ones.
The engine issue replaces the greedy fill with an exact solver behind the same ``place`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from hub.state import FleetSnapshot, Placement


@dataclass(frozen=True, slots=True)
class Offer:
    cluster_id: str
    gpu_type: str
    capacity_replicas: int
    """Replicas of this workload that fit: free GPUs // GPUs per replica + what it holds there."""
    price_per_replica_hour: float


@dataclass(frozen=True, slots=True)
class PlacementResult:
    placement: Placement
    unplaced: int
    notes: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.placement.values())


def place(
    desired: int,
    current: Mapping[tuple[str, str], int],
    offers: list[Offer],
) -> PlacementResult:
    by_key = {(o.cluster_id, o.gpu_type): o for o in offers}
    notes: list[str] = []
    placement: Placement = {}
    for key, n in current.items():
        offer = by_key.get(key)
        if offer is None:
            if n:
                notes.append(f"{n} replicas on {key[0]}/{key[1]} not placeable there (stale or not allowed)")
            continue
        kept = min(n, offer.capacity_replicas)
        if kept:
            placement[key] = kept
    total = sum(placement.values())
    cheapest_first = sorted(offers, key=lambda o: (o.price_per_replica_hour, o.cluster_id, o.gpu_type))
    if desired > total:
        need = desired - total
        for o in cheapest_first:
            room = o.capacity_replicas - placement.get((o.cluster_id, o.gpu_type), 0)
            take = min(room, need)
            if take > 0:
                placement[(o.cluster_id, o.gpu_type)] = placement.get((o.cluster_id, o.gpu_type), 0) + take
                need -= take
            if need == 0:
                break
        if need:
            notes.append(f"{need} replicas do not fit in free capacity")
        return PlacementResult(placement, need, tuple(notes))
    excess = total - desired
    for o in reversed(cheapest_first):
        key = (o.cluster_id, o.gpu_type)
        take = min(placement.get(key, 0), excess)
        if take:
            placement[key] -= take
            excess -= take
        if excess == 0:
            break
    return PlacementResult(placement, 0, tuple(notes))


class CapacityLedger:
    """Free replicas per (cluster, GPU type) for one tick, consumed as workloads are placed."""

    def __init__(self, snapshot: FleetSnapshot, prices: Mapping[str, float]) -> None:
        self.prices = prices
        # Computed once per tick: at 10k workloads, re-reading inventories per workload dominated.
        self._free: dict[str, dict[str, int]] = {cid: c.free_gpus() for cid, c in snapshot.fresh.items()}
        self._used: dict[tuple[str, str], int] = {}

    def offers(
        self,
        *,
        gpus_per_replica: int,
        held: Mapping[tuple[str, str], int],
        clusters: Iterable[str] | None = None,
        allows: Callable[[str, str], bool] | None = None,
    ) -> list[Offer]:
        """Offers on fresh ``clusters`` (default: all fresh ones) for GPU types ``allows`` accepts."""
        gpr = max(gpus_per_replica, 1)
        out = []
        for cid in self._free if clusters is None else clusters:
            for gpu_type, free in self._free.get(cid, {}).items():
                if allows is not None and not allows(cid, gpu_type):
                    continue
                price = self.prices.get(gpu_type)
                if price is None:
                    continue  # no price, no placement: we will not guess a cost
                spare = max(free - self._used.get((cid, gpu_type), 0), 0) // gpr
                out.append(Offer(cid, gpu_type, spare + held.get((cid, gpu_type), 0), price * gpr))
        return out

    def consume(self, before: Mapping[tuple[str, str], int], after: Mapping[tuple[str, str], int], gpr: int) -> None:
        for key in set(before) | set(after):
            grown = after.get(key, 0) - before.get(key, 0)
            if grown > 0:
                self._used[key] = self._used.get(key, 0) + grown * max(gpr, 1)
