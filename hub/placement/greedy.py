"""The greedy fill: used only when HiGHS returns nothing usable within its time limit.

It keeps every hard constraint the solver keeps (bounds per place, per-cluster and total maximum, the
shared pools) and is otherwise a plain heuristic, workload by workload in the problem's order:

1. start from the held floor, then keep what runs (where it still fits);
2. meet spread and per-cluster minimums with the cheapest replica of each cluster, then the total
   minimum with the cheapest replica anywhere;
3. fill the remaining demand at the lowest price per unit of load;
4. take back the surplus from the highest price per unit of load, as far as demand and the lower
   bounds allow.

It is first come, first served between workloads and not optimal; the result's ``method`` says
``greedy`` whenever it was used.
"""

from __future__ import annotations

import math

from hub.placement.formulation import LOAD_EPSILON, Formulation, Option, WorkloadForm
from hub.placement.offers import Key


def greedy(form: Formulation) -> dict[str, dict[Key, int]]:
    pools = dict(form.pools)
    return {wf.demand.key: _Fill(wf, pools).run() for wf in form.workloads}


class _Fill:
    def __init__(self, wf: WorkloadForm, pools: dict[Key, int]) -> None:
        self.wf = wf
        self.pools = pools
        self.gpr = wf.demand.gpus_per_replica
        self.n: dict[Key, int] = {o.offer.key: 0 for o in wf.options}
        self.per_cluster: dict[str, int] = {}

    @property
    def total(self) -> int:
        return sum(self.n.values())

    @property
    def load(self) -> float:
        return sum(self.n[o.offer.key] * o.offer.throughput_per_replica for o in self.wf.options)

    def room(self, o: Option) -> int:
        key = o.offer.key
        room = min(o.ub - self.n[key], self.wf.max_total - self.total)
        cap = self.wf.cluster_upper.get(o.offer.cluster_id)
        if cap is not None:
            room = min(room, cap - self.per_cluster.get(o.offer.cluster_id, 0))
        if key in self.pools:
            room = min(room, self.pools[key] // self.gpr)
        return max(room, 0)

    def add(self, o: Option, k: int) -> None:
        key = o.offer.key
        self.n[key] += k
        self.per_cluster[o.offer.cluster_id] = self.per_cluster.get(o.offer.cluster_id, 0) + k
        if key in self.pools:
            self.pools[key] -= k * self.gpr

    def fill(self, options: list[Option], target: int, count: int) -> None:
        """Add replicas, cheapest first, until ``count`` would reach ``target``."""
        for o in sorted(options, key=lambda o: (o.offer.price_per_replica_hour, o.offer.key)):
            k = min(self.room(o), target - count)
            if k > 0:
                self.add(o, k)
                count += k

    def run(self) -> dict[Key, int]:
        wf, opts = self.wf, self.wf.options
        for o in opts:
            self.add(o, min(o.lb, self.room(o)))
        for o in opts:
            self.add(o, min(max(o.current - self.n[o.offer.key], 0), self.room(o)))
        for c, need in sorted(wf.cluster_lower.items()):
            self.fill([o for o in opts if o.offer.cluster_id == c], need, self.per_cluster.get(c, 0))
        self.fill(opts, wf.demand.min_replicas, self.total)
        for o in sorted(opts, key=lambda o: (o.offer.price_per_load, o.offer.key)):
            missing = wf.demand.demand - self.load
            if missing <= LOAD_EPSILON * wf.demand.reference_throughput:
                break
            k = min(self.room(o), math.ceil(missing / o.offer.throughput_per_replica - LOAD_EPSILON))
            if k > 0:
                self.add(o, k)
        self.shrink()
        return self.n

    def shrink(self) -> None:
        wf = self.wf
        for o in sorted(wf.options, key=lambda o: (-o.offer.price_per_load, o.offer.key)):
            c = o.offer.cluster_id
            surplus = (self.load - wf.demand.demand) / o.offer.throughput_per_replica
            k = min(self.n[o.offer.key] - o.lb, math.floor(surplus + LOAD_EPSILON),
                    self.per_cluster.get(c, 0) - wf.cluster_lower.get(c, 0), self.total - wf.demand.min_replicas)
            if k > 0:
                self.add(o, -k)
