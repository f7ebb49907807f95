"""The greedy fill: the solver's warm start (from the LP's rounded-down answer) and its last resort.

It keeps every hard constraint the solver keeps (bounds per place, per-cluster and total maximum, the
shared pools) and is otherwise a plain heuristic, workload by workload in the problem's order:

1. start from ``start`` (clamped into bounds), or else from the held floor plus what runs now (where
   it still fits);
2. meet spread and per-cluster minimums with the cheapest replica of each cluster, then the total
   minimum with the cheapest replica anywhere;
3. fill the remaining demand with whole replicas at the lowest price per unit of load, and the
   remainder (less than one of those) with the cheapest mix of replicas that covers it;
4. take back the surplus from the highest price per unit of load, as far as demand and the lower
   bounds allow.

From scratch it is first come, first served between workloads and far from optimal. From the LP
relaxation rounded down it is close: the LP has already shared the pools out, and the fill only
rounds each workload's last fractional replicas. The result's ``method`` says when it was used alone.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

from hub.placement.budgets import Limit
from hub.placement.formulation import LOAD_EPSILON, Formulation, Option, WorkloadForm
from hub.placement.offers import Key


def greedy(
    form: Formulation, start: Mapping[str, Mapping[Key, float]] | None = None
) -> dict[str, dict[Key, int]]:
    """A placement that keeps every hard constraint; from ``start`` (an LP's answer) if given."""
    pools = dict(form.pools)
    left = [lim.cap for lim in form.limits]
    fills = [_Fill(wf, pools, form.limits, left) for wf in form.workloads]
    for f in fills:  # hard floors first, so that no other workload's fill takes their room
        for o in f.wf.options:
            f.add(o, min(o.lb, f.room(o)))
    order = fills
    if start is not None:
        # The LP has shared the pools out already: take all of its whole replicas before any workload
        # grows, then round up where the LP was fractional, the most constrained workloads first.
        for f in fills:
            f.take(start.get(f.wf.demand.key, {}))
        order = sorted(fills, key=lambda f: len(f.wf.options))
    for f in order:
        f.run(keep_current=start is None, lean=start.get(f.wf.demand.key, {}) if start is not None else {})
    return {f.wf.demand.key: f.n for f in fills}


class _Fill:
    def __init__(self, wf: WorkloadForm, pools: dict[Key, int], limits: Sequence[Limit], left: list[float]) -> None:
        self.wf = wf
        self.pools = pools
        self.limits = [(i, lim) for i, lim in enumerate(limits) if wf.demand.key in lim.members]
        """The budget caps over this workload, by their index in ``left`` (what each has left, shared)."""
        self.left = left
        self.gpr = wf.demand.gpus_per_replica
        self.n: dict[Key, int] = {o.offer.key: 0 for o in wf.options}
        self.per_cluster: dict[str, int] = {}
        self.total = 0
        self.load = 0.0

    def room(self, o: Option) -> int:
        key = o.offer.key
        room = min(o.ub - self.n[key], self.wf.max_total - self.total)
        cap = self.wf.cluster_upper.get(o.offer.cluster_id)
        if cap is not None:
            room = min(room, cap - self.per_cluster.get(o.offer.cluster_id, 0))
        if key in self.pools:
            room = min(room, self.pools[key] // self.gpr)
        for i, lim in self.limits:
            room = min(room, lim.room(self._coefficient(lim, o), self.left[i]))
        return max(room, 0)

    def _coefficient(self, lim: Limit, o: Option) -> float:
        return lim.coefficient(self.wf.demand.key, self.gpr, o.offer.gpu_type, o.offer.price_per_replica_hour)

    def add(self, o: Option, k: int) -> None:
        key = o.offer.key
        self.n[key] += k
        self.per_cluster[o.offer.cluster_id] = self.per_cluster.get(o.offer.cluster_id, 0) + k
        self.total += k
        self.load += k * o.offer.throughput_per_replica
        if key in self.pools:
            self.pools[key] -= k * self.gpr
        for i, lim in self.limits:
            self.left[i] -= k * self._coefficient(lim, o)

    def take(self, start: Mapping[Key, float]) -> None:
        for o in self.wf.options:
            want = max(math.floor(start.get(o.offer.key, 0) + 1e-6), 0) - self.n[o.offer.key]
            self.add(o, max(min(want, self.room(o)), 0))

    def fill(self, options: list[Option], target: int, count: int) -> None:
        """Add replicas, cheapest first, until ``count`` would reach ``target``."""
        for o in sorted(options, key=lambda o: (o.offer.price_per_replica_hour, o.offer.key)):
            k = min(self.room(o), target - count)
            if k > 0:
                self.add(o, k)
                count += k

    def run(self, *, keep_current: bool, lean: Mapping[Key, float]) -> dict[Key, int]:
        wf, opts = self.wf, self.wf.options
        for o in opts:
            self.add(o, min(max(o.lb - self.n[o.offer.key], 0), self.room(o)))
        if keep_current:
            for o in opts:
                self.add(o, min(max(o.current - self.n[o.offer.key], 0), self.room(o)))
        for c, need in sorted(wf.cluster_lower.items()):
            self.fill([o for o in opts if o.offer.cluster_id == c], need, self.per_cluster.get(c, 0))
        self.fill(opts, wf.demand.min_replicas, self.total)
        # Where the LP was fractional, rounding up follows its choice of place.
        fractions = sorted(((v - math.floor(v + 1e-6), o) for o in opts if (v := lean.get(o.offer.key, 0.0)) > 0),
                           key=lambda p: (-p[0], p[1].offer.key))
        for frac, o in fractions:
            if frac >= 0.5 and self.missing() and self.room(o) > 0:
                self.add(o, 1)
        self.cover()
        self.shrink()
        return self.n

    def missing(self) -> float:
        d = self.wf.demand
        gap = d.demand - self.load
        return gap if gap > LOAD_EPSILON * self.wf.unit else 0.0

    def cover(self) -> None:
        """Meet demand: whole replicas at the lowest price per load, then the remainder at least cost."""
        by_load = sorted(self.wf.options, key=lambda o: (o.offer.price_per_load, o.offer.key))
        for o in by_load:
            k = min(self.room(o), math.floor(self.missing() / o.offer.throughput_per_replica))
            if k > 0:
                self.add(o, k)
        if self.missing():
            self.cover_remainder()
        for o in by_load:  # what the remainder could not cover (rooms interact): as much as fits
            if not self.missing():
                break
            k = min(self.room(o), math.ceil(self.missing() / o.offer.throughput_per_replica - LOAD_EPSILON))
            if k > 0:
                self.add(o, k)

    def cover_remainder(self) -> None:
        """The cheapest mix of replicas that covers what is missing (less than one replica of the cheapest
        per load), enumerated over throughput classes: a small exact knapsack, as the LP leaves it."""
        missing = self.missing()
        classes: dict[float, list[tuple[float, Option]]] = {}
        for o in self.wf.options:
            for _ in range(min(self.room(o), math.ceil(missing / o.offer.throughput_per_replica))):
                classes.setdefault(o.offer.throughput_per_replica, []).append((o.offer.price_per_replica_hour, o))
        if not classes:
            return
        groups = [(t, sorted(v, key=lambda p: (p[0], p[1].offer.key))) for t, v in sorted(classes.items())]
        ranges = [range(min(len(v), math.ceil(missing / t - LOAD_EPSILON)) + 1) for t, v in groups]
        if math.prod(len(r) for r in ranges) > 20_000:
            return  # too many classes to enumerate; the per-load fill takes over
        best: tuple[float, int, tuple[int, ...]] | None = None
        for ks in itertools.product(*ranges):
            if sum(k * t for k, (t, _) in zip(ks, groups, strict=True)) < missing - LOAD_EPSILON:
                continue
            cost = sum(sum(p for p, _ in v[:k]) for k, (_, v) in zip(ks, groups, strict=True))
            if best is None or (cost, sum(ks)) < best[:2]:
                best = (cost, sum(ks), ks)
        if best is None:
            return
        for k, (_, v) in zip(best[2], groups, strict=True):
            for _, o in v[:k]:
                if self.room(o) > 0:
                    self.add(o, 1)

    def shrink(self) -> None:
        wf = self.wf
        for o in sorted(wf.options, key=lambda o: (-o.offer.price_per_load, o.offer.key)):
            c = o.offer.cluster_id
            surplus = (self.load - wf.demand.demand) / o.offer.throughput_per_replica
            k = min(self.n[o.offer.key] - o.lb, math.floor(surplus + LOAD_EPSILON),
                    self.per_cluster.get(c, 0) - wf.cluster_lower.get(c, 0), self.total - wf.demand.min_replicas)
            if k > 0:
                self.add(o, -k)
